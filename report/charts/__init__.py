"""The sweep charts (matplotlib on Agg, or data the browser draws) and the job pages' inline SVG curves.

Every chart family has `prepare(...)`, which takes plain data, never reads the spool, and returns
a `Chart` (or None when there is nothing worth drawing), and `draw(data, path)`, which draws it
(`spec.render` runs it in any process), unless the chart is a client chart, drawn by the page's
scripts (`static/`) from its data. One module per chart family:

    spec           the `Chart` record, its digest, `render`
    axes           shared style, figures, ticks, margins, saving, label and point sizing
    linearity      metric against each parameter: numeric scatter + fit, categorical boxes (browser)
    spread         spread across seeds per configuration (browser)
    parallel       parallel coordinates (browser)
    curves         learning curves of every run, when runs printed more than one line (browser)
    machines       timeline and throughput per host (browser)
    failure_kinds  failures by error kind
    usage          wall time and peak memory of each job, per host (browser)
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
