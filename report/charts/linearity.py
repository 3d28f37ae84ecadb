"""Linearity: the metric against each parameter, one panel per parameter, drawn by the browser.

A numeric parameter gets every run (coloured by seed), the mean per value and a least-squares
line with its R²; a categorical one (text, booleans) a box per category with its runs as a
strip, so it is compared rather than skipped. Every new run is a new dot, so the chart is a
client chart (`static/charts.js`, drawing `linearity`): `prepare` computes the fits, means and
boxes, and the page carries them with each run's id (hover a dot: its run and parameters;
click: its job page).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import SEED_COLORS, finite_rows, rounded
from report.charts.spec import Chart
from report.data import MetricChoice, fmt, is_log_spaced, is_numeric

__all__ = ["prepare", "MAX_CATEGORIES", "MAX_PANELS"]

MAX_CATEGORIES = (
    20  #: a categorical parameter with more values than this is left out (a box each would not read)
)
MAX_PANELS = 9


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    """(slope, intercept, R²) of y on x by least squares; None if x does not vary."""
    if x.size < 3 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    fit = (float(slope), float(intercept), r2)
    return fit if all(np.isfinite(fit)) else None  # huge values can overflow: no line rather than NaN


def _numeric_panel(d: pd.DataFrame, p: str, y: np.ndarray) -> dict[str, Any]:
    ok = pd.to_numeric(d[p], errors="coerce").notna().to_numpy()
    x = d[p][ok].astype(float).to_numpy()
    log = is_log_spaced(x)
    xt = np.log10(x) if log else x
    yk = y[ok]
    fit = _fit(xt, yk)
    panel: dict[str, Any] = {
        "kind": "num",
        "param": p.removeprefix("param."),
        "x": rounded(xt),
        "log": bool(log),
        "fit": list(fit) if fit is not None else None,
        "means": [],
        "n": int(xt.size),
    }
    if not ok.all():  # the runs this panel has (those whose value is a number)
        panel["rows"] = np.flatnonzero(ok).tolist()
    if np.unique(xt).size <= 60:
        means = pd.Series(yk).groupby(xt).mean()
        panel["means"] = [rounded(means.index.to_numpy()), rounded(means.to_numpy())]
    return panel


def _box(v: np.ndarray) -> list[float]:
    """Whisker, quartile, median, quartile, whisker: the whiskers at the furthest runs within 1.5
    times the box's height of it (as matplotlib draws a box plot)."""
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    inside = v[(v >= lo) & (v <= hi)]
    return rounded(np.array([inside.min(), q1, med, q3, inside.max()]))


def _category_panel(d: pd.DataFrame, p: str, y: np.ndarray) -> dict[str, Any] | None:
    text = d[p].map(fmt).astype(str)
    cats = sorted(set(text))
    if not 1 < len(cats) <= MAX_CATEGORIES:
        return None
    pos = text.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=int)
    return {
        "kind": "cat",
        "param": p.removeprefix("param."),
        "cats": cats,
        "x": pos.tolist(),
        "boxes": [_box(y[pos == i]) for i in range(len(cats))],
        "n": int(pos.size),
    }


def prepare(
    df: pd.DataFrame, metric: MetricChoice, params: Sequence[str], seed_col: str | None
) -> Chart | None:
    """The chart of the metric against each varying parameter (numeric first), or None."""
    d = finite_rows(df, metric.column)
    if d.empty:
        return None
    seeds = sorted(d[seed_col].dropna().unique().tolist(), key=fmt) if seed_col else []
    coloured = 1 < len(seeds) <= len(SEED_COLORS)
    seed_idx = (
        d[seed_col].map({s: i for i, s in enumerate(seeds)}).fillna(-1).to_numpy(dtype=int)
        if coloured and seed_col
        else np.full(len(d), -1)
    )
    y = d[metric.column].to_numpy(dtype=float)
    panels: list[dict[str, Any]] = []
    for p in params:
        if p not in d.columns or d[p].nunique() < 2:
            continue
        panel = _numeric_panel(d, p, y) if is_numeric(d[p]) else _category_panel(d, p, y)
        if panel is not None:
            panels.append(panel)
    panels.sort(key=lambda q: q["kind"] != "num")  # numeric panels first, as the fits table lists them
    panels = panels[:MAX_PANELS]
    if not panels:
        return None
    fits = [
        {"param": q["param"], "log": q["log"], "slope": q["fit"][0], "r2": q["fit"][2], "n": q["n"]}
        for q in panels
        if q["kind"] == "num" and q["fit"] is not None
    ]
    data = {
        "panels": panels,
        "ids": d["id"].astype(str).tolist(),
        "y": rounded(y),
        "seeds": [fmt(s) for s in seeds] if coloured else [],
        "seed": seed_idx.tolist() if coloured else [],
        "label": metric.label,
        "better": metric.better,
        "n": len(d),
    }
    return Chart(
        "metric_vs_params",
        "",
        "Metric against each parameter (linearity)",
        "Numeric parameters: each dot a run (colour: seed), black: mean per value, dashed: least-squares "
        "line with its R². Categorical parameters: a box per value (quartiles, median) with its runs. "
        "Hover a dot for its run and parameters; click it to open the job.",
        "Look for: a steep line with a high R² (the metric follows that parameter); a flat line or a "
        "low R² (it matters little, or not linearly); boxes that do not overlap (a category that wins).",
        None,
        data,
        {"fits": fits},
        client="linearity",
    )
