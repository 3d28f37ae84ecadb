"""Learning curves: every run's metrics lines in grey, the best runs by the metric in colour.

A client chart (`static/curves.js`, drawing `curves`): the page carries the drawn runs' points
(`x[a:b]`, `y[a:b]` for each run's span), which runs are grey, the best with their legend
labels, and the runs early termination stopped; hover a curve for its run, click it for its job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from report.charts.axes import id_sample, rounded, short, significant
from report.charts.spec import Chart
from report.data import MetricChoice, is_numeric

__all__ = ["HIGHLIGHT_RUNS", "MAX_GREY_RUNS", "pick_curve_keys", "prepare"]

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
    drawn = sorted({*grey, *best, *halted})
    at = {j: k for k, j in enumerate(drawn)}
    spans_out: list[list[int]] = []
    parts: list[int] = []
    for j in drawn:
        a, b = spans[j]
        spans_out.append([len(parts), len(parts) + b - a])
        parts.extend(range(a, b))
    data = {
        "ids": drawn,
        "x": rounded(xv[parts]),
        "y": significant(yv[parts]),
        "spans": spans_out,  # each drawn run's points: x[a:b], y[a:b]
        "grey": [at[j] for j in grey],
        "runs": len(spans),
        "sampled": len(grey) < len(spans),
        "box": [float(xv.min()), float(xv.max()), float(yv.min()), float(yv.max())],  # every run's
        "logy": bool(yv.min() > 0 and yv.max() / yv.min() >= 100),
        "best": [[at[j], short(f"#{k + 1} {labels.get(j, j)}", 60)] for k, j in enumerate(best)],
        "stopped": [at[j] for j in halted],
        "xlabel": "epoch" if xkey == "epoch" else "step (metrics line)",
        "ykey": ykey,
        "rising": float(np.nanmean(yv[ends - 1] - yv[starts])) > 0,
    }
    return Chart(
        "learning_curves",
        "",
        "Learning curves",
        f"Every run's {ykey} over its metrics lines in grey ({len(spans)} runs"
        + (f"; {len(grey)} drawn, picked by id" if len(grey) < len(spans) else "")
        + "); "
        f"the best {len(best)} runs by the metric in colour"
        + ("; ✕: where hyperband stopped a run" if halted else "")
        + ". Hover a curve for its run; click it to open the job.",
        "Look for: curves still falling or rising at the end (more epochs would help), curves that "
        "turn back (overfitting), and whether the best runs were already ahead early on.",
        None,
        data,
        client="curves",
    )
