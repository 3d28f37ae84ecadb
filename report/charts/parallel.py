"""Parallel coordinates: each run a line through its parameter values and the metric, drawn by the browser.

A client chart (`static/parallel.js`, drawing `parallel`): `prepare` picks the runs drawn (the
best and a sample by id past `max_lines`), and gives each axis its runs' values (a number, or
the index of a category), its scale and its labelled ticks; the page carries them with each
run's id. Hover a line: its run, parameters and metric; click it: its job page; drag along an
axis: lines outside every selected range are dimmed and the page counts the runs left.

A line's place on a numeric axis is `(t - lo) / (hi - lo)` with `t` the value (its log10 on a
log axis), on a categorical one `index / (categories - 1)`; a missing value sits just below the
axis (-0.05) and is outside any range selected on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import finite_rows, id_sample, short, significant
from report.charts.spec import Chart
from report.data import MetricChoice, fmt, is_log_spaced, is_numeric

__all__ = ["prepare", "nice_ticks", "MAX_TICK_LABELS"]

MAX_TICK_LABELS = 10  #: category names on one axis at most (every category still has its place)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round values (steps of 1, 2 or 5 times a power of ten) within [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    out = []
    for k in range(first, first + n + 3):
        t = k * step
        if t > hi + step * 1e-9:
            break
        out.append(float(f"{t:.12g}"))
    return out


def _numeric_axis(s: pd.Series) -> dict[str, Any]:
    sig = significant(pd.to_numeric(s, errors="coerce").astype(float))
    v = np.array([np.nan if x is None else x for x in sig], dtype=float)
    log = is_log_spaced(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log10(v) if log else v
    ok = np.isfinite(t)
    lo, hi = (float(t[ok].min()), float(t[ok].max())) if ok.any() else (0.0, 1.0)
    span = hi - lo or 1.0
    uniq = np.unique(t[ok])
    if uniq.size <= 8:  # a grid: label every value
        marks = uniq.tolist()
    elif log:  # whole decades
        marks = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    else:  # a few round numbers
        marks = nice_ticks(lo, hi)
    ticks = [[round((m - lo) / span, 6), fmt(float(f"{(10**m if log else m):.4g}"))] for m in marks]
    return {"kind": "num", "log": bool(log), "lo": lo, "hi": hi, "v": sig, "ticks": ticks}


def _category_axis(s: pd.Series) -> dict[str, Any]:
    text = s.map(fmt).astype(str)
    cats = sorted(set(text))
    idx = {c: i for i, c in enumerate(cats)}
    scale = max(len(cats) - 1, 1)
    step = max(1, math.ceil(len(cats) / MAX_TICK_LABELS))
    ticks = [[round(idx[c] / scale, 6), short(c, 18)] for c in cats[::step]]
    return {"kind": "cat", "cats": cats, "x": [idx[c] for c in text], "ticks": ticks}


def prepare(
    df: pd.DataFrame, metric: MetricChoice, params: Sequence[str], max_lines: int = 500
) -> Chart | None:
    """One line per run across the parameter axes and the metric, coloured by the metric.

    Past `max_lines` runs, the best 15% of `max_lines` are all drawn and the rest are a sample
    picked by id (`id_sample`: more lines only thicken the same bands, and the page grows with
    them); the caption says how many of how many. The chart's data holds only the runs drawn,
    best last (drawn on top).
    """
    d = finite_rows(df, metric.column)
    params = [p for p in params if p in d.columns and d[p].nunique() > 1]
    if d.empty or not params:
        return None
    total = len(d)
    d = d.sort_values(metric.column, ascending=metric.mode == "max", kind="stable")  # best last
    if total > max_lines:
        top = max_lines * 15 // 100
        rest = d.iloc[: total - top]
        pick = id_sample(rest["id"].astype(str).tolist(), max_lines - top)
        d = pd.concat([rest[pick], d.iloc[total - top :]])
    axes = []
    for c in [*params, metric.column]:
        a = _numeric_axis(d[c]) if is_numeric(d[c]) else _category_axis(d[c])
        name = c.removeprefix("param.").removeprefix("result.")
        a["name"] = name
        a["label"] = short(name, 22) + (" (log)" if a.get("log") else "")
        axes.append(a)
    axes[-1]["name"] = metric.label  # the metric's axis: its values colour the lines
    data = {
        "axes": axes,
        "ids": d["id"].astype(str).tolist(),
        "mode": metric.mode,
        "label": metric.label,
        "n": len(d),
        "total": total,
        "sampled": len(d) < total,
    }
    drawn = f"{len(d)} of {total} runs: the best {max_lines * 15 // 100} and others picked by id"
    return Chart(
        "parallel",
        "",
        "Parallel coordinates",
        "Each line a run through its parameter values, coloured by the metric (bright = best)"
        + (f"; {drawn}" if len(d) < total else "")
        + ". Hover a line for its run; click it to open the job; drag along an axis to select a "
        "range (double-click the axis to clear it).",
        "Look for: where the bright lines cross each axis (the values the best runs share) and "
        "axes where bright and dark lines mix (a parameter that does not matter).",
        None,
        data,
        client="parallel",
    )
