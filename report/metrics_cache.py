"""The metrics lines of a sweep's jobs, kept between builds in `.cache/metrics-<sweep>.json` by job key.

The cache file is rewritten only when more than `jsoncache.REWRITE_AFTER` of the sweep's jobs
were not in it (read from their folders this build): after one new job the file stays as it
was, the new job's lines are read from its folder (one small file), and encoding them again
(most of this step's cost in a big sweep) waits until it pays. A cache that lags is still
right: a job is taken from it only under its current key. Within a process (`--watch`, the
benchmark) the parsed file is kept with its `stat` and parsed again only when the file changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.incremental import JobKey
from report.jsoncache import publish_json, read_json, worth_rewriting
from spool.errors import SpoolError
from spool.layout import Layout
from spool.results import metrics_of
from spool.states import State

__all__ = ["CACHE_FORMAT", "MetricsIndex", "sweep_metrics"]

CACHE_FORMAT = 2  # .cache/metrics-*.json: {"format", "keys": {id: key}, "columns": {name: [values]}}

#: path -> (the cache document's columns, the frame made of them): the document itself is kept
#: parsed by `report.jsoncache`, the frame is rebuilt only when that document changes
_FRAMES: dict[str, tuple[dict[str, Any], pd.DataFrame]] = {}


class MetricsIndex:
    """One sweep's metrics frame (sorted by id, as `load_metrics` gives it) and each job's row range."""

    def __init__(self, mdf: pd.DataFrame | None):
        self.mdf = mdf
        self.ranges: dict[str, tuple[int, int]] = {}
        if mdf is not None and not mdf.empty and "id" in mdf.columns:
            ids = mdf["id"].astype(str).to_numpy()
            change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(ids)]])
            self.ranges = {ids[a]: (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
        self._lists: dict[str, list[Any]] | None = None
        self._asked = 0

    def columns(self, job_id: str) -> dict[str, list[Any]] | None:
        """One job's metrics lines as plain columns (the sweep's frame is turned into lists once)."""
        r = self.ranges.get(job_id)
        if r is None or self.mdf is None:
            return None
        self._asked += 1
        if self._lists is None and self._asked <= 20:  # a few jobs (a rebuild): slice the frame
            part = self.mdf.iloc[r[0] : r[1]]
            return {str(c): part[c].tolist() for c in part.columns}
        if self._lists is None:
            self._lists = {str(c): self.mdf[c].tolist() for c in self.mdf.columns}
        return {c: v[r[0] : r[1]] for c, v in self._lists.items()}


def _folder(layout: Layout, job_id: str, key: JobKey | None) -> str | None:
    """The job's folder where the scan found it (no look-up), else wherever it is now."""
    if key is None:
        entry = layout.find(job_id)
        return str(entry.path) if entry is not None and entry.is_folder else None
    return os.path.join(layout.state_dir(State(key[0])), job_id)


def _read_cache(path: Path) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The cache file's frame and keys (parsed, and framed, again only when the file changed)."""
    try:
        doc = read_json(path)
        columns, keys = doc["columns"], doc["keys"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, {}
    if doc.get("format") != CACHE_FORMAT or not isinstance(columns, dict) or "id" not in columns:
        return None, {}
    if not isinstance(keys, dict):
        return None, {}
    kept = _FRAMES.get(str(path))
    return (kept[1] if kept is not None and kept[0] is columns else _framed(path, columns)), keys


def _framed(path: Path, columns: dict[str, Any]) -> pd.DataFrame:
    """The frame of a cache document's columns, kept with them (see `_FRAMES`)."""
    frame = pd.DataFrame(columns)
    _FRAMES[str(path)] = (columns, frame)
    return frame


def _write_cache(path: Path, mdf: pd.DataFrame | None, keys: dict[str, JobKey | None]) -> None:
    columns = {str(c): mdf[c].tolist() for c in mdf.columns} if mdf is not None else {"id": [], "step": []}
    doc = {"format": CACHE_FORMAT, "keys": {j: list(k) for j, k in keys.items() if k is not None}}
    doc["columns"] = columns
    try:
        path.parent.mkdir(exist_ok=True)
        publish_json(path, doc, json.dumps(doc, default=str))
    except (OSError, SpoolError):  # a cache: the next build reads those metrics again
        return
    # framed now: the next build of this sweep in this process (often the first incremental one
    # after a full build) finds it ready
    _framed(path, columns)


def _by_id(mdf: pd.DataFrame) -> pd.DataFrame:
    return mdf.sort_values(["id", "step"], kind="stable") if not mdf.empty else mdf


def sweep_metrics(
    layout: Layout, out: Path, sid: str, ids: list[str], job_key: dict[str, JobKey | None]
) -> pd.DataFrame | None:
    """The metrics lines of the sweep's finished jobs, sorted by (id, step).

    Kept between builds in `.cache/metrics-<sweep>.json` with each job's key: lines of jobs whose
    key is unchanged come from there, the others from their folders (`metrics_of`, where the scan
    found them). Same key rule as the pages, so the cache cannot go stale; it is rewritten when
    more than `jsoncache.REWRITE_AFTER` jobs were not in it.
    """
    path = out / ".cache" / f"metrics-{sid}.json"
    cached, cached_keys = _read_cache(path)
    keys = {j: job_key.get(j) for j in ids}
    reuse = {j for j, k in keys.items() if k is not None and cached_keys.get(j) == list(k)}
    missing = [j for j in ids if j not in reuse]
    frames: list[pd.DataFrame] = []
    if cached is not None and reuse:  # every job of the file reused (the usual rebuild): no filter
        frames.append(cached if len(reuse) == len(cached_keys) else cached[cached["id"].isin(reuse)])
    if missing:  # the results said whose they are: no job.json is read to find the sweep's jobs
        found = ((j, _folder(layout, j, keys[j])) for j in missing)
        frames.append(_by_id(metrics_of([(j, f) for j, f in found if f is not None])))
    frames = [f for f in frames if not f.empty]
    if not frames:
        mdf = None
    else:
        mdf = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        # each piece is sorted by (id, step) (the file was written so): when the new jobs' ids
        # come after the file's, as a sweep's do, the pieces end to end are, and a sort of
        # 20,000 lines is saved
        if not mdf["id"].is_monotonic_increasing:
            mdf = _by_id(mdf)
        mdf = mdf.reset_index(drop=True)
    if worth_rewriting(len(missing), cached is not None):
        _write_cache(path, mdf, keys)
    return mdf
