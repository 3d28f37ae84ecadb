"""Where a script's outputs are once its job has moved: paths in its result, made spool-relative.

An argv4 script is given absolute paths inside its claimed folder (`writePath` is the job's
`outputs/`), and reports what it wrote by those paths: `{"path": ".../claimed/<id>@<token>/
outputs/x.csv"}`. That folder is gone once the job moves to `done/`. The write-up records,
beside the script's own result (which is kept as it was), `result_paths`: for every string in
the result (nested objects too, keys joined with dots as the results columns are) that names a
place inside the job's folder, where it is after the move, spool-relative (`done/<id>/outputs/
x.csv`), so any machine, whatever its mount point, can open it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["result_paths"]


def _prefixes(folder: Path) -> list[str]:
    """The folder as the script may have been told it: as given, and with symlinks resolved."""
    out = [str(folder)]
    real = os.path.realpath(folder)
    if real not in out:
        out.append(real)
    return [p.rstrip(os.sep) + os.sep for p in out]


def result_paths(result: Any, folder: Path, final: str) -> dict[str, str]:
    """`{dotted key: spool-relative path}` for the result's strings that point into `folder`,
    re-based onto `final` (the job folder's spool-relative path after its move, `done/<id>`)."""
    if not isinstance(result, dict):
        return {}
    prefixes = _prefixes(folder)
    out: dict[str, str] = {}
    stack: list[tuple[str, dict[str, Any]]] = [("", result)]
    while stack:
        prefix, obj = stack.pop()
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((name + ".", value))
            elif isinstance(value, str):
                for p in prefixes:
                    if value.startswith(p) or value == p.rstrip(os.sep):
                        rest = value[len(p):].replace(os.sep, "/")
                        out[name] = f"{final}/{rest}".rstrip("/")
                        break
    return out
