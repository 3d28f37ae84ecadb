"""The scan of a build: each finished job's key, taken before anything is read.

A job's key is `(state, mtime_ns, size)` of its `result.json` (the mtime is its notes folder's
when that is later): `incremental` compares it with the manifest's to know what changed, and
the caches (`rowcache`, `.cache/*.json`) keep each entry under it. A state folder is listed
once; each name is checked for being a job id once per process; a big folder's stats are split
with an idle worker (`SPLIT_AT`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from report.incremental import JobKey
from spool.api import Spool
from spool.ids import is_valid_id
from spool.layout import RESULT_FILE, is_ignored_name
from spool.notes import NOTES_DIR
from spool.states import State

__all__ = ["scan_keys", "stat_names", "ids_by_state", "SPLIT_AT"]


def scan_keys(spool: Spool, sweep: str | None, split: Split | None = None) -> dict[str, JobKey]:
    """`(state, mtime_ns, size)` of every finished job's result.json, taken before anything is read.

    Plain names, not `Path`s (at 10,000 jobs a fifth of the cost), and each stat relative to the
    state folder's descriptor where the platform allows (no walk down the spool's path per job:
    about a fifth less CPU at 10,000 jobs). A name is checked for being a job id once per process
    (`_ID_NAMES`), not once per build. `split`: a worker's `submit` (the build's, idle when the
    scan runs): a folder of more than `SPLIT_AT` jobs has half of its stats taken there, at the
    same time (each `stat` is a few microseconds of system time on a VM: half the scan's wall
    time at 10,000 jobs)."""
    keys: dict[str, JobKey] = {}
    prefix = f"{sweep}-" if sweep else ""
    for state in (State.DONE, State.FAILED):
        folder = str(spool.layout.state_dir(state))
        names = _job_names(folder, prefix)
        far: Future[Any] | None = None
        if split is not None and len(names) > SPLIT_AT:
            half = len(names) // 2
            far, names = split(stat_names, folder, state.value, names[:half]), names[half:]
        near = stat_names(folder, state.value, names)
        if far is not None:
            keys.update(far.result()[0])  # the first half first: the folder's order, as one scan
        keys.update(near)
    _fold_in_notes(spool, keys)
    return keys


#: a folder of more jobs than this has half its stats taken by a worker (when `scan_keys` has one)
SPLIT_AT = 2000
Split = Callable[..., "Future[Any]"]


def _job_names(folder: str, prefix: str) -> list[str]:
    """The names in a state folder that are job ids (starting with `prefix`), in listing order."""
    good = _ID_NAMES
    if len(good) > 1_000_000:
        good.clear()
    try:
        listed = os.listdir(folder)
    except OSError:
        return []  # no such state folder (yet)
    out = []
    for name in listed:
        if prefix and not name.startswith(prefix):
            continue
        if name not in good:
            if is_ignored_name(name) or not is_valid_id(name):
                continue
            good.add(name)
        out.append(name)
    return out


def stat_names(folder: str, value: str, names: list[str]) -> dict[str, JobKey]:
    """`(value, mtime_ns, size)` of each job's result.json (or of its folder entry, a job
    without one) in one state folder; a job gone meanwhile is left out. Any process may run it."""
    keys: dict[str, JobKey] = {}
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if _AT else None
    except OSError:
        return keys
    try:
        for name in names:
            try:  # inline, not a call per job: a tenth of the scan
                if fd is not None:
                    st = os.stat(name + _RESULT, dir_fd=fd)
                else:
                    st = os.stat(os.path.join(folder, name + _RESULT))
            except OSError:
                found = _stat_entry(folder, fd, name)  # a job without a result.json
                if found is None:
                    continue
                st = found
            keys[name] = (value, st.st_mtime_ns, st.st_size)
    finally:
        if fd is not None:
            os.close(fd)
    return keys


_AT = os.stat in os.supports_dir_fd and os.listdir in os.supports_fd
_RESULT = "/" + RESULT_FILE
_ID_NAMES: set[str] = set()  #: names already found to be job ids (a pure check of the name)


def _stat_entry(folder: str, fd: int | None, name: str) -> os.stat_result | None:
    """The stat of a job's folder entry itself (a job without a result.json), else None."""
    try:
        if fd is not None:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        return os.stat(os.path.join(folder, name), follow_symlinks=False)
    except OSError:
        return None


def _fold_in_notes(spool: Spool, keys: dict[str, JobKey]) -> None:
    """A job's page shows its notes (`notes/<id>/`, outside its folder): a job with notes has
    the later of its result's and its notes folder's mtime in its key, so a new note redoes its
    page. One listing of `notes/`, one stat per job that has notes."""
    try:
        it = os.scandir(spool.root / NOTES_DIR)
    except OSError:
        return
    with it:
        for de in it:
            k = keys.get(de.name)
            if k is None:
                continue
            try:
                mtime = de.stat(follow_symlinks=False).st_mtime_ns
            except OSError:
                continue
            if mtime > k[1]:
                keys[de.name] = (k[0], mtime, k[2])


def ids_by_state(keys: dict[str, JobKey]) -> dict[State, list[str]]:
    """The scanned jobs' ids per finished state (`Spool.status(counted=...)`: not listed again)."""
    out: dict[State, list[str]] = {State.DONE: [], State.FAILED: []}
    by_value = {st.value: ids for st, ids in out.items()}
    for jid, k in keys.items():
        by_value[k[0]].append(jid)
    return out
