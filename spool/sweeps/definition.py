"""Reading a sweep's files: its definition (`sweeps/<id>.yaml`) and its points beside it.

Below both `store` (which writes them and makes the jobs) and `adaptive` (which proposes the
next point from the definition), so neither has to import the other to read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spool.errors import NotFound, SweepError
from spool.untrusted import clean, loads, read_file

__all__ = ["read_sweep_files"]

_LIMIT = 256 << 20  # a sweep's points: 100,000 of them with a few keys each is ~10 MB


def read_sweep_files(sweeps: Path, sweep_id: str) -> tuple[dict[str, Any], Any]:
    """(definition, points as published) of the sweep `sweep_id` in the folder `sweeps`."""
    try:
        # regular files only, bounded (spool.untrusted): a FIFO here must not block any reader
        doc = clean(yaml.safe_load(read_file(sweeps / f"{sweep_id}.yaml", limit=_LIMIT)))
        points = loads(read_file(sweeps / f"{sweep_id}.points.json", limit=_LIMIT))
    except FileNotFoundError:
        raise NotFound(f"no sweep {sweep_id!r} in {sweeps}") from None
    except (OSError, ValueError, RecursionError, yaml.YAMLError) as exc:
        raise SweepError(f"sweep definition unreadable: {exc}", file=sweeps / f"{sweep_id}.yaml") from None
    if not isinstance(doc, dict):
        raise SweepError("sweep definition unreadable: not a mapping", file=sweeps / f"{sweep_id}.yaml")
    return doc, points
