"""What runs cost per machine: each job's wall time and peak memory, a row of dots per host.

Every new run is a new dot, so the chart is a client chart (`static/charts.js`, drawing `usage`):
the page carries each job's two figures with its id (hover a dot: its run; click: its job page).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from report.charts.spec import Chart

__all__ = ["prepare"]


def _points(df: pd.DataFrame, col: str) -> dict[str, list[tuple[str, float]]]:
    """(job id, value) of each job with a finite value, per host."""
    out: dict[str, list[tuple[str, float]]] = {}
    if col not in df.columns or "host" not in df.columns:
        return out
    for jid, host, v in zip(
        df["id"].astype(str).tolist(), df["host"].tolist(), df[col].tolist(), strict=True
    ):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.setdefault(str(host) if isinstance(host, str) else "?", []).append((jid, float(v)))
    return out


def _panel(points: dict[str, list[tuple[str, float]]], hosts: list[str], label: str) -> dict[str, Any]:
    return {
        "label": label,
        "ids": [[j for j, _ in points.get(h, [])] for h in hosts],
        "values": [[round(v, 3) for _, v in points.get(h, [])] for h in hosts],
        "medians": [float(np.median([v for _, v in points[h]])) if points.get(h) else None for h in hosts],
    }


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
            "median_wall_s": float(np.median([v for _, v in wall[h]])) if wall.get(h) else None,
            "max_rss_mb": max(v for _, v in rss[h]) if rss.get(h) else None,
        }
        for h in hosts
    ]
    data = {
        "hosts": hosts,
        "panels": [_panel(wall, hosts, "wall time (s)"), _panel(rss, hosts, "peak memory (MB)")],
    }
    return Chart(
        "usage",
        "",
        "Time and memory per machine",
        "Each dot a job: its wall time (left) and its peak memory, the RSS of its process tree "
        "(right), a row per host; the bar is the host's median. Hover a dot for its job; click it "
        "to open the job.",
        "Look for: which machine a job fits (the largest peak, against each machine's memory) and "
        "how much slower a machine is; use the peaks to set requires.min_memory_gb.",
        None,
        data,
        {"usage_hosts": rows},
        client="usage",
    )
