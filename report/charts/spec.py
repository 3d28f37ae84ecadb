"""A chart as data: what to draw (plain, picklable), how (a module-level function), and its words.

Every chart family has a `prepare` (cheap: numpy and pandas, in the build's own process) that
returns a `Chart`, and a `draw(data, path)` (matplotlib) that `render` runs, in the build's
process or in one of its workers. A chart's `digest` hashes its drawing function and its data:
a rebuild redraws a chart only when that digest changed (one new job changes the timeline, not
the failures chart), whatever else in its sweep changed.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Chart", "render"]


@dataclass
class Chart:
    """One chart of a sweep page: its file, its words, what `draw` needs, and what the page shows."""

    key: str  #: the file's stem (`timeline`)
    suffix: str  #: `.png` for many points, `.svg` for text-heavy charts
    title: str
    caption: str  #: what is drawn
    look_for: str  #: one line: what question the chart answers, what to look for
    draw: Callable[[Any, Path], None]
    data: Any  #: plain, picklable values only (arrays, lists, dicts, strings)
    info: dict[str, Any] = field(default_factory=dict)  #: tables the page shows beside it

    @property
    def file(self) -> str:
        return f"{self.key}{self.suffix}"

    def digest(self) -> str:
        h = hashlib.sha1(f"{self.file}|{self.draw.__module__}.{self.draw.__qualname__}|".encode())
        h.update(pickle.dumps(self.data, protocol=4))
        return h.hexdigest()

    def entry(self) -> dict[str, Any]:
        """What the sweep page and the manifest keep of the chart."""
        return {
            "file": self.file,
            "title": self.title,
            "caption": self.caption,
            "look_for": self.look_for,
            "digest": self.digest(),
        }


def render(draw: Callable[[Any, Path], None], data: Any, path: Path) -> None:
    """Draw one chart into `path` with the charts' style (any process: no state outside the call)."""
    from report.charts.axes import style

    with style():
        draw(data, path)
