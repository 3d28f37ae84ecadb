"""Linearity: the metric against each parameter, one panel per parameter.

A numeric parameter gets every run (coloured by seed), the mean per value and a least-squares
line with its R²; a categorical one (text, booleans) a box per category with its runs as a
strip, so it is compared rather than skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import (
    SEED_COLORS,
    alpha_for,
    few_ticks,
    figure,
    finite_rows,
    log_axis,
    margins,
    marker_size,
    save,
    short,
)
from report.charts.spec import Chart
from report.data import MetricChoice, fmt, is_log_spaced, is_numeric

__all__ = ["prepare", "draw", "MAX_CATEGORIES", "MAX_PANELS"]

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
    return float(slope), float(intercept), r2


def _numeric_panel(d: pd.DataFrame, p: str, y_col: str, seed_idx: np.ndarray) -> dict[str, Any]:
    ok = pd.to_numeric(d[p], errors="coerce").notna().to_numpy()
    x = d[p][ok].astype(float).to_numpy()
    log = is_log_spaced(x)
    xt = np.log10(x) if log else x
    y = d[y_col].to_numpy()[ok]
    panel: dict[str, Any] = {
        "kind": "num",
        "param": p.removeprefix("param."),
        "x": xt,
        "y": y,
        "log": log,
        "seed": seed_idx[ok],
    }
    panel["fit"] = _fit(xt, y)
    return panel


def _category_panel(d: pd.DataFrame, p: str, y_col: str, seed_idx: np.ndarray) -> dict[str, Any] | None:
    text = d[p].map(fmt).astype(str)
    cats = sorted(set(text))
    if not 1 < len(cats) <= MAX_CATEGORIES:
        return None
    y = d[y_col].to_numpy()
    pos = text.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=int)
    return {
        "kind": "cat",
        "param": p.removeprefix("param."),
        "cats": cats,
        "x": pos,
        "y": y,
        "seed": seed_idx,
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
    panels: list[dict[str, Any]] = []
    for p in params:
        if p not in d.columns or d[p].nunique() < 2:
            continue
        panel = (
            _numeric_panel(d, p, metric.column, seed_idx)
            if is_numeric(d[p])
            else _category_panel(d, p, metric.column, seed_idx)
        )
        if panel is not None:
            panels.append(panel)
    panels.sort(key=lambda q: q["kind"] != "num")  # numeric panels first, as the fits table lists them
    panels = panels[:MAX_PANELS]
    if not panels:
        return None
    fits = [
        {"param": q["param"], "log": q["log"], "slope": q["fit"][0], "r2": q["fit"][2], "n": int(q["x"].size)}
        for q in panels
        if q["kind"] == "num" and q["fit"] is not None
    ]
    data = {
        "panels": panels,
        "seeds": [fmt(s) for s in seeds] if coloured else [],
        "label": metric.label,
        "better": metric.better,
        "n": len(d),
    }
    return Chart(
        "metric_vs_params",
        ".png",
        "Metric against each parameter (linearity)",
        "Numeric parameters: each dot a run (colour: seed), black: mean per value, dashed: least-squares "
        "line with its R². Categorical parameters: a box per value (quartiles, median) with its runs.",
        "Look for: a steep line with a high R² (the metric follows that parameter); a flat line or a "
        "low R² (it matters little, or not linearly); boxes that do not overlap (a category that wins).",
        draw,
        data,
        {"fits": fits},
    )


def _scatter_runs(ax: Any, panel: dict[str, Any], xs: np.ndarray, seeds: list[str], n: int) -> None:
    size, alpha = marker_size(n), alpha_for(n)
    if seeds:
        for k, s in enumerate(seeds):
            m = panel["seed"] == k
            ax.scatter(
                xs[m],
                panel["y"][m],
                s=size,
                alpha=alpha,
                color=SEED_COLORS[k],
                linewidths=0,
                label=f"seed {s}",
            )
    else:
        ax.scatter(xs, panel["y"], s=size, alpha=alpha, color=SEED_COLORS[0], linewidths=0, label="runs")


def _draw_numeric(ax: Any, panel: dict[str, Any], seeds: list[str], n: int, rng: Any) -> None:
    xt, y, log = panel["x"], panel["y"], panel["log"]
    uniq = np.unique(xt)
    jitter = np.zeros_like(xt)
    if uniq.size <= 30 and n > uniq.size:  # a little jitter when many runs share a few x values
        jitter = rng.uniform(-0.012, 0.012, xt.size) * (np.ptp(xt) or 1.0)
    _scatter_runs(ax, panel, 10 ** (xt + jitter) if log else xt + jitter, seeds, n)
    if uniq.size <= 60:
        means = pd.Series(y).groupby(xt).mean()
        mx = 10 ** means.index.to_numpy() if log else means.index.to_numpy()
        ax.plot(mx, means.to_numpy(), "-o", color="black", lw=1.4, ms=3.5, label="mean", zorder=3)
    if panel["fit"] is not None:
        slope, icpt, r2 = panel["fit"]
        gx = np.linspace(xt.min(), xt.max(), 20)
        ax.plot(
            10**gx if log else gx,
            slope * gx + icpt,
            "--",
            color="#c44e52",
            lw=1.3,
            label="linear fit",
            zorder=4,
        )
        unit = "per decade" if log else f"per unit of {panel['param']}"
        ax.text(
            0.02,
            0.97,
            f"R² = {r2:.3f}\nslope = {slope:.3g} {unit}",
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#bbbbbb", "alpha": 0.9},
        )
    if log:
        ax.set_xscale("log")
        log_axis(ax.xaxis)
    else:
        few_ticks(ax.xaxis)
    ax.set_xlabel(f"{short(panel['param'])} (log scale)" if log else short(panel["param"]))


def _draw_categories(ax: Any, panel: dict[str, Any], seeds: list[str], n: int, rng: Any) -> None:
    cats, pos, y = panel["cats"], panel["x"], panel["y"]
    groups = [y[pos == i] for i in range(len(cats))]
    ax.boxplot(
        groups,
        positions=range(len(cats)),
        widths=0.55,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "#dde6f3", "edgecolor": "#4c72b0"},
        medianprops={"color": "#4c72b0", "lw": 1.6},
        whiskerprops={"color": "#4c72b0"},
        capprops={"color": "#4c72b0"},
    )
    _scatter_runs(ax, panel, pos + rng.uniform(-0.18, 0.18, pos.size), seeds, n)
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(
        [short(c, 14) for c in cats],
        rotation=30 if len(cats) > 4 else 0,
        ha="right" if len(cats) > 4 else "center",
    )
    ax.set_xlabel(f"{short(panel['param'])} (categories)")
    ax.grid(axis="x", alpha=0)


def draw(data: dict[str, Any], path: Path) -> None:
    panels, seeds, n = data["panels"], data["seeds"], data["n"]
    ncols = 2 if len(panels) == 4 else min(3, len(panels))  # four panels: two rows of two
    nrows = math.ceil(len(panels) / ncols)
    fig = figure(max(7.0, 4.4 * ncols), 3.5 * nrows)
    rng = np.random.default_rng(0)
    first: Any = None
    for i, panel in enumerate(panels):
        # only the panels drawn (an axes costs even hidden); one metric scale for all of them
        ax = fig.add_subplot(nrows, ncols, i + 1, sharey=first)
        first = first or ax
        (_draw_numeric if panel["kind"] == "num" else _draw_categories)(ax, panel, seeds, n, rng)
        if i % ncols == 0:  # the metric's ticks and name once per row, at the left
            few_ticks(ax.yaxis)
            ax.set_ylabel(short(data["label"]))
        else:  # the row's scale is read at its left
            ax.yaxis.set_tick_params(labelleft=False)
        if i == 0:  # one legend for all panels, above them (inside a panel it would hide runs)
            handles, texts = ax.get_legend_handles_labels()
            leg = fig.legend(
                handles,
                texts,
                loc="upper center",
                ncols=max(1, len(texts)),
                markerscale=1.5,
                frameon=False,
                bbox_to_anchor=(0.5, 1 - 0.36 / fig.get_size_inches()[1]),
            )
            for h in leg.legend_handles:
                if h is not None:
                    h.set_alpha(1.0)
    fig.suptitle(
        f"Linearity: {short(data['label'])} ({data['better']}) against each parameter",
        y=1 - 0.12 / fig.get_size_inches()[1],
    )
    margins(fig, left=0.85, right=0.2, top=0.95, bottom=0.75, wspace=0.12, hspace=0.45)
    save(fig, path)
