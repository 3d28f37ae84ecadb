"""spool.toml: read once, validated, shared by every runner and the CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spool.errors import ConfigError, NotFound

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Settings", "Defaults", "load_settings", "render_settings", "SETTINGS_FILE"]

SETTINGS_FILE = "spool.toml"


class Defaults(BaseModel):
    """Values a job gets when its file does not say."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(default=0, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    priority: int = 0


class Settings(BaseModel):
    """What every runner of a spool agrees on."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    scripts: str = Field(default="scripts", description="scripts folder, relative to the spool or absolute")
    lease_seconds: float = Field(default=60.0, ge=2, description="a lease not renewed for this long expires")
    scan_interval: float = Field(default=1.0, gt=0, le=3600, description="seconds between scans of pending/")
    settle_seconds: float = Field(
        default=10.0, ge=0, description="an unparsable job older than this is rejected"
    )
    log_cap_mb: float = Field(default=100.0, gt=0, description="stdout.log/stderr.log are cut at this size")
    stop_grace: float = Field(
        default=20.0, ge=0, le=3600, description="seconds between a stop's SIGTERM and its SIGKILL"
    )
    max_interruptions: int = Field(
        default=20, ge=1, le=10000, description="interruptions after which a job is failed (kind interrupted)"
    )
    defaults: Defaults = Field(default_factory=Defaults)

    def scripts_dir(self, spool_root: Path) -> Path:
        """The scripts folder as an absolute path (relative ones are relative to the spool)."""
        p = Path(self.scripts).expanduser()
        return (p if p.is_absolute() else spool_root / p).resolve()


def load_settings(spool_root: Path) -> Settings:
    """Read and validate `spool.toml`; a spool without one is not a spool."""
    path = spool_root / SETTINGS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"no spool here (missing {SETTINGS_FILE}); create one with 'spool init'", file=spool_root
        )
    except OSError as exc:
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
        raise ConfigError(msg, file=path, field=field) from None


def render_settings(scripts: str) -> str:
    """The text of a fresh spool.toml, with every setting shown and explained."""
    d = Settings()
    return f"""# housespool spool settings: every runner of this spool reads them.
version = 1
# scripts folder: relative to this spool folder, or absolute. A runner can override it (--scripts).
scripts = {scripts!r}
# a running job's lease is renewed every few seconds; one not renewed for this long is requeued.
lease_seconds = {d.lease_seconds:g}
# seconds between scans of pending/ (file events wake runners sooner where the folder sends them).
scan_interval = {d.scan_interval:g}
# a .json in pending/ that does not parse is rejected once unchanged for this long.
settle_seconds = {d.settle_seconds:g}
# stdout.log / stderr.log are cut at this size (MB).
log_cap_mb = {d.log_cap_mb:g}
# every stop a runner makes (graceful stop, cancel, timeout, yield) is SIGTERM to the script's
# process group, then this many seconds for it to save, then SIGKILL. A job's `stop_grace` wins.
stop_grace = {d.stop_grace:g}
# a job whose machine or runner goes away goes back to pending/ without spending a retry;
# after this many interruptions it is failed (kind "interrupted").
max_interruptions = {d.max_interruptions}

[defaults]
retries = 0
priority = 0
# timeout = 3600
""".replace("'", '"')
