"""The runners of a spool, as their heartbeats (`runners/<name>.json`) describe them."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from spool.clock import spool_now
from spool.layout import Layout
from spool.untrusted import read_json

__all__ = ["runner_rows", "ALIVE_MIN_SECONDS"]

#: a runner is alive while its heartbeat is younger than this, or 3 beats if that is longer.
ALIVE_MIN_SECONDS = 15.0


def runner_rows(runners_dir: Path) -> list[dict[str, Any]]:
    """Each runner's heartbeat with `age` (seconds, by the spool's clock) and `alive`."""
    now = spool_now(Layout(runners_dir.parent))
    rows: list[dict[str, Any]] = []
    try:
        names = sorted(p for p in os.listdir(runners_dir) if p.endswith(".json") and not p.startswith("."))
    except FileNotFoundError:
        return rows
    for name in names:
        path = runners_dir / name
        try:
            doc = read_json(path, 1 << 20)  # the folder's text: a FIFO, a surrogate, any shape
            age = now - path.stat().st_mtime
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(doc, dict):  # not a heartbeat any runner wrote
            doc = {"name": name[:-5], "problem": f"{name} is not a JSON object"}
        try:
            beat = float(doc.get("heartbeat_seconds") or 5)
        except (TypeError, ValueError):
            beat = 5.0
        beat = beat if math.isfinite(beat) else 5.0
        doc["age"] = round(age, 1)
        doc["alive"] = doc.get("status") != "stopped" and age < max(ALIVE_MIN_SECONDS, 3 * beat)
        rows.append(doc)
    return rows
