"""The finished jobs' result rows, kept between builds in this process by each job's key.

A rebuild after one new job (`spool report --watch`, `serve --report`, a notebook) reads only
the result.json files whose key changed; every other row is the one read last time under the
same key. The key is the scan's `(state, mtime_ns, size)` of result.json, taken before the read
(`scan.scan_keys`), so a file that changes after its stat carries a newer key next
build: the cache follows the same rule as the pages and cannot go stale. A job that gave no
row (no readable result, or not the sweep's) is remembered as such under its key too.

Only one spool's rows are kept (a build of another spool starts afresh); a fresh process
reads every row once.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from report.incremental import JobKey
from spool.errors import NotFound
from spool.layout import Layout
from spool.results import result_rows, results_frame
from spool.states import State

__all__ = ["cached_results"]

_CACHE: dict[str, dict[str, tuple[JobKey, dict[str, Any] | None]]] = {}


def _rows_for(root: str) -> dict[str, tuple[JobKey, dict[str, Any] | None]]:
    if root not in _CACHE:
        _CACHE.clear()
        _CACHE[root] = {}
    return _CACHE[root]


def cached_results(
    layout: Layout, keys: dict[str, JobKey], sweep: str | None, ids: list[str] | None = None
) -> pd.DataFrame:
    """`load_results(layout, sweep=sweep, state=None)` for the jobs in `keys` (all the scan
    found), with the rows of unchanged jobs from the last build. NotFound as `load_results`.

    `ids`: the jobs of `sweep` among `keys`, sorted, when the caller has them (a build's plan
    does: not worked out again from 10,000 ids)."""
    if ids is None:
        ids = sorted(keys if sweep is None else _members(keys, sweep))
    cache = _rows_for(str(layout.root))
    for j in cache.keys() - keys.keys():  # gone, or retried since: not kept for ever
        del cache[j]
    todo = [j for j in ids if (hit := cache.get(j)) is None or hit[0] != keys[j]]
    if todo:
        found = [(j, keys[j][0], os.path.join(layout.state_dir(State(keys[j][0])), j)) for j in todo]
        read = result_rows(layout, found)  # every row, whatever its sweep: the filter is below
        for j in todo:
            cache[j] = (keys[j], read.get(j))
    rows = [row for j in ids if (row := cache[j][1]) is not None and (sweep is None or row["sweep"] == sweep)]
    if sweep is not None and not rows and not (layout.sweeps / f"{sweep}.yaml").is_file():
        raise NotFound(f"no sweep {sweep!r} in {layout.root}")
    return results_frame(rows)


def _members(keys: dict[str, JobKey], sweep: str) -> list[str]:
    """The ids `<sweep>-NNNNN` among the scanned jobs (a string test per job, not a regex:
    10,000 ids are tested at every build). Ids are ASCII (`spool.ids`)."""
    pre = sweep + "-"
    n = len(pre) + 5
    return [j for j in keys if len(j) == n and j.startswith(pre) and j[-5:].isdigit()]
