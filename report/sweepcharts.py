"""One sweep's chart set: which charts to draw from its results and metrics, and what its page shows."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from report import charts
from report.data import MetricChoice, config_keys, config_label, fmt, is_numeric, rank
from report.incremental import JobKey
from report.metrics_cache import MetricsIndex, sweep_metrics
from spool.layout import Layout

__all__ = ["sweep_charts"]


def sweep_charts(
    layout: Layout,
    out: Path,
    sid: str,
    sub: pd.DataFrame,
    metric: MetricChoice | None,
    params: list[str],
    seed: str | None,
    chart_dir: Path,
    metrics_cache: dict[str, MetricsIndex],
    job_key: dict[str, JobKey | None],
) -> dict[str, Any]:
    """Redraw the sweep's charts into `chart_dir`; returns their files, titles, fits, spread and hosts."""
    if chart_dir.exists():
        shutil.rmtree(chart_dir, ignore_errors=True)
    chart_dir.mkdir(parents=True, exist_ok=True)
    made: list[dict[str, str]] = []
    info: dict[str, Any] = {"files": [], "charts": made}

    def add(path: Path | None, title: str, caption: str) -> None:
        if path is not None:
            made.append({"file": path.name, "title": title, "caption": caption})
            info["files"].append(path.name)

    # metrics lines of every run of the sweep, shared with the job pages
    mdf = sweep_metrics(layout, out, sid, sub["id"].astype(str).tolist(), job_key) if not sub.empty else None
    metrics_cache[sid] = MetricsIndex(mdf)

    done = sub[sub["state"] == "done"] if not sub.empty else sub
    if metric is not None and not done.empty:
        numeric = [p for p in params if is_numeric(done[p]) and done[p].nunique() > 1]
        path, fits = charts.metric_vs_params(done, metric, numeric, seed, chart_dir / "metric_vs_params.png")
        info["fits"] = fits
        add(
            path,
            "Metric against each parameter (linearity)",
            "Each dot a run (colour: seed), black: mean per value, dashed: least-squares line with its R².",
        )
        path, spread = charts.seed_spread(done, metric, params, chart_dir / "seed_spread.svg")
        add(
            path,
            "Spread across seeds (variance)",
            "Boxes: quartiles per configuration; grey dots: single runs; red: mean ± standard deviation.",
        )
        info["spread"] = spread
        pc = [p for p in params if done[p].nunique() > 1]
        add(
            charts.parallel_coordinates(done, metric, pc, chart_dir / "parallel.svg"),
            "Parallel coordinates",
            "Each line a run through its parameter values, coloured by the metric.",
        )
    mdf = metrics_cache[sid].mdf
    if mdf is not None and not mdf.empty:
        ranked = rank(sub, metric)["id"].tolist() if metric else sub["id"].tolist()
        labels = {}
        keys = config_keys(sub, params)
        vals = sub[metric.column].tolist() if metric else [None] * len(sub)
        for jid, key, val in zip(sub["id"], keys, vals, strict=True):
            labels[jid] = config_label(str(key), params) + (f" → {fmt(val)}" if metric else "")
        stopped = sub["id"][sub["stopped.band"].notna()].tolist() if "stopped.band" in sub.columns else []
        add(
            charts.learning_curves(
                mdf, ranked, labels, metric, chart_dir / "learning_curves.png", stopped=stopped
            ),
            "Learning curves",
            "Every run's metrics lines; the best runs by the metric in colour"
            + ("; ✕: where hyperband stopped a run." if stopped else "."),
        )
    if not sub.empty:
        path, hosts = charts.timeline(sub, chart_dir / "timeline.png")
        add(
            path,
            "Machines: timeline and throughput",
            "Top: each bar a job on its host from start to end. Bottom: jobs finished over time per host.",
        )
        info["hosts"] = hosts
        kinds = (
            Counter(sub.loc[sub["state"] == "failed", "error.kind"].fillna("unknown"))
            if "error.kind" in sub.columns
            else Counter()
        )
        add(charts.failures(dict(kinds), chart_dir / "failures.svg"), "Failures by kind", "")
        info["failure_kinds"] = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    return info
