"""The runner's options, declared once: the model, the `spool runner` flags, and the words that
start a runner elsewhere (a service's ExecStart, a Slurm or HTCondor script) all come from here.

`RUNNER_FLAGS` lists every flag in the order it is written back; `add_flags` puts them on a
parser (all, or the ones a cluster's runners take), `options_from_args` validates what was
given into `RunnerOptions`, and `flag_words` writes it back as command-line words.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spool.errors import ConfigError

__all__ = [
    "RunnerOptions",
    "RunnerFlag",
    "RUNNER_FLAGS",
    "add_flags",
    "options_from_args",
    "flag_words",
    "split_modules",
    "default_runner_name",
]


def default_runner_name() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
    return f"{host}-{os.getpid()}"


def split_modules(text: str | list[str]) -> list[str]:
    """`"pandas, sklearn"` -> `["pandas", "sklearn"]`; refuses names that are not modules.
    (Which modules are safe to fork from is warm mode's to say: `runner.warm.pool`.)"""
    items = text.split(",") if isinstance(text, str) else [m for t in text for m in t.split(",")]
    out: list[str] = []
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        if not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(f"--warm takes module names separated by commas, not {name!r}")
        if name not in out:
            out.append(name)
    return out


class RunnerOptions(BaseModel):
    """How one runner on one machine behaves."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default_factory=default_runner_name)
    python: str = Field(default_factory=lambda: sys.executable)
    scripts: str | None = None
    slots: int = Field(default=1, ge=1, le=256)
    tags: list[str] = Field(default_factory=list)
    max_load: float | None = Field(default=None, gt=0)
    hours: str | None = None
    on_ac_power: bool = False
    when_user_idle: float | None = Field(default=None, ge=0)
    pause_when_busy: bool = False
    yield_: bool = False  # --yield: --hours, --on-ac-power, --when-user-idle also stop running jobs
    max_jobs: int | None = Field(default=None, ge=1)
    exit_when_idle: bool = False
    nice: int = Field(default=10, ge=0, le=19)
    events: bool = True
    scan_interval: float | None = Field(default=None, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    git_fetch: bool = False
    warm: list[str] = Field(default_factory=list, description="modules a fork server imports (warm mode)")
    warm_on_macos: bool = False
    descendants: Literal["auto", "cgroup", "tree"] = "auto"

    @field_validator("warm", mode="before")
    @classmethod
    def _warm_modules(cls, v: object) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str | list):
            return split_modules(v)
        raise ValueError("--warm takes module names separated by commas")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", v):
            raise ValueError("runner names use letters, digits, '_' and '-' (no dots, '@' or '/')")
        return v

    @field_validator("python")
    @classmethod
    def _abs_python(cls, v: str) -> str:
        if not os.path.isabs(v):
            raise ValueError("--python must be an absolute path to an interpreter")
        if not os.access(v, os.X_OK):
            raise ValueError(f"{v} is not an executable interpreter")
        return v


Kind = Literal["value", "path", "repeat", "flag"]


@dataclass(frozen=True)
class RunnerFlag:
    """One `spool runner` flag: its argparse `dest`, how it is written back (`kind`: one value,
    a path made absolute, one flag per value, a bare flag), the `RunnerOptions` field it sets
    (None: the runner process's own, like --quiet; `invert`: the flag turns the field off), its
    help, and its help for a cluster's runners (None: not offered by `spool slurm`/`condor`)."""

    dest: str
    flag: str
    kind: Kind
    help: str
    field: str | None = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    idle: bool = False  # listed under "idle policy" in --help
    cluster: str | None = None
    invert: bool = False
    short: str | None = None


#: every runner flag, in the order they are written back (unit files, cluster scripts).
RUNNER_FLAGS: tuple[RunnerFlag, ...] = (
    RunnerFlag("name", "--name", "value", "runner name (default: host-pid)", "name"),
    RunnerFlag(
        "python", "--python", "path", "interpreter for jobs, absolute (default: this one)", "python",
        metavar="PATH", cluster="interpreter for jobs, absolute, as the nodes see it",
    ),
    RunnerFlag(
        "scripts", "--scripts", "path", "this machine's scripts folder (default: from spool.toml)", "scripts",
        metavar="DIR", cluster="the scripts folder, as the nodes see it",
    ),
    RunnerFlag(
        "slots", "--slots", "value", "jobs at once (default 1)", "slots", type=int,
        cluster="jobs at once per runner",
    ),
    RunnerFlag(
        "tag", "--tag", "repeat", "a capability tag jobs can require; repeatable", "tags", metavar="T",
        cluster="a capability tag; repeatable",
    ),
    RunnerFlag(
        "max_load", "--max-load", "value", "start no job while the 1-min load is above L", "max_load",
        type=float, metavar="L", idle=True,
    ),
    RunnerFlag(
        "hours", "--hours", "value", "start jobs only within these hours, e.g. 22-07", "hours",
        metavar="HH-HH", idle=True,
    ),
    RunnerFlag("on_ac_power", "--on-ac-power", "flag", "start no job on battery", "on_ac_power", idle=True),
    RunnerFlag(
        "when_user_idle", "--when-user-idle", "value",
        "start jobs only when nobody touched keyboard/mouse for MIN minutes", "when_user_idle",
        type=float, metavar="MIN", idle=True,
    ),
    RunnerFlag(
        "pause_when_busy", "--pause-when-busy", "flag",
        "SIGSTOP the running job while the user is active, SIGCONT when idle again", "pause_when_busy",
        idle=True,
    ),
    RunnerFlag(
        "yield_", "--yield", "flag",
        "--hours, --on-ac-power and --when-user-idle also stop running jobs (the stop notice; back "
        "to pending/, no retry spent), not only new starts", "yield_", idle=True,
    ),
    RunnerFlag(
        "nice", "--nice", "value", "niceness of job processes (default 10)", "nice", type=int, idle=True,
        cluster="niceness of job processes",
    ),
    RunnerFlag(
        "max_jobs", "--max-jobs", "value", "exit after starting K jobs", "max_jobs", type=int, metavar="K",
        idle=True, cluster="each runner exits after K jobs",
    ),
    RunnerFlag(
        "exit_when_idle", "--exit-when-idle", "flag", "drain the spool, then exit", "exit_when_idle",
        idle=True,
    ),
    RunnerFlag(
        "no_events", "--no-events", "flag", "do not use file events; scan only", "events", invert=True,
        cluster="scan only (no file events)",
    ),
    RunnerFlag(
        "git_fetch", "--git-fetch", "flag",
        "fetch from the scripts repo's remote when a pinned job's commit is missing", "git_fetch",
    ),
    RunnerFlag(
        "scan_interval", "--scan-interval", "value", "seconds between scans (default: spool.toml)",
        "scan_interval", type=float, metavar="S", cluster="seconds between scans",
    ),
    RunnerFlag(
        "warm", "--warm", "value",
        "warm mode: a fork server imports these modules (e.g. pandas,sklearn) once; each job "
        "is a fork of it (see docs/performance.md)", "warm", metavar="MODS",
    ),
    RunnerFlag("warm_on_macos", "--warm-on-macos", "flag", "allow warm mode on macOS (off by default)",
               "warm_on_macos"),
    RunnerFlag(
        "descendants", "--descendants", "value",
        "how a job's processes are found and ended with it: auto (a cgroup per job where this "
        "runner's cgroup v2 is writable, else its process tree), cgroup, tree", "descendants",
        metavar="HOW", cluster="how a job's processes are found and ended: auto, cgroup, tree",
    ),
    RunnerFlag("quiet", "--quiet", "flag", "no log lines on stderr", short="-q"),
)


def add_flags(parser: argparse.ArgumentParser, *, cluster: bool = False) -> None:
    """Put the runner's flags on `parser` (idle policy in a group of its own); with `cluster`,
    the ones a cluster's runners take, in a group, with help as the nodes see them."""
    if cluster:
        group: Any = parser.add_argument_group("runner options (passed to every runner)")
        idle = group
    else:
        group, idle = parser, parser.add_argument_group("idle policy")
    for f in RUNNER_FLAGS:
        if cluster and f.cluster is None:
            continue
        where = idle if f.idle else group
        names = [f.short, f.flag] if f.short else [f.flag]
        helptext = f.cluster if cluster and f.cluster else f.help
        if f.kind == "flag":
            where.add_argument(*names, dest=f.dest, action="store_true", default=None, help=helptext)
        elif f.kind == "repeat":
            where.add_argument(*names, dest=f.dest, action="append", metavar=f.metavar, help=helptext)
        else:
            where.add_argument(*names, dest=f.dest, type=f.type, metavar=f.metavar, help=helptext)


def options_from_args(args: argparse.Namespace) -> RunnerOptions:
    """The validated `RunnerOptions` for the flags in `args`; ConfigError naming the flag."""
    fields: dict[str, Any] = {}
    for f in RUNNER_FLAGS:
        value = getattr(args, f.dest, None)
        if f.field is None or value is None:
            continue
        fields[f.field] = (not value) if f.invert else value
    try:
        return RunnerOptions.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else ""
        flag = next((f.flag for f in RUNNER_FLAGS if f.field == where), "--" + where.replace("_", "-"))
        raise ConfigError(first["msg"].removeprefix("Value error, "), field=flag) from None


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def flag_words(args: argparse.Namespace) -> list[str]:
    """The runner flags present in `args`, written back as command-line words."""
    out: list[str] = []
    for f in RUNNER_FLAGS:
        value = getattr(args, f.dest, None)
        if value is None or value is False or value == []:
            continue
        if f.kind == "flag":
            out.append(f.flag)
        elif f.kind == "repeat":
            for v in value:
                out += [f.flag, _text(v)]
        elif f.kind == "path":
            out += [f.flag, os.path.abspath(os.path.expanduser(str(value)))]
        else:
            out += [f.flag, _text(value)]
    return out
