"""The metrics lines of a sweep's jobs, kept between builds in `.cache/metrics-<sweep>.json` by job key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.incremental import JobKey
from spool.errors import SpoolError
from spool.layout import Layout
from spool.protocol import publish_text
from spool.results import metrics_of
from spool.states import State

__all__ = ["CACHE_FORMAT", "MetricsIndex", "sweep_metrics"]

CACHE_FORMAT = 2  # .cache/metrics-*.json: {"format", "keys": {id: key}, "columns": {name: [values]}}


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


def sweep_metrics(
    layout: Layout, out: Path, sid: str, ids: list[str], job_key: dict[str, JobKey | None]
) -> pd.DataFrame | None:
    """The metrics lines of the sweep's finished jobs, sorted by (id, step).

    Kept between builds in `.cache/metrics-<sweep>.json` with each job's key: lines of jobs whose
    key is unchanged come from there, the others from their folders (`metrics_of`, where the scan
    found them). Same key rule as the pages, so the cache cannot go stale.
    """
    path = out / ".cache" / f"metrics-{sid}.json"
    cached: pd.DataFrame | None = None
    cached_keys: dict[str, Any] = {}
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") == CACHE_FORMAT and isinstance(doc["columns"], dict) and "id" in doc["columns"]:
            cached_keys = doc["keys"]
            cached = pd.DataFrame(doc["columns"])
    except (OSError, ValueError, KeyError, TypeError):
        cached, cached_keys = None, {}
    keys = {j: job_key.get(j) for j in ids}
    reuse = {j for j, k in keys.items() if k is not None and cached_keys.get(j) == list(k)}
    missing = [j for j in ids if j not in reuse]
    frames: list[pd.DataFrame] = []
    if cached is not None and reuse:
        frames.append(cached[cached["id"].isin(reuse)])
    if missing:  # the results said whose they are: no job.json is read to find the sweep's jobs
        found = ((j, _folder(layout, j, keys[j])) for j in missing)
        frames.append(metrics_of([(j, f) for j, f in found if f is not None]))
    frames = [f for f in frames if not f.empty]
    if not frames:
        mdf = None
    else:
        mdf = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        mdf = mdf.sort_values(["id", "step"], kind="stable").reset_index(drop=True)
    try:
        path.parent.mkdir(exist_ok=True)
        columns = (
            {str(c): mdf[c].tolist() for c in mdf.columns} if mdf is not None else {"id": [], "step": []}
        )
        keyed = {j: list(k) for j, k in keys.items() if k is not None}
        publish_text(
            path,
            json.dumps({"format": CACHE_FORMAT, "keys": keyed, "columns": columns}, default=str),
            fsync=False,
        )
    except (OSError, SpoolError):  # a cache: the next build reads those metrics again
        pass
    return mdf
