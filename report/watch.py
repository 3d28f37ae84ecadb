"""`spool report --watch`: rebuild the report incrementally as jobs start and end.

Like the runner, it learns of changes from file events on the state folders and from a scan,
always both: a network folder sends no events for what other machines write. A loop around
`Watch.run_once(now)`: a build when the spool's folders changed since the last one (their stat:
a job's move between states changes two of them), and at least every `refresh` seconds (runner
heartbeats, a sweep file edited in place). Open pages follow through `live.js` (see `live`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report.build import build
from report.stats import BuildStats
from report.workers import default_processes, get_workers
from spool.api import Spool
from spool.errors import SpoolError, UsageError
from spool.fsevents import start_observer, stop_observer
from spool.states import State

__all__ = ["Watch", "MIN_INTERVAL"]

MIN_INTERVAL = 0.2
SETTLE = 0.3  #: after an event, wait this long for the rest of a burst (a job's end is several moves)


class _Events:
    """File events on some folders as one wake-up `Event` (none is fine: the scan finds all)."""

    def __init__(self, paths: list[Path], wake: threading.Event):
        self._observer: Any = start_observer(paths, wake)

    def stop(self) -> None:
        if self._observer is not None:
            stop_observer(self._observer)
            self._observer = None


class Watch:
    """Keeps one report folder up to date; `run_once(now)` is one step, `run` the loop."""

    def __init__(
        self,
        spool: Spool,
        out: Path | None = None,
        *,
        sweep: str | None = None,
        metric: str | None = None,
        mode: str | None = None,
        processes: int | None = None,
        interval: float = 2.0,
        refresh: float = 30.0,
        on_build: Callable[[BuildStats], None] | None = None,
    ):
        if not MIN_INTERVAL <= interval <= 3600:
            raise UsageError(f"--interval must be between {MIN_INTERVAL} and 3600 seconds, not {interval}")
        if not interval <= refresh <= 86400:
            raise UsageError(f"the refresh ({refresh} s) must be between the interval and a day")
        self.spool = spool
        self.out = out
        if processes is None:  # decided now, before the watch's own threads exist (see `workers`)
            processes = default_processes()
        self.opts: dict[str, Any] = {"sweep": sweep, "metric": metric, "mode": mode, "processes": processes}
        self.interval = interval
        self.refresh = refresh
        self.on_build = on_build
        self.wake = threading.Event()
        self._seen: tuple[Any, ...] | None = None
        self._last = float("-inf")
        self.builds = 0

    def _folders(self) -> list[Path]:
        layout = self.spool.layout
        return [layout.state_dir(st) for st in State] + [layout.sweeps]

    def fingerprint(self) -> tuple[Any, ...]:
        """The stat of each state folder and of sweeps/: any job moving in or out changes it."""
        out: list[tuple[int, int, int, int] | None] = []
        for d in self._folders():
            try:
                st = os.stat(d)
                out.append((st.st_mtime_ns, st.st_ctime_ns, st.st_nlink, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def run_once(self, now: float) -> BuildStats | None:
        """Build when the folders changed since the last build, or `refresh` seconds went by."""
        seen = self.fingerprint()
        if seen == self._seen and now - self._last < self.refresh:
            return None
        _, stats = build(self.spool, self.out, **self.opts)
        self._seen, self._last = seen, now
        self.builds += 1
        if self.on_build is not None:
            self.on_build(stats)
        return stats

    def run(self, stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """Until `stop` is set (or Ctrl-C): wait for an event or the scan interval, then a step."""
        stop = stop or threading.Event()
        get_workers(self.opts["processes"]).start()  # fork the workers before watchdog's thread exists
        events = _Events(self._folders(), self.wake)
        failing = False
        try:
            while not stop.is_set():
                failing = self._step(clock(), failing)
                if self.wake.wait(self.interval):
                    stop.wait(SETTLE)
                self.wake.clear()
        finally:
            events.stop()

    def _step(self, now: float, failing: bool) -> bool:
        """One `run_once`; whether it failed. A spool that went away (a share unmounted, a
        server asleep) is said once, and once more when it is back, not at every interval."""
        log = logging.getLogger("housespool.report")
        try:
            self.run_once(now)
        except SpoolError as exc:
            if not failing:
                log.warning("report --watch: %s (trying again every %g s)", exc, self.interval)
            return True
        if failing:
            log.warning("report --watch: the spool is back")
        return False
