"""Machines: a Gantt timeline of the jobs per host (lanes for parallel slots) and throughput per host."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import CHAR_IN, RC, margins, pyplot, save, short

__all__ = ["timeline"]


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


def timeline(df: pd.DataFrame, path: Path) -> tuple[Path | None, list[dict[str, Any]]]:
    """A Gantt of start→end per host (done blue, failed red) and the finished count per host over time."""
    if df.empty or "started" not in df.columns or "ended" not in df.columns:
        return None, []
    t0, t1 = _utc(df["started"]), _utc(df["ended"])
    ok = t0.notna() & t1.notna()
    if not ok.any():
        return None, []
    d = pd.DataFrame(
        {
            "host": df["host"].fillna("?").astype(str)[ok],
            "start": t0[ok],
            "end": t1[ok],
            "state": df["state"][ok],
        }
    )
    plt = pyplot()
    import matplotlib.dates as mdates

    d["s"] = mdates.date2num(d["start"].dt.tz_convert(None))
    d["e"] = mdates.date2num(d["end"].dt.tz_convert(None))
    d["e"] = np.maximum(d["e"], d["s"] + 1e-7)
    hosts = sorted(d["host"].unique())
    rows: list[dict[str, Any]] = []
    with plt.rc_context(RC):
        lanes_per = {}
        lane_of = pd.Series(0, index=d.index)
        for h in hosts:
            m = d["host"] == h
            ln = _lanes(d.loc[m, "s"].to_numpy(), d.loc[m, "e"].to_numpy())
            lane_of[m] = ln
            lanes_per[h] = int(ln.max()) + 1
        total_lanes = sum(lanes_per.values())
        gantt_h = min(7.0, 0.9 + 0.22 * total_lanes + 0.35 * len(hosts))
        host_w = 0.55 + CHAR_IN * max(len(short(h, 24)) for h in hosts)
        fig, (ax, ax2) = plt.subplots(
            2,
            1,
            figsize=(9.0 + host_w, gantt_h + 3.6),
            sharex=True,
            gridspec_kw={"height_ratios": [gantt_h, 3.0]},
        )
        base = 0
        yticks, ylabels = [], []
        for h in reversed(hosts):
            m = d["host"] == h
            sub = d[m]
            lanes = lane_of[m].to_numpy()
            nl = lanes_per[h]
            height = 0.8 / nl
            for state, color in (("done", "#4c72b0"), ("failed", "#c44e52")):
                sm = (sub["state"] == state).to_numpy()
                if not sm.any():
                    continue
                for ln in np.unique(lanes[sm]):
                    lm = sm & (lanes == ln)
                    spans = list(
                        zip(sub["s"].to_numpy()[lm], (sub["e"] - sub["s"]).to_numpy()[lm], strict=True)
                    )
                    ax.broken_barh(
                        spans, (base + 0.1 + ln * height, height * 0.9), facecolors=color, edgecolors="none"
                    )
            yticks.append(base + 0.5)
            ylabels.append(short(h, 24))
            base += 1
        for h in hosts:  # throughput, in the same order as the legend reads
            sub = d[d["host"] == h]
            ends = np.sort(sub["e"].to_numpy())
            hours = max((sub["e"].max() - sub["s"].min()) * 24.0, 1e-9)
            rate = len(sub) / hours
            ax2.step(
                ends,
                np.arange(1, len(ends) + 1),
                where="post",
                lw=1.6,
                label=f"{short(h, 24)}: {len(sub)} jobs, {rate:.3g}/h",
            )
            rows.append(
                {
                    "host": h,
                    "jobs": int(len(sub)),
                    "failed": int((sub["state"] == "failed").sum()),
                    "per_hour": rate,
                    "busy_s": float(((sub["e"] - sub["s"]) * 86400).sum()),
                    "slots": lanes_per[h],
                }
            )
        ax.set_yticks(yticks)
        ax.set_yticklabels(ylabels)
        ax.set_ylim(-0.1, base + 0.1)
        ax.grid(axis="y", alpha=0)
        ax.set_ylabel("host")
        from matplotlib.patches import Patch

        ax.legend(
            handles=[Patch(color="#4c72b0", label="done"), Patch(color="#c44e52", label="failed")],
            loc="upper left",
            ncols=2,
            fontsize=7.5,
        )
        ax.set_title("Timeline: which machine ran what, when (each bar a job, start → end)", y=1.01)
        ax2.set_ylabel("jobs finished (cumulative)")
        ax2.set_xlabel("time (UTC)")
        ax2.legend(loc="upper left", fontsize=7.5)
        ax2.set_title("Throughput per host", y=1.01)
        loc = mdates.AutoDateLocator()
        ax2.xaxis.set_major_locator(loc)
        ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        margins(fig, left=host_w, right=0.3, top=0.35, bottom=0.75, hspace=0.3 * 3.0 / gantt_h + 0.1)
        return save(fig, path), sorted(rows, key=lambda r: r["host"])
