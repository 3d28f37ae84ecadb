"""Errors: one root, subclasses carrying the file and the field.

The CLI turns any `SpoolError` into one stderr line and its `exit_code`:
2 for bad usage or bad input, 1 when the thing asked about failed.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "SpoolError",
    "UsageError",
    "InvalidJob",
    "ConfigError",
    "NotFound",
    "SpoolExists",
    "PathEscape",
    "SweepError",
    "JobFailed",
    "StorageError",
    "MissingExtra",
]


class SpoolError(Exception):
    """Root of every error housespool raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}: "
        if self.field:
            where += f"field '{self.field}': "
        return f"{where}{self.message}"


class UsageError(SpoolError):
    """The command line or API call itself is wrong."""


class InvalidJob(SpoolError):
    """A job file or job dict is not a valid job (bad JSON, unknown field, bad script...)."""


class ConfigError(SpoolError):
    """spool.toml or runner settings are invalid."""


class NotFound(SpoolError):
    """A job, sweep, spool or script that was named does not exist."""


class SpoolExists(SpoolError):
    """`init` refuses to clobber an existing spool."""


class PathEscape(InvalidJob):
    """A path in a job would leave the scripts or spool folder."""


class SweepError(SpoolError):
    """A sweep definition is empty, contradictory, too large or uses unsupported keys."""


class JobFailed(SpoolError):
    """The job(s) asked about ended in failed/ (exit code 1)."""

    exit_code = 1


class StorageError(SpoolError):
    """The spool folder could not be written (disk full, read-only, permissions)."""

    exit_code = 1


class MissingExtra(SpoolError):
    """A verb needs libraries of an optional extra this machine does not have (exit code 1)."""

    exit_code = 1

    def __init__(self, extra: str, missing: str):
        super().__init__(
            f"needs the '{extra}' extra ({missing} is not installed here): pip install 'housespool[{extra}]'"
        )
