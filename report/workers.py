"""The build's other processes: charts and job pages made on the machine's other cores.

A build hands its independent heavy pieces (drawing a chart, writing a batch of job pages) to
`Workers.submit`, keeps going with what needs its own state (the sweep pages, the index), and
waits for them before it writes the manifest. With `processes=0` (one core, or asked for) each
piece runs at once in the build's own process: same results, same files.

The pool is made once per process and reused by later builds (`spool report --watch`, a notebook).
Its processes are forked (Linux), so they start with the report's modules already imported;
elsewhere (macOS, Windows) forking a process that has loaded system frameworks is not safe, so
a pool is used there only when asked for, and then spawned. Each piece returns the CPU seconds
it took, so a build's CPU figure counts its workers' too.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from spool.errors import UsageError

__all__ = ["MAX_PROCESSES", "Workers", "default_processes", "get_workers"]

MAX_PROCESSES = 8


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_processes() -> int:
    """Worker processes when none are asked for: one per usable core on Linux (0 on one core).

    None either when this process already runs other threads (a notebook's kernel, a server):
    a forked child gets only the forking thread, and a lock another thread held stays held."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 0
    n = _cpus()
    return 0 if n < 2 else min(n, MAX_PROCESSES)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    t = time.process_time()
    value = fn(*args)
    return value, time.process_time() - t


def _noop() -> int:
    return os.getpid()


class Workers:
    """Runs `fn(*args)` in a worker process, or right here when there are none."""

    def __init__(self, processes: int):
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        if processes > 0:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[tuple[Any, float]]:
        """A future of `(fn(*args), CPU seconds it took)`; an exception in `fn` is raised by `result()`."""
        if self._pool is not None:
            return self._pool.submit(_timed, fn, *args)
        fut: Future[tuple[Any, float]] = Future()
        try:
            fut.set_result(_timed(fn, *args))
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits, as a pool would
            fut.set_exception(exc)
        return fut

    def start(self) -> None:
        """Start every worker now (before the caller starts threads of its own: forking then is unsafe)."""
        if self._pool is not None:
            for f in [self._pool.submit(_noop) for _ in range(self.processes)]:
                f.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_SHARED: dict[int, Workers] = {}


def get_workers(processes: int | None = None) -> Workers:
    """This process's workers for `processes` (None: the ones made already, else
    `default_processes()`), made on first use."""
    if processes is None and _SHARED:  # decided once per process (the pool's own thread counts later)
        return next(iter(_SHARED.values()))
    n = default_processes() if processes is None else processes
    if not 0 <= n <= MAX_PROCESSES:
        raise UsageError(f"--processes must be between 0 and {MAX_PROCESSES}, not {n}")
    if n not in _SHARED:
        for other in list(_SHARED):  # one pool per process: a new size replaces the old one
            _SHARED.pop(other).close()
        _SHARED[n] = Workers(n)
    return _SHARED[n]


@atexit.register
def _close_all() -> None:
    for w in list(_SHARED.values()):
        w.close()
    _SHARED.clear()
