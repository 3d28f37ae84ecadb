"""Learning curves: every run's metrics lines in grey, the best runs by the metric in colour."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import (
    HIGHLIGHT,
    alpha_for,
    few_ticks,
    figure,
    id_sample,
    log_axis,
    margins,
    save,
    short,
)
from report.charts.spec import Chart
from report.data import MetricChoice, is_numeric

__all__ = ["HIGHLIGHT_RUNS", "MAX_GREY_RUNS", "pick_curve_keys", "prepare", "draw"]

HIGHLIGHT_RUNS = 5
#: grey curves drawn at most (a sample by id past that, `id_sample`; each is stroked on its own,
#: the chart's dearest part at thousands of runs, and past a few hundred they only thicken the
#: same band)
MAX_GREY_RUNS = 400


def pick_curve_keys(mdf: pd.DataFrame | None, metric: MetricChoice | None) -> tuple[str, str] | None:
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


def prepare(
    mdf: pd.DataFrame | None,
    ranked_ids: Sequence[str],
    labels: dict[str, str],
    metric: MetricChoice | None,
    highlight: int = HIGHLIGHT_RUNS,
    stopped: Sequence[str] = (),
) -> Chart | None:
    """Every run's curve of one metrics key, or None unless some run printed more than one line.

    `stopped`: runs early termination ended, marked with a cross at their last point.

    A script that prints only its result has one metrics line per run: a "curve" would be one dot
    at step 0 per run, which says nothing the other charts do not.
    """
    keys = pick_curve_keys(mdf, metric) if mdf is not None else None
    if mdf is None or keys is None:
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
    if not (ends - starts > 1).any():
        return None
    spans = {str(ids[a]): (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
    best = [j for j in ranked_ids if j in spans][:highlight]
    everyone = sorted(spans)
    grey = [j for j, keep in zip(everyone, id_sample(everyone, MAX_GREY_RUNS), strict=True) if keep]
    halted = [j for j in stopped if j in spans]
    # only the runs drawn are in the data: a new run outside them leaves the digest alone
    where: dict[str, tuple[int, int]] = {}
    parts: list[int] = []
    for j in sorted({*grey, *best, *halted}):
        a, b = spans[j]
        where[j] = (len(parts), len(parts) + b - a)
        parts.extend(range(a, b))
    data = {
        "x": xv[parts],
        "y": yv[parts],
        "spans": [where[j] for j in grey],
        "sampled": len(grey) < len(spans),
        "box": (float(xv.min()), float(xv.max()), float(yv.min()), float(yv.max())),  # every run's
        "logy": bool(yv.min() > 0 and yv.max() / yv.min() >= 100),
        "best": [(where[j], short(f"#{k + 1} {labels.get(j, j)}", 60)) for k, j in enumerate(best)],
        "xlabel": "epoch" if xkey == "epoch" else "step (metrics line)",
        "ykey": ykey,
        "rising": float(np.nanmean(yv[ends - 1] - yv[starts])) > 0,
        "stopped_at": [where[j][1] - 1 for j in halted],
    }
    return Chart(
        "learning_curves",
        ".png",
        "Learning curves",
        f"Every run's {ykey} over its metrics lines in grey ({len(spans)} runs"
        + (f"; {len(grey)} drawn, picked by id" if len(grey) < len(spans) else "")
        + "); "
        f"the best {len(best)} runs by the metric in colour"
        + ("; ✕: where hyperband stopped a run." if data["stopped_at"] else "."),
        "Look for: curves still falling or rising at the end (more epochs would help), curves that "
        "turn back (overfitting), and whether the best runs were already ahead early on.",
        draw,
        data,
    )


def draw(data: dict[str, Any], path: Path) -> None:
    from matplotlib.collections import LineCollection

    xv, yv, spans = data["x"], data["y"], data["spans"]
    fig = figure(9.5, 4.4)
    ax = fig.add_subplot()
    n = len(spans)
    pts = np.column_stack([xv, yv])
    lc = LineCollection(
        [pts[a:b] for a, b in spans if b - a > 1],
        colors="#8c8c8c",
        linewidths=0.7,
        alpha=alpha_for(n),
        label=f"{n} runs, picked by id" if data["sampled"] else f"all {n} runs",
    )
    ax.add_collection(lc)
    for k, ((a, b), label) in enumerate(data["best"]):
        ax.plot(
            xv[a:b],
            yv[a:b],
            "-",
            marker="o" if b - a < 30 else None,
            ms=3,
            lw=2,
            color=HIGHLIGHT[k % len(HIGHLIGHT)],
            label=label,
            zorder=3,
        )
    ends_at = data["stopped_at"]
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
    x0, x1, y0, y1 = data["box"]
    ax.update_datalim([(x0, y0), (x1, y1)])  # every run's, drawn or not
    ax.autoscale_view()
    if data["logy"]:
        ax.set_yscale("log")
        log_axis(ax.yaxis)
    else:
        few_ticks(ax.yaxis)
    few_ticks(ax.xaxis, 8)
    ax.set_xlabel(data["xlabel"])
    ax.set_ylabel(short(data["ykey"]))
    ax.set_title(f"Learning curves: {data['ykey']}, the best {len(data['best'])} runs highlighted", y=1.01)
    # a fixed corner ("best" scans every point: slow at thousands of runs)
    ax.legend(loc="lower right" if data["rising"] else "upper right", fontsize=7.5)
    margins(fig, left=0.8, right=0.2, top=0.4, bottom=0.55)
    save(fig, path)
