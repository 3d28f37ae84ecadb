"""Machines: a Gantt timeline of the jobs per host (lanes for parallel slots) and throughput per host.

Every new run is a new bar, so the chart is a client chart (`static/charts.js`, drawing
`timeline`): `prepare` lays the jobs out in lanes and the page carries each bar (start and end in
seconds from the first start, lane, state, run id); hover a bar for its job, click to open it.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import pandas as pd

from report.charts.spec import Chart

__all__ = ["prepare", "STATES"]

STATES = ("done", "failed")  #: the bars' states, in the order the page's data numbers them


def _lanes(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Greedy lane per job so that overlapping jobs on one host (slots) do not hide each other."""
    order = np.argsort(starts, kind="stable")
    lane = np.zeros(len(starts), dtype=int)
    free: list[tuple[float, int]] = []
    used = 0
    for i in order:
        if free and free[0][0] <= starts[i]:
            _, ln = heapq.heappop(free)
        else:
            ln = used
            used += 1
        lane[i] = ln
        heapq.heappush(free, (ends[i], ln))
    return lane


def _utc(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    return pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")


def _seconds(t: pd.Series) -> np.ndarray:
    """UTC times as seconds since the epoch."""
    return t.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype("int64") / 1e9


def _spans(df: pd.DataFrame) -> pd.DataFrame | None:
    """id, host, state, s, e (seconds since the epoch) of the jobs with a start and an end."""
    if df.empty or "started" not in df.columns or "ended" not in df.columns:
        return None
    t0, t1 = _utc(df["started"]), _utc(df["ended"])
    ok = (t0.notna() & t1.notna()).to_numpy()
    if not ok.any():
        return None
    d = pd.DataFrame(
        {
            "id": df["id"].astype(str)[ok],
            "host": df["host"].fillna("?").astype(str)[ok] if "host" in df.columns else "?",
            "state": df["state"][ok],
        }
    )
    d["s"] = _seconds(t0[ok])
    d["e"] = np.maximum(_seconds(t1[ok]), d["s"] + 0.01)  # a bar of at least 10 ms
    return d


def _host(sub: pd.DataFrame, origin: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """One host's bars for the page and its row of the hosts table."""
    s, e = sub["s"].to_numpy(), sub["e"].to_numpy()
    lanes = _lanes(s, e)
    state = sub["state"].map({st: i for i, st in enumerate(STATES)}).fillna(0).to_numpy(dtype=int)
    hours = max((e.max() - s.min()) / 3600.0, 1e-9)
    row = {
        "host": str(sub["host"].iloc[0]),
        "jobs": int(len(sub)),
        "failed": int((sub["state"] == "failed").sum()),
        "per_hour": len(sub) / hours,
        "busy_s": float((e - s).sum()),
        "slots": int(lanes.max()) + 1,
    }
    bars = {
        "host": row["host"],
        "lanes": row["slots"],
        "ids": sub["id"].tolist(),
        "s": np.round(s - origin, 3).tolist(),
        "e": np.round(e - origin, 3).tolist(),
        "lane": lanes.tolist(),
        "state": state.tolist(),
        "per_hour": row["per_hour"],
    }
    return bars, row


def prepare(df: pd.DataFrame) -> Chart | None:
    """A Gantt of start→end per host (done blue, failed red) and the finished count per host over time."""
    d = _spans(df)
    if d is None:
        return None
    origin = float(d["s"].min())
    hosts, rows = [], []
    for _h, sub in d.groupby("host", sort=True):
        host, row = _host(sub, origin)
        hosts.append(host)
        rows.append(row)
    return Chart(
        "timeline",
        "",
        "Machines: timeline and throughput",
        "Top: each bar a job on its host from start to end (lanes: jobs run side by side). "
        "Bottom: jobs finished over time per host. Hover a bar for its job; click it to open the job.",
        "Look for: gaps in a host's row (it sat idle), a host whose bars are much longer (a slow "
        "machine for this script), and a throughput line that flattens (that machine stopped).",
        None,
        {"origin": origin, "states": list(STATES), "hosts": hosts},  # origin: seconds since the epoch
        {"hosts": rows},
        client="timeline",
    )
