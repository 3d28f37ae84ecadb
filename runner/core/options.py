"""Runner options, validated once."""

from __future__ import annotations

import os
import re
import socket
import sys

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["RunnerOptions", "default_runner_name"]


def default_runner_name() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
    return f"{host}-{os.getpid()}"


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
    max_jobs: int | None = Field(default=None, ge=1)
    exit_when_idle: bool = False
    nice: int = Field(default=10, ge=0, le=19)
    events: bool = True
    scan_interval: float | None = Field(default=None, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    git_fetch: bool = False
    warm: list[str] = Field(default_factory=list, description="modules a fork server imports (warm mode)")
    warm_on_macos: bool = False

    @field_validator("warm", mode="before")
    @classmethod
    def _warm_modules(cls, v: object) -> list[str]:
        from runner.warm.pool import parse_modules

        if v is None:
            return []
        if isinstance(v, str | list):
            return parse_modules(v)
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
