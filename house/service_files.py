"""What a runner service runs and the unit (systemd) or plist (launchd) text that describes it."""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from runner.core.options import RUNNER_FLAGS as _FLAGS
from runner.core.options import flag_words

__all__ = [
    "RUNNER_FLAGS",
    "runner_flags",
    "runner_command",
    "ServiceSpec",
    "systemd_quote",
    "systemd_unit",
    "launchd_log_dir",
    "launchd_plist",
]

UNIT_BASE = "housespool-runner"
LABEL_BASE = "org.housespool.runner"


# --------------------------------------------------------------------------- the command line

#: (argparse dest, flag, kind) of every runner option, in the order they are written back:
#: derived from the one declaration, `runner.core.options.RUNNER_FLAGS`.
RUNNER_FLAGS: tuple[tuple[str, str, str], ...] = tuple((f.dest, f.flag, f.kind) for f in _FLAGS)

#: the runner options present in an argparse namespace, written back as command-line words.
runner_flags = flag_words


def runner_command(interpreter: str, spool: str, flags: list[str]) -> list[str]:
    """The argv that starts a runner: ``PYTHON -m spool.cli.main --spool SPOOL runner FLAGS``."""
    return [interpreter, "-m", "spool.cli.main", "--spool", spool, "runner", *flags]


# --------------------------------------------------------------------------- what is written


@dataclass(frozen=True)
class ServiceSpec:
    """One runner service: its runner name (None = default), interpreter, spool and options."""

    interpreter: str
    spool: str
    flags: list[str] = field(default_factory=list)
    name: str | None = None

    @property
    def unit(self) -> str:
        return f"{UNIT_BASE}-{self.name}.service" if self.name else f"{UNIT_BASE}.service"

    @property
    def label(self) -> str:
        return f"{LABEL_BASE}.{self.name}" if self.name else LABEL_BASE

    @property
    def argv(self) -> list[str]:
        return runner_command(self.interpreter, self.spool, self.flags)


_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def systemd_quote(word: str) -> str:
    """One ExecStart word: ``%`` and ``$`` escaped (specifiers, variables), quoted if it needs it."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and _SAFE.match(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(spec: ServiceSpec) -> str:
    exec_start = " ".join(systemd_quote(w) for w in spec.argv)
    spool = spec.spool.replace("%", "%%")
    return f"""\
# housespool runner for {spool}: written by `spool runner install`,
# removed by `spool runner uninstall`. Logs: journalctl --user -u {spec.unit} -f
[Unit]
Description=housespool runner (spool {spool})
# a spool on a network share may not be mounted yet at login: keep retrying
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={exec_start}
# stopping sends SIGINT then SIGTERM: the runner hands its running job back to pending/ at once
ExecStop=/bin/kill -INT $MAINPID
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=30
# the unit's cgroup is the runner's to divide: each job gets a cgroup of its own, so that
# whatever a job starts (a daemon, a server in a session of its own) ends with it
Delegate=yes
Restart=on-failure
RestartSec=30
Environment=PYTHONUNBUFFERED=1
WorkingDirectory=%h

[Install]
WantedBy=default.target
"""


def launchd_log_dir(home: Path) -> Path:
    return home / "Library" / "Logs" / "housespool"


def launchd_plist(spec: ServiceSpec, home: Path) -> str:
    log = str(launchd_log_dir(home) / f"{spec.label}.log")
    doc = {
        "Label": spec.label,
        "ProgramArguments": spec.argv,
        "RunAtLoad": True,
        # restart after a crash or a missing spool (non-zero exit); not after --exit-when-idle
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 30,
        "ExitTimeOut": 60,
        "LowPriorityIO": True,
        "WorkingDirectory": str(home),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    return plistlib.dumps(doc, sort_keys=True).decode("utf-8")
