"""housespool's version: the installed distribution's, read from its metadata (pyproject.toml
says it once), never written in the code."""

from __future__ import annotations

from functools import cache

__all__ = ["version"]


@cache
def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("housespool")
    except metadata.PackageNotFoundError:  # a source tree run without being installed
        return "0+unknown"
