"""Variance: the spread of the metric across seeds for each configuration, best configurations first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import (
    CHAR_IN,
    alpha_for,
    few_ticks,
    figure,
    finite_rows,
    margins,
    marker_size,
    save,
    short,
)
from report.charts.spec import Chart
from report.data import MetricChoice, config_keys, config_label

__all__ = ["prepare", "draw"]


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
    y = d[metric.column]
    stats = y.groupby(keys).agg(["mean", "std", "count"])
    stats = stats.sort_values("mean", ascending=metric.mode == "min", kind="stable")
    total = len(stats)
    shown = stats.head(max_configs)
    counts = shown["count"].to_numpy(dtype=int)
    info = {
        "configs": total,
        "shown": len(shown),
        "max_runs": int(stats["count"].max()),
        "min_runs": int(stats["count"].min()),
    }
    in_shown = keys.isin(shown.index).to_numpy()
    where = {key: i for i, key in enumerate(shown.index)}
    q = y[in_shown].groupby(keys[in_shown]).quantile(np.array([0.0, 0.25, 0.5, 0.75, 1.0])).unstack()
    q = q.reindex(shown.index)
    data = {
        "labels": [short(config_label(str(key), list(params)), 48) for key in shown.index],
        "counts": counts,
        "quantiles": q.to_numpy(dtype=float),
        "means": shown["mean"].to_numpy(dtype=float),
        "stds": np.nan_to_num(shown["std"].to_numpy(dtype=float)),
        "pts_row": keys[in_shown].map(where).to_numpy(dtype=int),
        "pts_x": y[in_shown].to_numpy(dtype=float),
        "total": total,
        "xlabel": f"{short(metric.label)} ({metric.better})",
    }
    runs = info["max_runs"]
    return Chart(
        "seed_spread",
        ".svg",
        "Spread across seeds (variance)",
        f"One row per configuration ({_seeds_said(stats['count'].to_numpy())}): box = quartiles, "
        "line = range, grey dots = single runs, red = mean ± standard deviation.",
        "Look for: whether the best configurations' boxes overlap (if they do, the ranking between "
        "them is seed noise) and how wide the boxes are next to the gaps between them."
        if runs > 1
        else "One run per configuration: there is no spread across seeds to see; add seeds to judge noise.",
        draw,
        data,
        {"spread": info},
    )


def _boxes(ax: Any, pos: np.ndarray, q: np.ndarray) -> None:
    """Boxes as one bar collection (quartiles), whiskers (min..max) and medians as one call each."""
    ax.hlines(pos, q[:, 0], q[:, 4], color="#4c72b0", lw=1, zorder=1)
    ax.barh(
        pos,
        q[:, 3] - q[:, 1],
        left=q[:, 1],
        height=0.56,
        color="#dde6f3",
        edgecolor="#4c72b0",
        lw=1,
        zorder=2,
    )
    ax.vlines(
        q[:, 2], pos - 0.28, pos + 0.28, color="#4c72b0", lw=1.6, zorder=3, label="median, quartiles, range"
    )


def draw(data: dict[str, Any], path: Path) -> None:
    counts = data["counts"]
    k = len(data["labels"])
    same = int(counts.min()) == int(counts.max())
    ylabels = (
        data["labels"] if same else [f"{t}  (n={c})" for t, c in zip(data["labels"], counts, strict=True)]
    )
    label_w = 0.25 + CHAR_IN * 0.85 * max(len(t) for t in ylabels)
    fig = figure(label_w + 8.0, 1.5 + 0.34 * k)
    ax = fig.add_subplot()
    pos = np.arange(k)[::-1].astype(float)  # best at the top
    _boxes(ax, pos, data["quantiles"])
    rng = np.random.default_rng(0)
    npts = len(data["pts_x"])
    ax.scatter(
        data["pts_x"],
        pos[data["pts_row"]] + rng.uniform(-0.18, 0.18, npts),
        s=min(16, marker_size(npts)),
        color="#333333",
        alpha=min(0.8, alpha_for(npts) * 2),
        linewidths=0,
        zorder=3,
        label="runs",
    )
    ax.errorbar(
        data["means"],
        pos,
        xerr=data["stds"],
        fmt="D",
        color="#c44e52",
        ms=5,
        capsize=3,
        lw=1.3,
        zorder=4,
        label="mean ± std",
    )
    # the rows' names as plain texts at the left (a tick per row is five artists, a text one)
    ax.set_yticks([])
    left = ax.get_yaxis_transform()
    for y, text in zip(pos, ylabels, strict=True):
        ax.text(-0.01, y, text, transform=left, ha="right", va="center", fontsize=8, clip_on=False)
    ax.set_ylim(-0.7, k - 0.3)
    ax.use_sticky_edges = False  # bars pin the limits to the quartiles otherwise: keep a margin
    ax.margins(x=0.06)
    few_ticks(ax.xaxis, 6)
    ax.set_xlabel(data["xlabel"])
    ax.grid(axis="y", alpha=0)
    total = data["total"]
    what = f"best {k} of {total} configurations" if total > k else f"{total} configuration(s)"
    runs = int(counts.max())
    seeds = f"{runs} run(s) per box" if same else f"{int(counts.min())}-{runs} runs per box"
    note = "" if runs > 1 else "\n(one run per configuration: no spread across seeds to show)"
    ax.set_title(f"Variance across seeds: {what}, {seeds}{note}", y=1.01)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    margins(fig, left=label_w, right=2.1, top=0.65, bottom=0.55)
    save(fig, path)
