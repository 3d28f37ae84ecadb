"""housespool: a job spooler for a house full of machines, made of a folder."""

from spool.api import Spool
from spool.errors import SpoolError
from spool.model import Job
from spool.states import State

__all__ = ["Spool", "SpoolError", "Job", "State", "__version__"]
__version__ = "0.1.0"
