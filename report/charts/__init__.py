"""The sweep charts (matplotlib, Agg; PNG or SVG) and the job pages' inline SVG curves (plain Python).

Every chart function takes plain data and a file path, draws one file and returns its path, or
None when there is nothing to draw. They never read the spool. One module per chart family:

    axes           shared style, margins, saving, label and point sizing
    linearity      metric against each numeric parameter (`metric_vs_params`)
    spread         spread across seeds per configuration (`seed_spread`)
    parallel       parallel coordinates (`parallel_coordinates`)
    curves         learning curves of every run (`learning_curves`)
    machines       timeline and throughput per host (`timeline`)
    failure_kinds  failures by error kind (`failures`)
    inline_svg     the job pages' small curves (`svg_curve`)
"""

from __future__ import annotations

from report.charts.axes import DPI
from report.charts.curves import learning_curves
from report.charts.curves import pick_curve_keys as pick_curve_keys
from report.charts.failure_kinds import failures
from report.charts.inline_svg import svg_curve
from report.charts.linearity import metric_vs_params
from report.charts.machines import timeline
from report.charts.parallel import parallel_coordinates
from report.charts.spread import seed_spread

__all__ = [
    "metric_vs_params",
    "seed_spread",
    "parallel_coordinates",
    "learning_curves",
    "timeline",
    "failures",
    "svg_curve",
    "DPI",
]
