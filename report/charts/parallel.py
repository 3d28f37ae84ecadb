"""Parallel coordinates: every run as a line through its parameter values, coloured by the metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import alpha_for, figure, finite_rows, id_sample, save, short
from report.charts.spec import Chart
from report.data import MetricChoice, fmt, is_log_spaced, is_numeric

__all__ = ["prepare", "draw"]


def _axis_values(s: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]], bool]:
    """A column scaled to [0, 1] and its tick labels (position, text); bool = log scaled."""
    if is_numeric(s):
        v = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        log = is_log_spaced(v)
        t = np.log10(v) if log else v
        lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
        span = hi - lo or 1.0
        scaled = (t - lo) / span
        uniq = np.unique(t[np.isfinite(t)])
        if uniq.size <= 8:  # a grid: label every value
            marks = uniq
        elif log:  # whole decades
            marks = np.arange(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1, dtype=float)
        else:  # a few round numbers
            from matplotlib.ticker import MaxNLocator

            marks = np.array([m for m in MaxNLocator(5).tick_values(lo, hi) if lo - 1e-12 <= m <= hi + 1e-12])
        ticks = [(float((m - lo) / span), f"{(10**m if log else m):.4g}") for m in marks]
        return np.nan_to_num(scaled, nan=-0.05), ticks, log
    text = s.map(fmt).astype(object)
    cats = sorted(set(text))
    idx = {c: i for i, c in enumerate(cats)}
    scale = max(len(cats) - 1, 1)
    scaled = text.map(lambda c: idx[c] / scale).to_numpy(dtype=float)
    step = max(1, math.ceil(len(cats) / 10))  # at most ~10 labels on one axis
    ticks = [(idx[c] / scale, short(c, 18)) for c in cats[::step]]
    return scaled, ticks, False


def prepare(
    df: pd.DataFrame, metric: MetricChoice, params: Sequence[str], max_lines: int = 500
) -> Chart | None:
    """One line per run across the parameter axes and the metric, coloured by the metric.

    Past `max_lines` runs, the best 15% of `max_lines` are all drawn and the rest are a sample
    picked by id (`id_sample`: more lines only thicken the same bands, and the file and the time
    grow with them); the caption says how many of how many. The chart's data holds only the runs
    drawn, so a new run outside them leaves its digest (and its file) alone.
    """
    d = finite_rows(df, metric.column)
    params = [p for p in params if p in d.columns and d[p].nunique() > 1]
    if d.empty or not params:
        return None
    total = len(d)
    d = d.sort_values(
        metric.column, ascending=metric.mode == "max", kind="stable"
    )  # best drawn last (on top)
    if total > max_lines:
        top = max_lines * 15 // 100
        rest = d.iloc[: total - top]
        pick = id_sample(rest["id"].astype(str).tolist(), max_lines - top)
        d = pd.concat([rest[pick], d.iloc[total - top :]])
    axes = []
    for c in [*params, metric.column]:
        v, ticks, log = _axis_values(d[c])
        label = c.removeprefix("param.").removeprefix("result.")
        axes.append({"label": short(label, 22) + (" (log)" if log else ""), "values": v, "ticks": ticks})
    data = {
        "axes": axes,
        "metric": d[metric.column].to_numpy(dtype=float),
        "mode": metric.mode,
        "label": metric.label,
        "sampled": len(d) < total,
    }
    drawn = f"{len(d)} of {total} runs: the best {max_lines * 15 // 100} and others picked by id"
    return Chart(
        "parallel",
        ".svg",
        "Parallel coordinates",
        "Each line a run through its parameter values, coloured by the metric (bright = best)"
        + (f"; {drawn}." if len(d) < total else "."),
        "Look for: where the bright lines cross each axis (the values the best runs share) and "
        "axes where bright and dark lines mix (a parameter that does not matter).",
        draw,
        data,
    )


def draw(data: dict[str, Any], path: Path) -> None:
    from matplotlib.collections import LineCollection

    axes, vals = data["axes"], data["metric"]
    n = len(vals)
    fig = figure(max(7.0, 1.9 * len(axes) + 1.5), 4.6)
    fw = fig.get_size_inches()[0]
    ax = fig.add_axes((0.25 / fw, 0.05, 1 - 1.45 / fw, 0.78))
    cax = fig.add_axes((1 - 1.05 / fw, 0.08, 0.14 / fw, 0.72))
    tick_box = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}
    for j, a in enumerate(axes):
        ax.axvline(j, color="#555555", lw=1)
        for ty, text in a["ticks"]:
            ax.text(j + 0.04, ty, text, fontsize=7.5, va="center", ha="left", color="#333333", bbox=tick_box)
        ax.text(j, 1.07, a["label"], ha="center", va="bottom", fontsize=8.5, fontweight="bold")
    ys = np.vstack([a["values"] for a in axes]).T  # one row per run
    xs = np.arange(len(axes), dtype=float)
    segs = np.stack([np.broadcast_to(xs, ys.shape), ys], axis=-1)
    lc = LineCollection(
        list(segs),
        array=vals,
        cmap="viridis" if data["mode"] == "max" else "viridis_r",
        linewidths=1.0 if n < 300 else 0.6,
        alpha=min(0.9, max(0.15, alpha_for(n) * 1.5)),
    )
    ax.add_collection(lc)
    ax.set_xlim(-0.15, len(axes) - 0.68)
    ax.set_ylim(-0.08, 1.12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    cb = fig.colorbar(lc, cax=cax)
    cb.solids.set_alpha(1)
    cb.set_label(short(data["label"], 30))
    shown = f"{n} runs picked by id and the best" if data["sampled"] else f"{n} runs"
    fig.suptitle(
        f"Parallel coordinates: {shown}, coloured by {short(data['label'], 30)} (bright = best)",
        y=1 - 0.1 / fig.get_size_inches()[1],
        fontsize=10,
    )
    save(fig, path)
