"""Learning curves: every run's metrics lines in grey, the best runs by the metric in colour."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from report.charts.axes import HIGHLIGHT, RC, alpha_for, log_axis, margins, pyplot, save, short
from report.data import MetricChoice, is_numeric

__all__ = ["pick_curve_keys", "learning_curves"]


def pick_curve_keys(mdf: pd.DataFrame, metric: MetricChoice | None) -> tuple[str, str] | None:
    """(x key, y key) for learning curves: the metric if the scripts log it per line, else a number."""
    if mdf is None or mdf.empty:
        return None
    xkey = "epoch" if "epoch" in mdf.columns and is_numeric(mdf["epoch"]) else "step"
    skip = {"id", "step", "epoch", "status", xkey}
    numeric = [c for c in mdf.columns if c not in skip and is_numeric(mdf[c])]
    if not numeric:
        return None
    if metric is not None and metric.label in numeric:
        return xkey, metric.label
    losses = [c for c in numeric if "loss" in c.lower()]
    return xkey, (losses or numeric)[0]


def learning_curves(
    mdf: pd.DataFrame,
    ranked_ids: Sequence[str],
    labels: dict[str, str],
    metric: MetricChoice | None,
    path: Path,
    highlight: int = 5,
    stopped: Sequence[str] = (),
) -> Path | None:
    """`stopped`: runs early termination ended, marked with a cross at their last point."""
    keys = pick_curve_keys(mdf, metric)
    if keys is None:
        return None
    xkey, ykey = keys
    ids = mdf["id"].astype(str).to_numpy()
    xv = pd.to_numeric(mdf[xkey], errors="coerce").to_numpy(float)
    yv = pd.to_numeric(mdf[ykey], errors="coerce").to_numpy(float)
    ok = np.isfinite(xv) & np.isfinite(yv)
    ids, xv, yv = ids[ok], xv[ok], yv[ok]
    if ids.size == 0:
        return None
    order = np.argsort(ids, kind="stable")  # group rows by job, keeping each job's line order
    ids, xv, yv = ids[order], xv[order], yv[order]
    cut = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts, ends = np.concatenate([[0], cut]), np.concatenate([cut, [ids.size]])
    spans = {ids[a]: (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
    best = [j for j in ranked_ids if j in spans][:highlight]
    plt = pyplot()
    from matplotlib.collections import LineCollection

    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(9.5, 4.4))
        n = len(spans)
        pts = np.column_stack([xv, yv])
        lc = LineCollection(
            [pts[a:b] for a, b in spans.values() if b - a > 1],
            colors="#8c8c8c",
            linewidths=0.7,
            alpha=alpha_for(n),
            label=f"all {n} runs",
        )
        ax.add_collection(lc)
        for k, jid in enumerate(best):
            a, b = spans[jid]
            ax.plot(
                xv[a:b],
                yv[a:b],
                "-",
                marker="o" if b - a < 30 else None,
                ms=3,
                lw=2,
                color=HIGHLIGHT[k % len(HIGHLIGHT)],
                label=short(f"#{k + 1} {labels.get(jid, jid)}", 60),
                zorder=3,
            )
        ends_at = [spans[j][1] - 1 for j in stopped if j in spans]
        if ends_at:
            ax.plot(
                xv[ends_at],
                yv[ends_at],
                "x",
                ms=6,
                mew=1.6,
                color="#c0392b",
                label=f"stopped early ({len(ends_at)})",
                zorder=4,
            )
        ax.autoscale_view()
        if (yv > 0).all() and yv.max() / max(yv.min(), 1e-300) >= 100:
            ax.set_yscale("log")
            log_axis(ax.yaxis)
        ax.set_xlabel("epoch" if xkey == "epoch" else "step (metrics line)")
        ax.set_ylabel(short(ykey))
        ax.set_title(f"Learning curves: {ykey} for every run, the best {len(best)} highlighted", y=1.01)
        # a fixed corner ("best" scans every point: slow at thousands of runs)
        rising = float(np.nanmean(yv[ends - 1] - yv[starts])) > 0
        ax.legend(loc="lower right" if rising else "upper right", fontsize=7.5)
        margins(fig, left=0.8, right=0.2, top=0.4, bottom=0.55)
        return save(fig, path)
