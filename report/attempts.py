"""A job page's attempts: the pieces of one run, on each machine it spanned (issue 17).

`timeline(rec)` turns a result record's `attempts` (written from the second attempt on, see
docs/format.md) into rows of a small timeline: one row per host, one bar per attempt placed by
its start and end within the whole run, coloured by how it ended. Plain data for the template
(positions in percent); no chart library. A record without `attempts` gives nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from report.data import fmt, fmt_duration, fmt_time

__all__ = ["timeline"]


def _when(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def timeline(rec: dict[str, Any]) -> dict[str, Any] | None:
    """{"rows": [{"host", "pieces": [...]}], "count", "interrupted", "hosts"}, or None."""
    pieces = rec.get("attempts")
    if not isinstance(pieces, list) or not pieces:
        return None
    spans = []
    for p in pieces:
        if not isinstance(p, dict):
            continue
        start, end = _when(p.get("started")), _when(p.get("ended"))
        if start is not None and end is not None and end >= start:
            spans.append((p, start, end))
    if not spans:
        return None
    t0 = min(s for _, s, _ in spans)
    total = max(e for _, _, e in spans) - t0 or 1.0
    rows: dict[str, list[dict[str, Any]]] = {}
    for p, start, end in spans:
        host = str(p.get("host") or "?")
        state = str(p.get("state") or "?")
        rows.setdefault(host, []).append(
            {
                "attempt": fmt(p.get("attempt")),
                "state": state,
                "kind": fmt(p.get("kind")) if p.get("kind") else "",
                "runner": fmt(p.get("runner")),
                "left": round(100 * (start - t0) / total, 2),
                "width": max(0.5, round(100 * (end - start) / total, 2)),
                "title": f"attempt {fmt(p.get('attempt'))}: {state} on {host}, from "
                f"{fmt_time(p.get('started'))}, {fmt_duration(end - start)}",
            }
        )
    return {
        "rows": [{"host": h, "pieces": ps} for h, ps in rows.items()],
        "count": len(spans),
        "interrupted": sum(1 for p, _, _ in spans if p.get("state") == "interrupted"),
        "hosts": len(rows),
    }
