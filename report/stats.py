"""`BuildStats`: what one build did, and the CPU time of each of its phases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["BuildStats"]


@dataclass
class BuildStats:
    """What one build did (also kept in the manifest as `last_build`)."""

    seconds: float = 0.0
    full: bool = False
    jobs_total: int = 0
    jobs_rendered: list[str] = field(default_factory=list)
    jobs_removed: list[str] = field(default_factory=list)
    sweeps_charted: list[str] = field(default_factory=list)
    sweeps_paged: list[str] = field(default_factory=list)
    charts_drawn: list[str] = field(default_factory=list)  #: `<sweep>/<file>` of each chart drawn
    all_jobs_paged: bool = False
    processes: int = 0  #: worker processes the build used (0: all in its own process)
    carried: bool = False  #: took the last build's bookkeeping in this process (`report.carry`)
    #: CPU seconds per phase of this process (scan, results, charts, sweep pages, job pages,
    #: index) and, as `workers`, of the pieces its workers ran
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.process_time()
        try:
            yield
        finally:
            self.add(name, time.process_time() - t)

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 4)

    def cpu(self) -> float:
        """CPU seconds of the whole build: this process's phases and its workers' pieces."""
        return round(sum(self.timings.values()), 4)
