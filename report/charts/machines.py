"""Machines: a Gantt timeline of the jobs per host (lanes for parallel slots) and throughput per host."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import CHAR_IN, few_ticks, figure, margins, save, short
from report.charts.spec import Chart

__all__ = ["prepare", "draw"]


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


def _spans(df: pd.DataFrame) -> pd.DataFrame | None:
    """host, state, s, e (matplotlib date numbers) of the jobs with a start and an end."""
    if df.empty or "started" not in df.columns or "ended" not in df.columns:
        return None
    t0, t1 = _utc(df["started"]), _utc(df["ended"])
    ok = t0.notna() & t1.notna()
    if not ok.any():
        return None
    import matplotlib.dates as mdates

    d = pd.DataFrame({"host": df["host"].fillna("?").astype(str)[ok], "state": df["state"][ok]})
    d["s"] = mdates.date2num(t0[ok].dt.tz_convert(None))
    d["e"] = np.maximum(mdates.date2num(t1[ok].dt.tz_convert(None)), d["s"] + 1e-7)
    return d


def _host(sub: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    """One host's bars (per state and lane), its throughput steps, and its row of the hosts table."""
    s, e = sub["s"].to_numpy(), sub["e"].to_numpy()
    lanes = _lanes(s, e)
    bars = []
    for state in ("done", "failed"):
        sm = (sub["state"] == state).to_numpy()
        for ln in np.unique(lanes[sm]):
            lm = sm & (lanes == ln)
            bars.append((state, int(ln), s[lm], (e - s)[lm]))
    hours = max((e.max() - s.min()) * 24.0, 1e-9)
    row = {
        "host": str(sub["host"].iloc[0]),
        "jobs": int(len(sub)),
        "failed": int((sub["state"] == "failed").sum()),
        "per_hour": len(sub) / hours,
        "busy_s": float(((e - s) * 86400).sum()),
        "slots": int(lanes.max()) + 1,
    }
    return {"bars": bars, "ends": np.sort(e), "lanes": row["slots"], "row": row}, row


def prepare(df: pd.DataFrame) -> Chart | None:
    """A Gantt of start→end per host (done blue, failed red) and the finished count per host over time."""
    d = _spans(df)
    if d is None:
        return None
    hosts, rows = [], []
    for _h, sub in d.groupby("host", sort=True):
        host, row = _host(sub)
        hosts.append(host)
        rows.append(row)
    return Chart(
        "timeline",
        ".png",
        "Machines: timeline and throughput",
        "Top: each bar a job on its host from start to end (lanes: jobs run side by side). "
        "Bottom: jobs finished over time per host.",
        "Look for: gaps in a host's row (it sat idle), a host whose bars are much longer (a slow "
        "machine for this script), and a throughput line that flattens (that machine stopped).",
        draw,
        {"hosts": hosts},
        {"hosts": rows},
    )


_COLORS = {"done": "#4c72b0", "failed": "#c44e52"}


def _rects(starts: np.ndarray, widths: np.ndarray, y0: float, height: float) -> np.ndarray:
    """The corners of one bar per (start, width) between y0 and y0 + height: shape (n, 4, 2)."""
    x0, x1 = starts, starts + widths
    ys = np.broadcast_to([y0, y0 + height, y0 + height, y0], (starts.size, 4))
    return np.stack([np.column_stack([x0, x0, x1, x1]), ys], axis=-1)


def _gantt(ax: Any, hosts: list[dict[str, Any]]) -> None:
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    boxes: dict[str, list[np.ndarray]] = {state: [] for state in _COLORS}
    for base, h in enumerate(reversed(hosts)):
        height = 0.8 / h["lanes"]
        for state, ln, starts, widths in h["bars"]:
            y0 = base + 0.1 + ln * height
            boxes[state].append(_rects(np.asarray(starts), np.asarray(widths), y0, height * 0.9))
    for state, parts in boxes.items():  # one collection per colour: every bar of every host and lane
        if parts:
            verts = np.concatenate(parts)
            ax.add_collection(PolyCollection(list(verts), facecolors=_COLORS[state], edgecolors="none"))
            ax.update_datalim(verts.reshape(-1, 2))
    ax.autoscale_view()
    ax.set_yticks([b + 0.5 for b in range(len(hosts))])
    ax.set_yticklabels([short(h["row"]["host"], 24) for h in reversed(hosts)])
    ax.set_ylim(-0.1, len(hosts) + 0.1)
    ax.grid(axis="y", alpha=0)
    ax.set_ylabel("host")
    handles = [Patch(color=c, label=s) for s, c in _COLORS.items()]
    ax.legend(handles=handles, loc="upper left", ncols=2, fontsize=7.5)
    ax.set_title("Timeline: which machine ran what, when (each bar a job, start → end)", y=1.01)


def _throughput(ax: Any, hosts: list[dict[str, Any]]) -> None:
    import matplotlib.dates as mdates

    for h in hosts:  # in the same order as the legend reads
        r = h["row"]
        ends = h["ends"]
        label = f"{short(r['host'], 24)}: {r['jobs']} jobs, {r['per_hour']:.3g}/h"
        ax.step(ends, np.arange(1, len(ends) + 1), where="post", lw=1.6, label=label)
    ax.set_ylabel("jobs finished (cumulative)")
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="upper left", fontsize=7.5)
    ax.set_title("Throughput per host", y=1.01)
    few_ticks(ax.yaxis)
    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def draw(data: dict[str, Any], path: Path) -> None:
    hosts = data["hosts"]
    total_lanes = sum(h["lanes"] for h in hosts)
    gantt_h = min(7.0, 0.9 + 0.22 * total_lanes + 0.35 * len(hosts))
    host_w = 0.55 + CHAR_IN * max(len(short(h["row"]["host"], 24)) for h in hosts)
    fig = figure(9.0 + host_w, gantt_h + 3.6)
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [gantt_h, 3.0]})
    _gantt(ax, hosts)
    _throughput(ax2, hosts)
    margins(fig, left=host_w, right=0.3, top=0.35, bottom=0.75, hspace=0.3 * 3.0 / gantt_h + 0.1)
    save(fig, path)
