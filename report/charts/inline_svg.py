"""The job pages' small learning curves as inline SVG, in plain Python (no matplotlib: thousands of pages)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from markupsafe import Markup, escape

from report.data import fmt

__all__ = ["svg_curve"]


def svg_curve(
    xs: Iterable[float], ys: Iterable[float], *, title: str, xlabel: str, width: int = 340, height: int = 150
) -> Markup:
    """A small line chart as inline SVG markup; every text is escaped."""
    pts = [
        (float(x), float(y))
        for x, y in zip(xs, ys, strict=False)
        if math.isfinite(float(x)) and math.isfinite(float(y))
    ]
    if not pts:
        return Markup("")
    left, right, top, bottom = 56, 10, 20, 30
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        y0, y1 = y0 - abs(y0) * 0.05 - 0.5, y1 + abs(y1) * 0.05 + 0.5

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    poly = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    dots = (
        "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2"/>' for x, y in pts)
        if len(pts) <= 40
        else ""
    )
    t = escape(title)
    parts = [
        f'<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{t}">',
        f'<text x="{left}" y="13" class="t">{t}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" class="ax"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" class="ax"/>',
        f'<text x="{left - 4}" y="{top + 4}" class="yl">{escape(fmt(y1))}</text>',
        f'<text x="{left - 4}" y="{top + ph}" class="yl">{escape(fmt(y0))}</text>',
        f'<text x="{left}" y="{height - 14}" class="xl0">{escape(fmt(x0))}</text>',
        f'<text x="{left + pw}" y="{height - 14}" class="xl1">{escape(fmt(x1))}</text>',
        f'<text x="{left + pw / 2:.0f}" y="{height - 3}" class="xl">{escape(xlabel)}</text>',
        f'<polyline points="{poly}" class="ln"/>',
        f'<g class="pt">{dots}</g>',
        "</svg>",
    ]
    return Markup("".join(parts))
