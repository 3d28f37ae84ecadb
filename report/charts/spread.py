"""Variance: the spread of the metric across seeds for each configuration, best configurations first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import CHAR_IN, RC, alpha_for, finite_rows, margins, marker_size, pyplot, save, short
from report.data import MetricChoice, config_keys, config_label

__all__ = ["seed_spread"]


def seed_spread(
    df: pd.DataFrame, metric: MetricChoice, params: Sequence[str], path: Path, max_configs: int = 30
) -> tuple[Path | None, dict[str, Any]]:
    """Box + strip per configuration (params other than the seed), mean ± std marked, best first."""
    d = finite_rows(df, metric.column)
    if d.empty:
        return None, {}
    keys = config_keys(d, list(params))
    y = d[metric.column]
    stats = y.groupby(keys).agg(["mean", "std", "count"])
    stats = stats.sort_values("mean", ascending=metric.mode == "min", kind="stable")
    total = len(stats)
    shown = stats.head(max_configs)
    info = {"configs": total, "shown": len(shown), "max_runs": int(stats["count"].max())}
    plt = pyplot()
    with plt.rc_context(RC):
        k = len(shown)
        ylabels = [short(config_label(str(key), list(params)), 48) for key in shown.index]
        label_w = 0.25 + CHAR_IN * 0.85 * max(len(t) for t in ylabels)
        fig, ax = plt.subplots(figsize=(label_w + 8.0, 1.5 + 0.34 * k))
        pos = np.arange(k)[::-1].astype(float)  # best at the top
        where = {key: p_ for key, p_ in zip(shown.index, pos, strict=True)}
        in_shown = keys.isin(shown.index).to_numpy()
        pts_y = keys[in_shown].map(where).to_numpy(dtype=float)
        pts_x = y[in_shown].to_numpy()
        # boxes drawn as one bar collection (quartiles), whiskers (min..max) and medians as one call each
        q = y[in_shown].groupby(keys[in_shown]).quantile(np.array([0.0, 0.25, 0.5, 0.75, 1.0])).unstack()
        q = q.reindex(shown.index)
        ax.hlines(pos, q[0.0], q[1.0], color="#4c72b0", lw=1, zorder=1)
        ax.barh(
            pos,
            (q[0.75] - q[0.25]).to_numpy(),
            left=q[0.25].to_numpy(),
            height=0.56,
            color="#dde6f3",
            edgecolor="#4c72b0",
            lw=1,
            zorder=2,
        )
        ax.vlines(
            q[0.5].to_numpy(),
            pos - 0.28,
            pos + 0.28,
            color="#4c72b0",
            lw=1.6,
            zorder=3,
            label="median, quartiles, range",
        )
        rng = np.random.default_rng(0)
        npts = len(pts_x)
        ax.scatter(
            pts_x,
            pts_y + rng.uniform(-0.18, 0.18, npts),
            s=min(16, marker_size(npts)),
            color="#333333",
            alpha=min(0.8, alpha_for(npts) * 2),
            linewidths=0,
            zorder=3,
            label="runs",
        )
        means = shown["mean"].to_numpy()
        stds = np.nan_to_num(shown["std"].to_numpy())
        ax.errorbar(
            means,
            pos,
            xerr=stds,
            fmt="D",
            color="#c44e52",
            ms=5,
            capsize=3,
            lw=1.3,
            zorder=4,
            label="mean ± std",
        )
        ax.set_yticks(pos)
        ax.set_yticklabels(ylabels, fontsize=8)
        ax.set_ylim(-0.7, k - 0.3)
        ax.use_sticky_edges = False  # bars pin the limits to the quartiles otherwise: keep a margin
        ax.margins(x=0.06)
        ax.set_xlabel(f"{short(metric.label)} ({metric.better})")
        ax.grid(axis="y", alpha=0)
        runs = int(stats["count"].max())
        what = f"best {k} of {total} configurations" if total > k else f"{total} configuration(s)"
        note = "" if runs > 1 else "\n(one run per configuration: no spread across seeds to show)"
        ax.set_title(f"Variance across seeds: {what}, up to {runs} run(s) each{note}", y=1.01)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        margins(fig, left=label_w, right=2.1, top=0.65, bottom=0.55)
        return save(fig, path), info
