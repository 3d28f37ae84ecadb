"""The sweeps' definitions (`sweeps/<id>.yaml`), kept parsed in this process by each file's stamp.

A rebuild (`spool report --watch`, `serve --report`) parses only the definitions whose file
changed since the last build in this process: same path, inode, mtime, ctime and size as when it
was read is the same bytes (a file edited in place changes its mtime and ctime). As the runner's
`Scanner` does with a folder's stamp, a stamp is trusted only when it was already a second old
when the file was read: two writes within one tick of a coarse clock cannot hide behind it. A
definition handed out is shared between builds: callers must not change it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from spool.layout import Layout
from spool.untrusted import clean, read_file

__all__ = ["SweepDef", "read_sweep_defs"]

_Stamp = tuple[int, int, int, int]
_PARSED: dict[str, tuple[_Stamp, SweepDef]] = {}  #: path -> (stamp when read, its definition)


@dataclass
class SweepDef:
    """A sweep's definition from `sweeps/<id>.yaml` (everything optional but the id)."""

    id: str
    doc: dict[str, Any] = field(default_factory=dict)
    mtime_ns: int = 0

    @property
    def name(self) -> str | None:
        v = self.doc.get("name")
        return str(v) if v not in (None, "") else None

    @property
    def count(self) -> int | None:
        v = self.doc.get("count")
        return int(v) if isinstance(v, int) else None

    @property
    def metric(self) -> dict[str, Any] | None:
        m = self.doc.get("metric")
        return m if isinstance(m, dict) and m.get("name") else None


def read_sweep_defs(layout: Layout) -> dict[str, SweepDef]:
    """Every `sweeps/*.yaml`; an unreadable one still names its sweep (with an empty definition)."""
    out: dict[str, SweepDef] = {}
    try:
        it = os.scandir(layout.sweeps)
    except FileNotFoundError:
        return out
    with it:
        for de in it:
            if not de.name.endswith(".yaml") or de.name.startswith("."):
                continue
            out[de.name[:-5]] = _read_def(de)
    for path in [p for p in _PARSED if os.path.dirname(p) == str(layout.sweeps)]:
        if os.path.basename(path)[:-5] not in out:
            del _PARSED[path]  # removed since: not kept for ever
    return out


def _read_def(de: os.DirEntry[str]) -> SweepDef:
    sid = de.name[:-5]
    try:
        st = de.stat()
    except OSError:
        return SweepDef(sid, {}, 0)
    stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    hit = _PARSED.get(de.path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        doc = clean(yaml.safe_load(read_file(de.path, 1 << 20)))  # regular files only
    except (OSError, yaml.YAMLError):
        return SweepDef(sid, {}, 0)
    sdef = SweepDef(sid, doc if isinstance(doc, dict) else {}, st.st_mtime_ns)
    if time.time() - st.st_mtime > 1.0 and time.time() - st.st_ctime > 1.0:
        _PARSED[de.path] = (stamp, sdef)
    return sdef
