"""housespool: a job spooler for a house full of machines, made of a folder."""

from spool.api import Spool
from spool.errors import SpoolError
from spool.model import Job
from spool.states import State

__all__ = ["Spool", "SpoolError", "Job", "State", "__version__"]


def __getattr__(name: str) -> str:
    if name == "__version__":  # read when asked for (package metadata), not at import
        from spool.version import version

        return version()
    raise AttributeError(f"module 'spool' has no attribute {name!r}")
