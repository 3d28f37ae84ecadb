"""What runs cost per machine: each job's wall time and peak memory, a row of dots per host."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from report.charts.axes import CHAR_IN, figure, margins, save, short
from report.charts.spec import Chart

__all__ = ["prepare", "draw"]


def _points(df: pd.DataFrame, col: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    if col not in df.columns or "host" not in df.columns:
        return out
    for host, v in zip(df["host"].tolist(), df[col].tolist(), strict=True):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.setdefault(str(host) if isinstance(host, str) else "?", []).append(float(v))
    return out


def prepare(df: pd.DataFrame) -> Chart | None:
    """None when no job of the sweep recorded what it cost (runs from before `usage`)."""
    wall, rss = _points(df, "usage.wall_s"), _points(df, "usage.max_rss_mb")
    hosts = sorted(set(wall) | set(rss))
    if not hosts:
        return None
    rows = [
        {
            "host": h,
            "jobs": len(wall.get(h, []) or rss.get(h, [])),
            "median_wall_s": float(np.median(wall[h])) if wall.get(h) else None,
            "max_rss_mb": max(rss[h]) if rss.get(h) else None,
        }
        for h in hosts
    ]
    return Chart(
        "usage",
        ".png",
        "Time and memory per machine",
        "Each dot a job: its wall time (left) and its peak memory, the RSS of its process tree "
        "(right), a row per host; the bar is the host's median.",
        "Look for: which machine a job fits (the largest peak, against each machine's memory) and "
        "how much slower a machine is; use the peaks to set requires.min_memory_gb.",
        draw,
        {"hosts": hosts, "wall": wall, "rss": rss},
        {"usage_hosts": rows},
    )


def draw(data: dict[str, Any], path: Path) -> None:
    hosts = data["hosts"]
    host_w = 0.45 + CHAR_IN * max(len(short(h, 24)) for h in hosts)
    fig = figure(7.5 + host_w, 1.4 + 0.4 * len(hosts))
    axes = fig.subplots(1, 2, sharey=True)
    pos = np.arange(len(hosts))[::-1]
    rng = np.random.default_rng(0)
    for ax, key, label in ((axes[0], "wall", "wall time (s)"), (axes[1], "rss", "peak memory (MB)")):
        for p_, host in zip(pos, hosts, strict=True):
            vals = data[key].get(host, [])
            if not vals:
                continue
            ax.barh(p_, float(np.median(vals)), color="#dfe7f2", height=0.6)
            ax.scatter(vals, p_ + rng.uniform(-0.18, 0.18, len(vals)), s=9, color="#4c72b0", zorder=3)
        ax.set_xlabel(label)
        ax.set_xlim(left=0)
        ax.grid(axis="y", alpha=0)
    axes[0].set_yticks(pos)
    axes[0].set_yticklabels([short(h, 24) for h in hosts])
    axes[0].set_title("Time and memory per machine (dot: a job; bar: median)", y=1.01, loc="left")
    margins(fig, left=host_w, right=0.3, top=0.35, bottom=0.55)
    save(fig, path)
