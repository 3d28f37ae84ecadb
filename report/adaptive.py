"""The sweep page's charts for an adaptive (bayes) sweep: the optimisation trace and the metric
against each parameter coloured by run order.

The values are the ones the proposer saw (`spool.sweeps.adaptive_view`: each run's best value
of the metric over its history, by the goal), so the page shows what the search was working
with, not only each run's last line. The sweep page calls `adaptive_charts`; it gives nothing
for a sweep that is not adaptive.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from report.charts.axes import figure, margins, marker_size, save, short
from report.charts.spec import Chart
from spool.layout import Layout

__all__ = ["adaptive_charts"]


def _view(layout: Layout, sid: str) -> dict[str, Any] | None:
    import yaml

    try:
        doc = yaml.safe_load((layout.sweeps / f"{sid}.yaml").read_bytes())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("adaptive"), dict):
        return None
    from spool.sweeps.adaptive_view import adaptive_view

    return adaptive_view(layout, sid, doc)


def _rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Slots whose run is done with a finite value of its own (failures' imputed values left out)."""
    out = []
    for r in view["slots"]:
        v = r.get("value")
        if r.get("state") == "done" and isinstance(v, (int, float)) and math.isfinite(v):
            out.append({"slot": r["slot"], "method": r.get("method"), "value": float(v), "point": r["point"]})
    return out


def draw_trace(data: dict[str, Any], path: Path) -> None:
    rows, goal = data["rows"], data["goal"]
    pick = min if goal == "minimize" else max
    fig = figure(8.0, 3.6)
    ax = fig.add_subplot()
    for how, color, label in (("random", "#8c8c8c", "random point"), ("gp", "#4c72b0", "model's point")):
        mine = [r for r in rows if r["method"] == how]
        if mine:
            ax.scatter(
                [r["slot"] + 1 for r in mine],
                [r["value"] for r in mine],
                s=marker_size(len(rows)),
                color=color,
                alpha=0.8,
                label=label,
                zorder=2,
            )
    best: list[float] = []
    for r in rows:
        best.append(r["value"] if not best else pick(best[-1], r["value"]))
    ax.step([r["slot"] + 1 for r in rows], best, where="post", color="#d62728", lw=1.6, label="best so far")
    ax.set_xlabel("run (slot + 1)")
    ax.set_ylabel(data["metric"] + (" (lower is better)" if goal == "minimize" else " (higher is better)"))
    ax.legend(loc="best")
    margins(fig, left=0.9, right=0.2, top=0.2, bottom=0.55)
    save(fig, path)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def draw_order(data: dict[str, Any], path: Path) -> None:
    rows, names = data["rows"], data["names"]
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = figure(max(7.0, 4.2 * ncols) + 1.0, 3.3 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    order, ys = [r["slot"] for r in rows], [r["value"] for r in rows]
    scatter = None
    for i, name in enumerate(names):
        ax = axes[i // ncols][i % ncols]
        xs = [r["point"].get(name) for r in rows]
        if not _numeric(xs):  # categories: one column each, in the order first seen
            cats = list(dict.fromkeys(repr(x) for x in xs))
            ax.set_xticks(range(len(cats)), [short(c, 14) for c in cats])
            xs = [cats.index(repr(x)) for x in xs]
        elif min(xs) > 0 and max(xs) / min(xs) > 50:
            ax.set_xscale("log")
        scatter = ax.scatter(xs, ys, c=order, cmap="viridis", s=marker_size(len(rows)), alpha=0.85)
        ax.set_title(short(name, 40))
    for j in range(len(names), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes.ravel().tolist(), label="run order (slot)")
    save(fig, path)


def adaptive_charts(layout: Layout, sid: str) -> list[Chart]:
    """The adaptive sweep's charts; [] for any other sweep, or before any run is done."""
    view = _view(layout, sid)
    rows = _rows(view) if view is not None else []
    if view is None or not rows:
        return []
    metric = short(str(view["metric"]["name"]), 30)
    charts = [
        Chart(
            "bayes_trace",
            ".svg",
            "Optimisation trace",
            "Each run's value (its best over its history, by the goal) in proposal order; grey: random"
            " points, blue: the model's; red: the best so far.",
            "Look for: the red line still stepping late (more runs would help) or flat early (it converged).",
            draw_trace,
            {"rows": rows, "goal": view["metric"]["goal"], "metric": metric},
        )
    ]
    names = [k for k in rows[0]["point"] if len({repr(r["point"].get(k)) for r in rows}) > 1]
    if names:
        charts.append(
            Chart(
                "bayes_order",
                ".png",
                "Metric against each parameter, by run order",
                "Each dot a run; colour: when it was proposed (dark early, yellow late).",
                "Look for: late (yellow) runs gathering where the metric is best: where the search went.",
                draw_order,
                {"rows": rows, "names": names},
            )
        )
    return charts
