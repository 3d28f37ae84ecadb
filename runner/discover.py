"""Finding pending jobs: file events as wake-ups, a scan of pending/ as the truth.

A network folder sends no events for files other machines write, and inotify drops
events on overflow, so the runner always scans too. Parsed jobs are cached by
(name, inode): a published job file is never rewritten in place, so one read is enough.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spool.errors import SpoolError
from spool.layout import Entry, Layout
from spool.model import Job, job_from_dict
from spool.states import State

__all__ = ["Candidate", "Scanner", "Watcher"]


@dataclass(frozen=True)
class Candidate:
    """A pending entry: a parsed job, or the reason it is not one yet (or never will be)."""

    entry: Entry
    job: Job | None
    problem: str | None = None
    settling: bool = False  # unparsable for now: maybe still being written

    @property
    def priority(self) -> int:
        return self.job.priority if self.job else 0


class Scanner:
    """One scandir of pending/ per scan; each job file read once."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self._cache: dict[tuple[str, int], Candidate] = {}

    def scan(self) -> list[Candidate]:
        """Every pending entry, best first (priority, then id)."""
        out: list[Candidate] = []
        seen: dict[tuple[str, int], Candidate] = {}
        try:
            it = os.scandir(self.layout.state_dir(State.PENDING))
        except FileNotFoundError:
            return out
        with it:
            for de in it:
                try:
                    is_dir = de.is_dir(follow_symlinks=False)
                    key = (de.name, de.inode())
                except OSError:
                    continue
                entry = self.layout.entry_from_name(State.PENDING, de.name, is_dir)
                if entry is None:
                    continue
                cand = self._cache.get(key)
                if cand is None:
                    cand = self._read(entry)
                if not cand.settling:
                    seen[key] = cand
                out.append(cand)
        self._cache = seen
        out.sort(key=lambda c: (-c.priority, c.entry.id))
        return out

    @staticmethod
    def _read(entry: Entry) -> Candidate:
        if not entry.is_job_name:
            why = "not a job file name (jobs are <id>.json; ids use letters, digits, '.', '_', '-')"
            return Candidate(entry, None, why, settling=True)
        try:
            raw = entry.job_file.read_bytes()
        except OSError as exc:
            return Candidate(entry, None, f"cannot read: {exc.strerror}", settling=True)
        try:
            data: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return Candidate(entry, None, f"not valid JSON: {exc}", settling=True)
        try:
            return Candidate(entry, job_from_dict(data, entry.path.name))
        except SpoolError as exc:
            return Candidate(entry, None, str(exc))


class Watcher:
    """watchdog events on a folder, turned into one wake-up `Event`."""

    def __init__(self, paths: list[Path], event: threading.Event, enabled: bool = True):
        self.event = event
        self._observer: Any = None
        if not enabled:
            return
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a core dependency
            return

        wake = event

        class _Wake(FileSystemEventHandler):
            def on_any_event(self, ev: Any) -> None:
                wake.set()

        try:
            obs = Observer()
            for p in paths:
                obs.schedule(_Wake(), str(p), recursive=False)
            obs.daemon = True
            obs.start()
            self._observer = obs
        except OSError:  # e.g. inotify watch limit reached: scanning still works
            self._observer = None

    @property
    def active(self) -> bool:
        return self._observer is not None

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2)
            self._observer = None
