"""The sweep page's charts for an adaptive (bayes) sweep: the optimisation trace and the metric
against each parameter coloured by run order.

Both are client charts (`static/charts.js`: every new run changes them): the trace is drawing
`trace`, the by-order chart the linearity chart's drawing coloured by run order. The values are
the ones the proposer saw (`spool.sweeps.adaptive_view`: each run's best value
of the metric over its history, by the goal), so the page shows what the search was working
with, not only each run's last line. The sweep page calls `adaptive_charts`; it gives nothing
for a sweep that is not adaptive.
"""

from __future__ import annotations

import math
from typing import Any

from report.charts.axes import rounded, short
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
            out.append(
                {
                    "slot": r["slot"],
                    "job": str(r["job"]),
                    "method": r.get("method"),
                    "value": float(v),
                    "point": r["point"],
                }
            )
    return out


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _panel(name: str, xs: list[Any]) -> dict[str, Any]:
    """One parameter's panel of the by-order chart: numbers (on a log axis when they are positive
    and span over 50x), else a column per category in the order first seen."""
    if _numeric(xs):
        log = min(xs) > 0 and max(xs) / min(xs) > 50
        vals = [math.log10(x) for x in xs] if log else [float(x) for x in xs]
        return {
            "kind": "num",
            "param": name,
            "x": rounded(vals),
            "log": log,
            "fit": None,
            "means": [],
            "n": len(xs),
        }
    cats = list(dict.fromkeys(str(x) for x in xs))
    return {
        "kind": "cat",
        "param": name,
        "cats": cats,
        "x": [cats.index(str(x)) for x in xs],
        "boxes": [],
        "n": len(xs),
    }


def _by_order(rows: list[dict[str, Any]], names: list[str], metric: str, goal: str) -> dict[str, Any]:
    return {
        "title": f"{metric} against each parameter, by run order",
        "panels": [_panel(n, [r["point"].get(n) for r in rows]) for n in names],
        "ids": [r["job"] for r in rows],
        "y": rounded([r["value"] for r in rows]),
        "order": [r["slot"] for r in rows],
        "seeds": [],
        "seed": [],
        "label": metric,
        "better": "lower is better" if goal == "minimize" else "higher is better",
        "n": len(rows),
    }


def adaptive_charts(layout: Layout, sid: str, definition: dict[str, Any] | None = None) -> list[Chart]:
    """The adaptive sweep's charts; [] for any other sweep, or before any run is done.

    `definition`: the sweep's definition as the build already read it; a sweep it shows is not
    adaptive is not read again (a YAML parse per rebuild of every other sweep)."""
    if definition is not None and not isinstance(definition.get("adaptive"), dict):
        return []
    view = _view(layout, sid)
    rows = _rows(view) if view is not None else []
    if view is None or not rows:
        return []
    metric = short(str(view["metric"]["name"]), 30)
    charts = [
        Chart(
            "bayes_trace",
            "",
            "Optimisation trace",
            "Each run's value (its best over its history, by the goal) in proposal order; grey: random"
            " points, blue: the model's; red: the best so far. Hover a dot for its run; click it to"
            " open the job.",
            "Look for: the red line still stepping late (more runs would help) or flat early (it converged).",
            None,
            {
                "ids": [r["job"] for r in rows],
                "slot": [r["slot"] for r in rows],
                "y": rounded([r["value"] for r in rows]),
                "method": [r["method"] if r["method"] in ("random", "gp") else "random" for r in rows],
                "goal": view["metric"]["goal"],
                "metric": metric,
            },
            client="trace",
        )
    ]
    names = [k for k in rows[0]["point"] if len({repr(r["point"].get(k)) for r in rows}) > 1]
    if names:
        charts.append(
            Chart(
                "bayes_order",
                "",
                "Metric against each parameter, by run order",
                "Each dot a run; colour: when it was proposed (dark early, yellow late). Hover a dot for"
                " its run and parameters; click it to open the job.",
                "Look for: late (yellow) runs gathering where the metric is best: where the search went.",
                None,
                _by_order(rows, names, metric, str(view["metric"]["goal"])),
                client="linearity",
            )
        )
    return charts
