"""Failures: a bar per error kind with its count of failed jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from report.charts.axes import CHAR_IN, figure, margins, save, short
from report.charts.spec import Chart

__all__ = ["prepare", "draw"]


def prepare(counts: dict[str, int]) -> Chart | None:
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return Chart(
        "failures",
        ".svg",
        "Failures by kind",
        "Failed jobs of this sweep counted by error kind (details and stderr tails below).",
        "Look for: one kind that dominates (timeouts: raise the timeout; exit: open a failed job's stderr).",
        draw,
        {"items": [(short(k, 30), int(v)) for k, v in items]},
    )


def draw(data: dict[str, Any], path: Path) -> None:
    items = data["items"]
    kind_w = 0.35 + CHAR_IN * max(len(k) for k, _ in items)
    fig = figure(5.5 + kind_w, 1.3 + 0.36 * len(items))
    ax = fig.add_subplot()
    pos = np.arange(len(items))[::-1]
    ax.barh(pos, [v for _, v in items], color="#c44e52", height=0.6)
    for p_, (_, v) in zip(pos, items, strict=True):
        ax.text(v, p_, f" {v}", va="center", fontsize=8)
    ax.set_yticks(pos)
    ax.set_yticklabels([k for k, _ in items])
    ax.set_xlabel("failed jobs")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.set_title("Failures by error kind", y=1.01)
    ax.grid(axis="y", alpha=0)
    margins(fig, left=kind_w, right=0.4, top=0.35, bottom=0.55)
    save(fig, path)
