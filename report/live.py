"""Live pages: a page that shows unfinished work reloads itself when a build changes it.

Each build writes `live.js` beside `index.html` (after the manifest): one call,
`spoolLive({"built": ..., "pages": {"index": sig, "sweep:<id>": sig, ...}})`, the signature of
what every live page was last written from. A page that shows unfinished work (the index while
any job is pending or running; a sweep page while its sweep has jobs to come) carries its own
key and signature in `<body data-live=... data-live-sig=...>`; `report.js` loads `live.js`
every few seconds and reloads the page when its signature there differs. A page that shows only
finished work carries no key, so once a sweep is finished its page stops asking. A script file,
not a fetch of the manifest: a page opened from disk may load scripts beside it but not read
files with `fetch`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report.incremental import LOOSE, sig_hash
from spool.protocol import publish_text

__all__ = [
    "BEACON",
    "PollSeconds",
    "page_state",
    "index_state",
    "sweep_unfinished",
    "manifest_part",
    "write_beacon",
]

BEACON = "live.js"
PollSeconds = 2


def page_state(key: str, sig: str, unfinished: bool) -> dict[str, Any]:
    """What a page template needs to be live (`base.html.j2` reads it)."""
    return {"key": key, "sig": sig, "unfinished": unfinished, "poll_ms": PollSeconds * 1000}


def sweep_unfinished(counts: dict[str, int], total: int | None) -> bool:
    """A sweep has work to come: jobs pending or running, or fewer finished than it has points."""
    finished = counts.get("done", 0) + counts.get("failed", 0)
    return counts.get("pending", 0) + counts.get("claimed", 0) > 0 or bool(total and finished < total)


def index_state(status: dict[str, Any], summaries: dict[str, Any]) -> dict[str, Any]:
    """The index's live state: its signature is what it shows that can change (not the build time)."""
    counts = {k: status.get(k, 0) for k in ("pending", "claimed", "done", "failed")}
    unfinished = counts["pending"] + counts["claimed"] > 0 or any(
        sweep_unfinished(s.get("progress") or {}, s.get("total"))
        for sid, s in summaries.items()
        if sid != LOOSE and isinstance(s, dict)
    )
    return page_state("index", sig_hash(counts, summaries), unfinished)


def manifest_part(index: dict[str, Any], sweeps: dict[str, Any]) -> dict[str, Any]:
    """The `live` part of the manifest: each live page's current signature."""
    pages = {"index": index["sig"]}
    for sid, entry in sweeps.items():
        if isinstance(entry, dict) and entry.get("page"):
            pages[f"sweep:{sid}"] = str(entry["page"])
    return {"pages": pages}


def write_beacon(out: Path, part: dict[str, Any], built_at: str) -> None:
    """`live.js`: JSON (ASCII-escaped, so no text from the folder can end the call) in one call."""
    doc = json.dumps({"built": built_at, **part}, sort_keys=True)
    publish_text(out / BEACON, f"window.spoolLive && window.spoolLive({doc});\n", fsync=False)
