"""A chart as data: what to draw (plain, picklable), how (a module-level function), and its words.

Every chart family has a `prepare` (cheap: numpy and pandas, in the build's own process) that
returns a `Chart`, and a `draw(data, path)` (matplotlib) that `render` runs, in the build's
process or in one of its workers. A chart's `digest` hashes its drawing function and its data:
a rebuild redraws a chart only when that digest changed (one new job changes the timeline, not
the failures chart), whatever else in its sweep changed.

A chart whose every new run changes it (the linearity chart, the timeline), and every chart but
the failures chart by now, is drawn by the browser instead (`client` names its drawing in
`static/charts.js`, `parallel.js`, `curves.js` or `spread.js`): its data goes into the sweep page
as JSON (`payload`), no file is made and no worker draws it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from markupsafe import Markup

from spool.untrusted import finite

__all__ = ["Chart", "render", "script_escape", "script_json"]


@dataclass
class Chart:
    """One chart of a sweep page: its file, its words, what `draw` needs, and what the page shows."""

    key: str  #: the file's stem (`timeline`)
    suffix: str  #: `.png` for many points, `.svg` for text-heavy charts, `""` for a client chart
    title: str
    caption: str  #: what is drawn
    look_for: str  #: one line: what question the chart answers, what to look for
    draw: Callable[[Any, Path], None] | None  #: None for a client chart
    data: Any  #: plain, picklable values only (arrays, lists, dicts, strings); JSON's for a client chart
    info: dict[str, Any] = field(default_factory=dict)  #: tables the page shows beside it
    client: str = ""  #: the browser's drawing of it (`static/*.js`), else drawn to a file

    @property
    def file(self) -> str:
        return "" if self.client else f"{self.key}{self.suffix}"

    @cached_property
    def payload(self) -> Markup:
        """A client chart's data as JSON safe inside a `<script type="application/json">`."""
        return script_json(self.data)

    def digest(self) -> str:
        if self.client:
            return hashlib.sha1(f"{self.key}|{self.client}|{self.payload}".encode()).hexdigest()
        assert self.draw is not None
        h = hashlib.sha1(f"{self.file}|{self.draw.__module__}.{self.draw.__qualname__}|".encode())
        h.update(pickle.dumps(self.data, protocol=4))
        return h.hexdigest()

    def entry(self) -> dict[str, Any]:
        """What the sweep page and the manifest keep of the chart (never a client chart's data)."""
        e = {
            "key": self.key,
            "file": self.file,
            "title": self.title,
            "caption": self.caption,
            "look_for": self.look_for,
            "digest": self.digest(),
        }
        if self.client:
            e["client"] = self.client
        return e


def script_json(data: Any) -> Markup:
    """`data` as JSON to place inside a `<script type="application/json">` element.

    Text in it comes from the spool (untrusted): `<`, `>` and `&` are written as `\\u` escapes
    (no `</script>`, no `<!--`), and so are U+2028/U+2029 (`ensure_ascii` already escapes every
    non-ASCII character); the JSON parses to the same values. NaN and infinities (not JSON) become
    null.
    """
    try:
        text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    except ValueError:  # a value overflowed (results are the spool's, untrusted): null, not a failed build
        text = json.dumps(finite(data), separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    return Markup(script_escape(text))


def script_escape(text: str) -> str:
    """JSON text made safe inside a `<script>` element: `<`, `>`, `&`, U+2028 and U+2029 as `\\u`
    escapes (no `</script>`, no `<!--`); it parses to the same values."""
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def render(draw: Callable[[Any, Path], None], data: Any, path: Path) -> None:
    """Draw one chart into `path` with the charts' style (any process: no state outside the call)."""
    from report.charts.axes import style

    with style():
        draw(data, path)
