"""Finding pending jobs: file events as wake-ups, a scan of pending/ as the truth.

A network folder sends no events for files other machines write, and inotify drops
events on overflow, so the runner always scans too. Parsed jobs are cached by
(name, inode): a published job file is never rewritten in place, so one read is enough.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core.wake import Wake
from spool.errors import SpoolError
from spool.fsevents import start_observer, stop_observer
from spool.layout import Entry, Layout
from spool.model import MAX_JOB_BYTES, Job, decode_job, job_from_dict
from spool.states import State
from spool.untrusted import NotRegular, TooLarge, read_file

__all__ = ["Candidate", "Scanner", "Watcher"]

_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_SCANDIR_FD = os.scandir in os.supports_fd


#: a scanned entry: (sort key, candidate, worth a look)
_Item = tuple[tuple[int, str], "Candidate", bool]


def _sort_key(pair: tuple[tuple[str, int], _Item]) -> tuple[int, str]:
    return pair[1][0]


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
    """One scandir of pending/ per scan; each job file read once.

    A scan first opens the folder and looks at its own stat: when no name was added, removed or
    renamed since the last scan (same mtime, ctime, size and link count) the last list is
    returned as it is, so an idle runner over 10,000 jobs it cannot run costs next to nothing.
    The open (not a bare stat) makes an NFS client revalidate the folder (close-to-open), as the
    scandir would. The shortcut is taken only for a stamp that was already a second old when it
    was read (two changes within one tick of a coarse clock cannot hide behind it), never while
    an entry is still settling (a file being written in place changes no folder stamp), and at
    least every `FULL_SCAN_EVERY` seconds the folder is read in full anyway.
    """

    FULL_SCAN_EVERY = 30.0

    def __init__(
        self,
        layout: Layout,
        keep: Callable[[Candidate], bool] | None = None,
        env_allow: Collection[str] = (),
    ):
        """`keep` (judged once per job file) drops jobs this runner can never take from the
        list a scan returns: an idle runner then walks none of the 10,000 it cannot run.
        `env_allow`: spool.toml's exceptions to the job `env` rule."""
        self.layout = layout
        self.env_allow = env_allow
        self.keep = keep or (lambda cand: True)
        self._cache: dict[tuple[str, int], _Item] = {}
        self._order: list[tuple[tuple[str, int], _Item]] = []  # kept entries, best first
        self._stamp: tuple[int, ...] | None = None
        self._last: list[Candidate] = []
        self._settling = False
        self._had_unsettled = False
        self._full_at = 0.0
        self.full_scans = 0
        self._job_inodes: dict[str, int] = {}  # job.json's inode, for folder entries

    def scan(self) -> list[Candidate]:
        """Every pending entry worth a look, best first (priority, then id). Do not change it."""
        path = self.layout.state_dir(State.PENDING)
        try:
            fd = os.open(path, os.O_RDONLY | _O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            self._stamp, self._last = None, []
            return self._last
        except OSError:  # a system that cannot open a folder as a file: read it in full each time
            self._last = self._read_folder(path)
            return self._last
        try:
            st = os.fstat(fd)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_nlink)
            mono = time.monotonic()
            if stamp == self._stamp and mono - self._full_at < self.FULL_SCAN_EVERY:
                return self._last
            out = self._read_folder(fd if _SCANDIR_FD else path)
        finally:
            os.close(fd)
        old_enough = time.time() - st.st_mtime > 1.0
        self._stamp = stamp if old_enough and not self._settling else None
        self._full_at = mono
        self.full_scans += 1
        return out

    def _read_folder(self, where: int | Path) -> list[Candidate]:
        cache = self._cache
        seen: dict[tuple[str, int], _Item] = {}
        fresh: list[tuple[tuple[str, int], _Item]] = []
        unsettled: list[Candidate] = []
        with os.scandir(where) as it:  # type: ignore[type-var]
            for de in it:
                try:
                    key = (de.name, de.inode())
                    item = cache.get(key)  # the common case: known, nothing more to look at
                    if item is not None and item[1].entry.is_folder and self._changed_inside(item[1]):
                        item = None  # a folder keeps its inode when its job.json is replaced
                    if item is None:
                        is_dir = de.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if item is None:
                    entry = self.layout.entry_from_name(State.PENDING, de.name, is_dir)
                    if entry is None:
                        continue
                    cand = self._read(entry)
                    if cand.settling:  # read again next scan: it may be half-written
                        unsettled.append(cand)
                        continue
                    item = ((-cand.priority, entry.id), cand, self.keep(cand))
                    fresh.append((key, item))
                seen[key] = item
        self._cache = seen
        if len(self._job_inodes) > len(seen) + 64:  # folders that left pending/ long ago
            here = {it[1].entry.id for it in seen.values()}
            self._job_inodes = {k: v for k, v in self._job_inodes.items() if k in here}
        self._settling = bool(unsettled)
        if fresh:
            order = [(k, it) for k, it in self._order if seen.get(k) is it] + [f for f in fresh if f[1][2]]
            order.sort(key=_sort_key)
        elif len(seen) != len(cache):  # only departures: what is left is still in order
            order = [(k, it) for k, it in self._order if seen.get(k) is it]
        else:
            order = self._order
        if order is not self._order or unsettled or self._had_unsettled:
            self._order = order
            out = [it[1] for _, it in order]
            if unsettled:
                out = sorted(out + unsettled, key=lambda c: (-c.priority, c.entry.id))
            self._last = out
        self._had_unsettled = bool(unsettled)
        return self._last

    def _changed_inside(self, cand: Candidate) -> bool:
        """A requeued job's folder (`pending/<id>/`) whose job.json was replaced since it was read
        (`spool priority` does that): one stat, for folder entries only (few: retries, changes)."""
        try:
            return os.stat(cand.entry.job_file).st_ino != self._job_inodes.get(cand.entry.id)
        except OSError:
            return True

    def _read(self, entry: Entry) -> Candidate:
        if entry.is_folder:
            try:
                self._job_inodes[entry.id] = os.stat(entry.job_file).st_ino
            except OSError:
                self._job_inodes.pop(entry.id, None)
        return self._read_job(entry)

    def _read_job(self, entry: Entry) -> Candidate:
        if not entry.is_job_name:
            why = "not a job file name (jobs are <id>.json; ids use letters, digits, '.', '_', '-')"
            return Candidate(entry, None, why, settling=True)
        try:  # a FIFO is never opened blocking, a file over the limit never read (spool.untrusted)
            raw = read_file(entry.job_file, MAX_JOB_BYTES)
        except NotRegular:
            return Candidate(entry, None, "not a regular file (a pipe, socket or device is never a job)")
        except TooLarge as exc:
            return Candidate(entry, None, f"job file is {exc.size} bytes; the limit is {exc.limit}")
        except OSError as exc:
            return Candidate(entry, None, f"cannot read: {exc.strerror}", settling=True)
        try:
            data: Any = decode_job(raw, entry.path.name)
            return Candidate(entry, job_from_dict(data, entry.path.name, env_allow=self.env_allow))
        except SpoolError as exc:  # it parsed: a duplicate key or an invalid field is final
            return Candidate(entry, None, str(exc))
        except (ValueError, RecursionError) as exc:
            return Candidate(entry, None, f"not valid JSON: {exc}", settling=True)


class _Inotify:
    """Linux inotify read straight from the kernel: a wake-up the moment a name arrives.

    watchdog (used elsewhere) holds every IN_MOVED_FROM for half a second to pair it with its
    IN_MOVED_TO, and its queue is first in, first out: each claim (a rename out of pending/)
    delayed the next arrival's event by up to 0.5 s. Only arrivals wake the runner here
    (created, moved in, closed after writing, an overflow, the folder itself going).
    """

    MASK = 0x8 | 0x80 | 0x100 | 0x400 | 0x800  # CLOSE_WRITE MOVED_TO CREATE DELETE_SELF MOVE_SELF

    def __init__(self, paths: list[Path], event: Wake):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        for p in paths:
            if libc.inotify_add_watch(fd, os.fsencode(p), self.MASK) < 0:
                err = ctypes.get_errno()
                os.close(fd)
                raise OSError(err, f"inotify_add_watch failed for {p}")
        self._stop_r, self._stop_w = os.pipe()
        self.event = event
        self.thread = threading.Thread(target=self._run, name="inotify", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import select

        while True:
            ready, _, _ = select.select([self.fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass
            except OSError:
                return
            self.event.set()

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self.thread.join(2)
        for fd in (self.fd, self._stop_r, self._stop_w):
            os.close(fd)


class Watcher:
    """File events on a folder (inotify on Linux, watchdog elsewhere) as one wake-up `Event`."""

    def __init__(self, paths: list[Path], event: Wake, enabled: bool = True):
        self.event = event
        self._observer: Any = None
        if not enabled:
            return
        if sys.platform.startswith("linux"):
            try:
                self._observer = _Inotify(paths, event)
                return
            except (OSError, AttributeError):  # no inotify (or its watch limit): try watchdog
                self._observer = None
        self._observer = start_observer(paths, event)

    @property
    def active(self) -> bool:
        return self._observer is not None

    def stop(self) -> None:
        if isinstance(self._observer, _Inotify):
            self._observer.stop()
            self._observer = None
        if self._observer is not None:
            stop_observer(self._observer)
            self._observer = None
