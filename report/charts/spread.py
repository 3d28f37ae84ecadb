"""Variance: the spread of the metric across seeds for each configuration, best configurations first.

A client chart (`static/spread.js`, drawing `spread`): `prepare` groups the runs by configuration
(the parameters other than the seed), orders the groups by their mean and gives the best
`max_configs` of them with their quartiles, mean and standard deviation and every run's value;
the page draws one row per configuration, a box, a range, the runs as dots (hover one for its
run, click it for its job) and the mean ± std in red. It was a matplotlib figure: 0.15-0.2 s of a
worker per sweep and build, about a fifth of a 1,000-job build's CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from report.charts.axes import finite_rows, short, significant
from report.charts.spec import Chart
from report.data import MetricChoice, config_keys, config_label

__all__ = ["prepare"]


def _seeds_said(counts: np.ndarray) -> str:
    lo, hi = int(counts.min()), int(counts.max())
    return f"{hi} run(s) per box" if lo == hi else f"{lo} to {hi} runs per box (n beside each)"


def prepare(
    df: pd.DataFrame, metric: MetricChoice, params: Sequence[str], max_configs: int = 30
) -> Chart | None:
    """Box + strip per configuration (params other than the seed), mean ± std marked, best first."""
    d = finite_rows(df, metric.column)
    if d.empty:
        return None
    keys = config_keys(d, list(params))
    y = d[metric.column].astype(float)
    stats = y.groupby(keys).agg(["mean", "std", "count"])
    stats = stats.sort_values("mean", ascending=metric.mode == "min", kind="stable")
    total = len(stats)
    shown = stats.head(max_configs)
    info = {
        "configs": total,
        "shown": len(shown),
        "max_runs": int(stats["count"].max()),
        "min_runs": int(stats["count"].min()),
    }
    in_shown = keys.isin(shown.index).to_numpy()
    where = {key: i for i, key in enumerate(shown.index)}
    by = y[in_shown].groupby(keys[in_shown]).quantile(np.array([0.0, 0.25, 0.5, 0.75, 1.0])).unstack()
    q = by.reindex(shown.index).to_numpy(dtype=float)
    data = {
        "labels": [short(config_label(str(key), list(params)), 48) for key in shown.index],
        "counts": shown["count"].astype(int).tolist(),
        "q": [significant(row) for row in q],
        "means": significant(shown["mean"]),
        "stds": significant(np.nan_to_num(shown["std"].to_numpy(dtype=float))),
        "row": keys[in_shown].map(where).astype(int).tolist(),
        "x": significant(y[in_shown]),
        "ids": d["id"][in_shown].astype(str).tolist(),
        "total": total,
        "xlabel": f"{short(metric.label)} ({metric.better})",
    }
    return Chart(
        "seed_spread",
        "",
        "Spread across seeds (variance)",
        f"One row per configuration ({_seeds_said(stats['count'].to_numpy())}): box = quartiles, "
        "line = range, grey dots = single runs, red = mean ± standard deviation. Hover a row or a "
        "dot for its figures; click a dot to open its job.",
        "Look for: whether the best configurations' boxes overlap (if they do, the ranking between "
        "them is seed noise) and how wide the boxes are next to the gaps between them."
        if info["max_runs"] > 1
        else "One run per configuration: there is no spread across seeds to see; add seeds to judge noise.",
        None,
        data,
        {"spread": info},
        client="spread",
    )
