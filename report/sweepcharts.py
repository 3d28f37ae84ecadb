"""One sweep's charts: which to draw from its results and metrics, and which of them changed.

`plan` prepares every chart the sweep gets (cheap, in the build's process) with what its page
shows beside them; `redraw` hands the drawing of those whose digest changed (or whose file is
missing) to the build's workers and removes files no chart makes any more. Client charts (the
linearity chart and the timeline: every new run changes them) are never drawn here: `for_page`
gives the page their data, which the browser draws.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pandas as pd

from report.adaptive import adaptive_charts
from report.charts import Chart, curves, failure_kinds, linearity, machines, parallel, render, spread, usage
from report.data import MetricChoice, config_keys, config_label, fmt, rank
from spool.layout import Layout

__all__ = ["PARTS", "plan", "chart_frame", "curve_frame", "prepared_charts", "redraw", "for_page"]

Submit = Callable[..., Future[Any]]


def _labels(top: pd.DataFrame, metric: MetricChoice | None, params: list[str]) -> dict[str, str]:
    """The legend's words for the highlighted runs (only those: a sweep has thousands)."""
    keys = config_keys(top, params)
    vals = top[metric.column].tolist() if metric else [None] * len(top)
    return {
        jid: config_label(str(key), params) + (f" → {fmt(val)}" if metric else "")
        for jid, key, val in zip(top["id"], keys, vals, strict=True)
    }


#: the two parts of a sweep's charts: those of the runs' metric (linearity, spread, parallel
#: coordinates, learning curves: the dearest, handed to a worker) and those of the runs
#: themselves (adaptive, timeline, usage, failures: made meanwhile by the build's own process)
PARTS = ("metric", "runs")


def plan(
    layout: Layout,
    sid: str,
    sub: pd.DataFrame,
    metric: MetricChoice | None,
    params: list[str],
    seed: str | None,
    mdf: pd.DataFrame | None,
    definition: dict[str, Any] | None = None,
    *,
    parts: tuple[str, ...] = PARTS,
) -> tuple[list[Chart], dict[str, Any]]:
    """The sweep's charts in page order, and what the page shows beside them (fits, spread, hosts...).

    `mdf`: the metrics lines of the sweep's runs (`metrics_cache.sweep_metrics`); `definition`:
    the sweep's definition document as the build read it (None: not known); `parts`: which of
    `PARTS` (the charts of both, joined in that order, are the page's)."""
    made: list[Chart | None] = []
    info: dict[str, Any] = {"failure_kinds": []}
    if "metric" in parts:
        made += _metric_charts(sub, metric, params, seed, mdf)
    if "runs" in parts:
        made += adaptive_charts(layout, sid, definition)  # bayes sweeps only
        made += _run_charts(sub, info)
    charts = [c for c in made if c is not None]
    for c in charts:
        info.update(c.info)
    return charts, info


def _metric_charts(
    sub: pd.DataFrame,
    metric: MetricChoice | None,
    params: list[str],
    seed: str | None,
    mdf: pd.DataFrame | None,
) -> list[Chart | None]:
    made: list[Chart | None] = []
    done = sub[sub["state"] == "done"] if not sub.empty else sub
    if metric is not None and not done.empty:
        made.append(linearity.prepare(done, metric, params, seed))
        made.append(spread.prepare(done, metric, params))
        made.append(parallel.prepare(done, metric, params))
    if mdf is not None and not mdf.empty:
        ordered = rank(sub, metric) if metric else sub
        ranked = ordered["id"].tolist()
        stopped = sub["id"][sub["stopped.band"].notna()].tolist() if "stopped.band" in sub.columns else []
        labels = _labels(ordered.head(curves.HIGHLIGHT_RUNS * 4), metric, params)
        made.append(curves.prepare(mdf, ranked, labels, metric, stopped=stopped))
    return made


def _run_charts(sub: pd.DataFrame, info: dict[str, Any]) -> list[Chart | None]:
    if sub.empty:
        return []
    failed = sub["state"] == "failed"
    kinds = (
        Counter(sub.loc[failed, "error.kind"].fillna("unknown"))
        if "error.kind" in sub.columns
        else Counter({"unknown": int(failed.sum())} if failed.any() else {})
    )
    info["failure_kinds"] = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    return [machines.prepare(sub), usage.prepare(sub), failure_kinds.prepare(dict(kinds))]


#: the columns the charts read besides the metric, parameters and seed
_CHART_COLUMNS = ("id", "state", "host", "started", "ended")
_CHART_PREFIXES = ("error.", "usage.", "stopped.")


def chart_frame(
    sub: pd.DataFrame, metric: MetricChoice | None, params: list[str], seed: str | None
) -> pd.DataFrame:
    """`sub` with only the columns the charts read: each chart selects and sorts rows, and
    every copy of a sweep's 25-30 columns cost 12-15 ms of the charts' 75 at 2,000 runs
    (measured); handed to a worker, it is a third of the bytes to send."""
    keep = {*_CHART_COLUMNS, *params, *([seed] if seed else []), *([metric.column] if metric else [])}
    return sub[[c for c in sub.columns if c in keep or c.startswith(_CHART_PREFIXES)]]


def curve_frame(mdf: pd.DataFrame | None, metric: MetricChoice | None) -> pd.DataFrame | None:
    """The metrics lines with only what the learning curves draw (the run, the x and y keys
    `curves.pick_curve_keys` picks, which it picks again from these), the run as a category:
    handed to a worker, a fifth of the bytes of every key with each line's id as a string."""
    keys = curves.pick_curve_keys(mdf, metric)
    if mdf is None or keys is None:
        return mdf
    out = mdf[["id", *dict.fromkeys(keys)]]
    return out.assign(id=out["id"].astype("category"))


def prepared_charts(parts: tuple[str, ...], *args: Any) -> tuple[list[Chart], dict[str, Any]]:
    """`plan(*args, parts=parts)`, with each client chart's JSON for the page made too: run in a
    worker, the JSON is the worker's work as well (and comes back with the chart)."""
    charts, info = plan(*args, parts=parts)
    for c in charts:
        if c.client:
            _ = c.payload
    return charts, info


def redraw(
    charts: list[Chart], old: list[dict[str, Any]], chart_dir: Path, submit: Submit
) -> tuple[list[dict[str, Any]], list[Future[Any]], list[str]]:
    """Draw the charts whose digest changed or whose file is gone; remove files of charts not made.

    Returns the charts' entries (for the page and the manifest), the drawings' futures and the
    files being drawn. A chart file is replaced atomically, so a page open meanwhile shows the
    old image or the new one, never half of one.
    """
    chart_dir.mkdir(parents=True, exist_ok=True)
    before = {e.get("file"): e.get("digest") for e in old if isinstance(e, dict)}
    entries, futures, drawn = [], [], []
    for c in charts:
        entry = c.entry()
        entries.append(entry)
        if c.client:  # drawn by the browser from the page's data
            continue
        path = chart_dir / c.file
        if before.get(c.file) == entry["digest"] and path.exists():
            continue
        futures.append(submit(render, c.draw, c.data, path))
        drawn.append(c.file)
    keep = {c.file for c in charts if not c.client}
    for name in os.listdir(chart_dir):
        if name not in keep and not name.startswith("."):
            try:
                os.unlink(chart_dir / name)
            except OSError:
                pass
    return entries, futures, drawn


def for_page(charts: list[Chart], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The charts' entries as the sweep page needs them: a client chart's with its data (`json`),
    which the manifest does not keep."""
    return [{**e, "json": c.payload} if c.client else e for c, e in zip(charts, entries, strict=True)]
