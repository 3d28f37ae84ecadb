"""The sweep charts (matplotlib on Agg; PNG or SVG) and the job pages' inline SVG curves (plain Python).

Every chart family has `prepare(...)`, which takes plain data, never reads the spool, and returns
a `Chart` (or None when there is nothing worth drawing), and `draw(data, path)`, which draws it
(`spec.render` runs it in any process). One module per chart family:

    spec           the `Chart` record, its digest, `render`
    axes           shared style, figures, ticks, margins, saving, label and point sizing
    linearity      metric against each parameter: numeric scatter + fit, categorical boxes
    spread         spread across seeds per configuration
    parallel       parallel coordinates
    curves         learning curves of every run (only when runs printed more than one line)
    machines       timeline and throughput per host
    failure_kinds  failures by error kind
    usage          wall time and peak memory of each job, per host
    inline_svg     the job pages' small curves (`svg_curve`)
"""

from __future__ import annotations

from report.charts import curves, failure_kinds, linearity, machines, parallel, spread, usage
from report.charts.axes import DPI
from report.charts.inline_svg import svg_curve
from report.charts.spec import Chart, render

__all__ = [
    "Chart",
    "render",
    "linearity",
    "spread",
    "parallel",
    "curves",
    "machines",
    "failure_kinds",
    "usage",
    "svg_curve",
    "DPI",
]
