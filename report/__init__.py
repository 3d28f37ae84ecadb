"""The static HTML report of a spool: `build_report(Spool(path))`, or `spool report` on the command line.

Kept light on import (the `spool` command loads `report.cli` to register its verb): the builder,
jinja2 and matplotlib load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from report.build import build_report

        return build_report
    raise AttributeError(f"module 'report' has no attribute {name!r}")
