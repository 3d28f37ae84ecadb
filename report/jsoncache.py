"""The report's own JSON files (the manifest, `.cache/*.json`) kept parsed in this process.

A rebuild in the same process (`spool report --watch`, `serve --report`, the bench) gets the
document it wrote or read last time from memory, as long as the file is still that one: same
inode, mtime, ctime and size. Every write is an atomic rename (a new inode), so a file replaced
since, by this process or another, is read and parsed again; a document read (not written) here
is kept only when its file was already a second old. A document handed out or published
here is shared: callers must not change it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spool.errors import SpoolError
from spool.protocol import publish_text

__all__ = ["read_json", "publish_json", "REWRITE_AFTER", "worth_rewriting", "keep_entries"]

_Stamp = tuple[int, int, int, int]
_MEMO: dict[str, tuple[_Stamp, Any]] = {}
MAX_FILES = 256  #: documents kept (a report has a few per sweep); the oldest go first
#: entries a build had to make afresh that make it rewrite a per-job cache (rows, runs, metrics)
REWRITE_AFTER = 32


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _remember(key: str, stamp: _Stamp, doc: Any) -> None:
    _MEMO.pop(key, None)
    while len(_MEMO) >= MAX_FILES:
        del _MEMO[next(iter(_MEMO))]
    _MEMO[key] = (stamp, doc)


def read_json(path: Path) -> Any:
    """The parsed document at `path`; OSError or ValueError as `json.loads(path.read_bytes())`."""
    key = str(path)
    stamp = _stamp(path)
    hit = _MEMO.get(key)
    if stamp is not None and hit is not None and hit[0] == stamp:
        return hit[1]
    doc = json.loads(path.read_bytes())
    # not replaced while it was read, and a stamp a second old (as the runner's `Scanner`: two
    # in-place writes within one tick of a coarse clock cannot hide behind it)
    if stamp is not None and _stamp(path) == stamp and time.time_ns() - stamp[1] > 1_000_000_000:
        _remember(key, stamp, doc)
    return doc


def publish_json(path: Path, doc: Any, text: str, *, fsync: bool = False) -> None:
    """Publish `text` (the JSON of `doc`) at `path` atomically, and keep `doc` as its document."""
    key = str(path)
    _MEMO.pop(key, None)
    publish_text(path, text, fsync=fsync)
    stamp = _stamp(path)
    if stamp is not None:
        _remember(key, stamp, doc)


def worth_rewriting(made: int, had_file: bool) -> bool:
    """Whether a per-job cache (a sweep's table rows, compare runs, metrics lines) is written
    again after a build made `made` of its entries afresh: when there was no usable file, or
    past `REWRITE_AFTER` of them. After one new job the file stays as it was and the new job's
    entry is made again at the next build (one row, one run); encoding and writing the whole
    sweep's entries
    (a megabyte at 2,000 runs) waits until it pays. A cache that lags is still right: an entry
    is taken from it only under its job's current key."""
    return not had_file or made > REWRITE_AFTER


def keep_entries(
    path: Path, cols: str, name: str, entries: Callable[[], dict[str, Any]], made: int, had_file: bool
) -> None:
    """Write a per-job cache `{"cols": cols, name: entries()}` when `worth_rewriting(made,
    had_file)`. A failed write loses only the cache: the next build makes those entries again."""
    if not worth_rewriting(made, had_file):
        return
    doc = {"cols": cols, name: entries()}
    try:
        path.parent.mkdir(exist_ok=True)
        publish_json(path, doc, json.dumps(doc, separators=(",", ":")))
    except (OSError, SpoolError):
        pass
