"""spool.toml: read once, validated, shared by every runner and the CLI."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spool.errors import ConfigError, NotFound, UsageError
from spool.untrusted import read_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Settings",
    "Defaults",
    "load_settings",
    "not_a_spool",
    "render_settings",
    "expand_path",
    "SETTINGS_FILE",
]

SETTINGS_FILE = "spool.toml"
MAX_SETTINGS_BYTES = 1 << 20
_DAY = 86400.0
_YEAR = 365 * _DAY
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Defaults(BaseModel):
    """Values a job gets when its file does not say."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    retries: int = Field(default=0, ge=0, le=100)
    timeout: float | None = Field(default=None, gt=0, le=_YEAR)
    priority: int = Field(default=0, ge=-(10**9), le=10**9)


class Settings(BaseModel):
    """What every runner of a spool agrees on: every number finite and within sane bounds
    (a lease of `inf` would keep a dead runner's jobs away for ever)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    version: int = Field(default=1, ge=1, le=1000)
    scripts: str = Field(
        default="scripts", min_length=1, max_length=4096,
        description="scripts folder, relative to the spool or absolute",
    )
    lease_seconds: float = Field(
        default=60.0, ge=2, le=_DAY, description="a lease not renewed for this long expires"
    )
    scan_interval: float = Field(default=1.0, gt=0, le=3600, description="seconds between scans of pending/")
    settle_seconds: float = Field(
        default=10.0, ge=0, le=_DAY, description="an unparsable job older than this is rejected"
    )
    log_cap_mb: float = Field(
        default=100.0, gt=0, le=1024 * 1024, description="stdout.log/stderr.log are cut at this size"
    )
    env_allow: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="env names jobs may set although refused by rule (PYTHON*, LD_*, DYLD_*; never SPOOL_*)",
    )
    stop_grace: float = Field(
        default=20.0, ge=0, le=3600, description="seconds between a stop's SIGTERM and its SIGKILL"
    )
    max_interruptions: int = Field(
        default=20, ge=1, le=10000, description="interruptions after which a job is failed (kind interrupted)"
    )
    defaults: Defaults = Field(default_factory=Defaults)

    @field_validator("scripts")
    @classmethod
    def _scripts_path(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("a path cannot hold a NUL character")
        if v.startswith("~"):
            try:
                Path(v).expanduser()
            except RuntimeError:
                raise ValueError(f"{v!r}: no such user's home folder") from None
        return v

    @field_validator("env_allow")
    @classmethod
    def _env_allow_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _ENV_NAME.match(name):
                raise ValueError(f"not an environment variable name: {name!r}")
            if name.upper().startswith("SPOOL_"):
                raise ValueError(f"{name}: SPOOL_* variables are the runner's own and cannot be allowed")
        return v

    def scripts_dir(self, spool_root: Path) -> Path:
        """The scripts folder as an absolute path (relative ones are relative to the spool)."""
        p = Path(self.scripts).expanduser()
        return (p if p.is_absolute() else spool_root / p).resolve()


def expand_path(value: str | os.PathLike[str], what: str) -> Path:
    """`value` with `~` expanded, as a Path; a NUL or an unknown `~user` is a `UsageError`."""
    text = os.fspath(value)
    if "\x00" in text:
        raise UsageError(f"{what} {text!r}: a path cannot hold a NUL character")
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise UsageError(f"{what} {text!r}: no such user's home folder") from None


def not_a_spool(spool_root: Path) -> NotFound:
    """The one "no spool here" error: a folder without `spool.toml` (or one whose share went away)."""
    return NotFound(f"no spool here (missing {SETTINGS_FILE}); create one with 'spool init'", file=spool_root)


def load_settings(spool_root: Path) -> Settings:
    """Read and validate `spool.toml`; a spool without one is not a spool."""
    path = spool_root / SETTINGS_FILE
    try:
        raw = read_file(path, MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        raise not_a_spool(spool_root) from None
    except OSError as exc:  # NotRegular and TooLarge too
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=path) from None
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        msg = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        msg = msg.removeprefix("Value error, ")
        raise ConfigError(msg, file=path, field=field) from None


def render_settings(scripts: str) -> str:
    """The text of a fresh spool.toml, with every setting shown and explained.

    Written by tomlkit (it quotes any path, an `o'brien` or a backslash, as TOML wants) and
    read back before it is returned: what `init` writes, `status` reads."""
    import tomlkit

    d = Settings()
    doc = tomlkit.document()
    doc.add(tomlkit.comment("housespool spool settings: every runner of this spool reads them."))
    doc.add("version", 1)
    for key, value, why in (
        ("scripts", scripts, "scripts folder: relative to this spool folder, or absolute."
         " A runner can override it (--scripts)."),
        ("lease_seconds", d.lease_seconds, "a running job's lease is renewed every few seconds;"
         " one not renewed for this long is requeued."),
        ("scan_interval", d.scan_interval, "seconds between scans of pending/"
         " (file events wake runners sooner where the folder sends them)."),
        ("settle_seconds", d.settle_seconds, "a .json in pending/ that does not parse is rejected"
         " once unchanged for this long."),
        ("log_cap_mb", d.log_cap_mb, "stdout.log / stderr.log are cut at this size (MB)."),
        ("stop_grace", d.stop_grace, "every stop a runner makes (graceful stop, cancel, timeout, yield) is"
         " SIGTERM to the script's process group,\nthen this many seconds for it to save, then SIGKILL."
         " A job's `stop_grace` wins."),
        ("max_interruptions", d.max_interruptions, "a job whose machine or runner goes away goes back to"
         " pending/ without spending a retry;\nafter this many interruptions it is failed"
         ' (kind "interrupted").'),
    ):
        for line in why.split("\n"):
            doc.add(tomlkit.comment(line))
        whole = isinstance(value, float) and value.is_integer()
        doc.add(key, int(value) if whole else value)  # `lease_seconds = 60`, as people write it
    doc.add(tomlkit.comment("env names jobs may set although PYTHON*, LD_* and DYLD_* are refused"))
    doc.add(tomlkit.comment('(SPOOL_* never): env_allow = ["PYTHONHASHSEED"]'))
    doc.add(tomlkit.nl())
    defaults = tomlkit.table()
    defaults.add("retries", 0)
    defaults.add("priority", 0)
    defaults.add(tomlkit.comment("timeout = 3600"))
    doc.add("defaults", defaults)
    text = tomlkit.dumps(doc)
    Settings.model_validate(tomllib.loads(text))  # what init writes, every reader can read
    return text
