"""Failures: a bar per error kind with its count of failed jobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from report.charts.axes import CHAR_IN, RC, margins, pyplot, save, short

__all__ = ["failures"]


def failures(counts: dict[str, int], path: Path) -> Path | None:
    if not counts:
        return None
    plt = pyplot()
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    with plt.rc_context(RC):
        kind_w = 0.35 + CHAR_IN * max(len(short(k, 30)) for k, _ in items)
        fig, ax = plt.subplots(figsize=(5.5 + kind_w, 1.3 + 0.36 * len(items)))
        pos = np.arange(len(items))[::-1]
        ax.barh(pos, [v for _, v in items], color="#c44e52", height=0.6)
        for p_, (_, v) in zip(pos, items, strict=True):
            ax.text(v, p_, f" {v}", va="center", fontsize=8)
        ax.set_yticks(pos)
        ax.set_yticklabels([short(k, 30) for k, _ in items])
        ax.set_xlabel("failed jobs")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title("Failures by error kind", y=1.01)
        ax.grid(axis="y", alpha=0)
        margins(fig, left=kind_w, right=0.4, top=0.35, bottom=0.55)
        return save(fig, path)
