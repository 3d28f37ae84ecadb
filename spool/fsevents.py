"""File events on a few folders as one wake-up (anything with `set()`), through watchdog.

Shared by the runner (its fallback where inotify is missing) and `spool report --watch`. Events
are only a hint: both also scan, since a network folder sends no events for what other machines
write, so a watchdog that cannot start (no backend, the inotify watch limit) is not an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

__all__ = ["start_observer", "stop_observer"]


class Settable(Protocol):
    """A wake-up: `threading.Event`, or the runner's signal-safe one."""

    def set(self) -> None: ...


def start_observer(paths: list[Path], wake: Settable) -> Any | None:
    """A started watchdog observer that sets `wake` on any event in `paths`, or None."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:  # pragma: no cover - watchdog is a core dependency
        return None

    class _Wake(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            wake.set()

    try:
        obs = Observer()
        for p in paths:
            obs.schedule(_Wake(), str(p), recursive=False)
        obs.daemon = True
        obs.start()
        return obs
    except OSError:  # e.g. the inotify watch limit reached: scanning still works
        return None


def stop_observer(obs: Any) -> None:
    # watchdog logs a spurious error when its inotify thread is stopped mid-read
    logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
    obs.stop()
    obs.join(2)
