"""Linearity: the metric against each numeric parameter, with a least-squares line and R² per panel."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import (
    RC,
    SEED_COLORS,
    alpha_for,
    finite_rows,
    log_axis,
    margins,
    marker_size,
    pyplot,
    save,
    short,
)
from report.data import MetricChoice, fmt, is_log_spaced, is_numeric

__all__ = ["metric_vs_params"]


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    """(slope, intercept, R²) of y on x by least squares; None if x does not vary."""
    if x.size < 3 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return float(slope), float(intercept), r2


def metric_vs_params(
    df: pd.DataFrame, metric: MetricChoice, params: Sequence[str], seed_col: str | None, path: Path
) -> tuple[Path | None, list[dict[str, Any]]]:
    """One panel per numeric param: every run (coloured by seed), the mean per value, a linear fit + R².

    Also returns the fits (param, log, slope, R²) for the page's table.
    """
    d = finite_rows(df, metric.column)
    params = [p for p in params if p in d.columns and is_numeric(d[p]) and d[p].nunique() > 1]
    fits: list[dict[str, Any]] = []
    if d.empty or not params:
        return None, fits
    plt = pyplot()
    with plt.rc_context(RC):
        ncols = min(3, len(params))
        nrows = math.ceil(len(params) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.0, 4.4 * ncols), 3.5 * nrows), squeeze=False)
        seeds = sorted(d[seed_col].dropna().unique().tolist()) if seed_col else []
        rng = np.random.default_rng(0)
        n = len(d)
        for i, p in enumerate(params):
            ax = axes[i // ncols][i % ncols]
            sub = d[pd.to_numeric(d[p], errors="coerce").notna()]
            x = sub[p].astype(float).to_numpy()
            y = sub[metric.column].to_numpy()
            log = is_log_spaced(x)
            xt = np.log10(x) if log else x
            uniq = np.unique(xt)
            # a little horizontal jitter when many runs share a few x values, so seeds stay visible
            jitter = np.zeros_like(xt)
            if uniq.size <= 30 and n > uniq.size:
                span = np.ptp(xt) or 1.0
                jitter = rng.uniform(-0.012, 0.012, xt.size) * span
            xs = 10 ** (xt + jitter) if log else xt + jitter
            size, alpha = marker_size(n), alpha_for(n)
            if seed_col and 1 < len(seeds) <= len(SEED_COLORS):
                for k, s in enumerate(seeds):
                    m = (sub[seed_col] == s).to_numpy()
                    ax.scatter(
                        xs[m],
                        y[m],
                        s=size,
                        alpha=alpha,
                        color=SEED_COLORS[k],
                        linewidths=0,
                        label=f"seed {fmt(s)}",
                    )
            else:
                ax.scatter(xs, y, s=size, alpha=alpha, color=SEED_COLORS[0], linewidths=0, label="runs")
            if uniq.size <= 60:
                means = pd.Series(y).groupby(xt).mean()
                mx = 10 ** means.index.to_numpy() if log else means.index.to_numpy()
                ax.plot(mx, means.to_numpy(), "-o", color="black", lw=1.4, ms=3.5, label="mean", zorder=3)
            fit = _fit(xt, y)
            if fit is not None:
                slope, icpt, r2 = fit
                fits.append(
                    {
                        "param": p.removeprefix("param."),
                        "log": log,
                        "slope": slope,
                        "r2": r2,
                        "n": int(xt.size),
                    }
                )
                gx = np.linspace(xt.min(), xt.max(), 50)
                ax.plot(
                    10**gx if log else gx,
                    slope * gx + icpt,
                    "--",
                    color="#c44e52",
                    lw=1.3,
                    label="linear fit",
                    zorder=4,
                )
                unit = "per decade" if log else f"per unit of {p.removeprefix('param.')}"
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
            name = p.removeprefix("param.")
            ax.set_xlabel(f"{short(name)} (log scale)" if log else short(name))
            ax.set_ylabel(short(metric.label))
            ax.set_title(short(f"{metric.label} vs {name}", 60), y=1.01)
            if i == 0:  # one legend for all panels, above them (inside a panel it would hide runs)
                handles, texts = ax.get_legend_handles_labels()
                leg = fig.legend(
                    handles,
                    texts,
                    loc="upper center",
                    ncols=len(texts),
                    markerscale=1.5,
                    frameon=False,
                    bbox_to_anchor=(0.5, 1 - 0.36 / fig.get_size_inches()[1]),
                )
                for h in leg.legend_handles:
                    if h is not None:
                        h.set_alpha(1.0)
        for j in range(len(params), nrows * ncols):
            axes[j // ncols][j % ncols].set_visible(False)
        fig.suptitle(
            f"Linearity: {short(metric.label)} ({metric.better}) against each numeric parameter",
            y=1 - 0.12 / fig.get_size_inches()[1],
        )
        margins(fig, left=0.85, right=0.2, top=0.95, bottom=0.6, wspace=0.32, hspace=0.55)
        return save(fig, path), fits
