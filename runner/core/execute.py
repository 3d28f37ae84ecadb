"""Running one script: a process group, streamed logs, metrics lines, a capped disk footprint.

The child gets its own session (process group) so a timeout or cancel kills everything
it started, and so it cannot signal the runner's group by accident. stdout and stderr
are pumped by one thread per job straight to files; JSON-object lines go to metrics.jsonl too.
"""

from __future__ import annotations

import _thread
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runner.core import leftovers
from runner.core.contract import Invocation
from runner.machine.niceness import lower_io_priority

__all__ = ["Running", "Outcome", "classify"]

CHUNK = 1 << 16
MAX_LINE = 1 << 20
TAIL_BYTES = 4096
FENCE_EVERY = 0.2
DRAIN_SECONDS = 2.0  # after an exit, how long what it started may hold the pipes before it is ended
EXIT_GRACE = 0.05  # after an exit, how long the pipes may stay open before the loop is told


@dataclass
class Outcome:
    """What a finished process left: its exit code, the last JSON object, the stderr tail."""

    exit_code: int | None
    result: dict[str, Any] | None
    metrics_count: int
    stderr_tail: str
    stdout_truncated: bool
    stderr_truncated: bool
    #: the last JSON-object-like line was over MAX_LINE: the result is unknown, never an earlier line
    overlong_result: bool = False
    rusage: Any = None  # `wait4`'s resource use of the script (None: a warm job)
    wall: float = 0.0  # seconds from the start to the exit
    leftovers: list[dict[str, Any]] | None = None  # what the job left running, killed at its end


def classify(
    o: Outcome, *, timed_out: bool = False, cancelled: bool = False, timeout: float | None = None
) -> tuple[str, dict[str, str] | None]:
    """`("done", None)` or `("failed", {"kind", "message"})` by the script contract."""
    if cancelled:
        return "failed", {"kind": "cancelled", "message": "cancelled while running"}
    if timed_out:
        return "failed", {"kind": "timeout", "message": f"stopped after the {timeout:g} s timeout"}
    if o.exit_code != 0:
        if o.exit_code is not None and o.exit_code < 0:
            try:
                name = signal.Signals(-o.exit_code).name
            except ValueError:
                name = f"signal {-o.exit_code}"
            return "failed", {"kind": "exit", "message": f"killed by {name}"}
        return "failed", {"kind": "exit", "message": f"exit code {o.exit_code}"}
    if o.overlong_result:
        return "failed", {
            "kind": "result_too_long",
            "message": f"the script's last JSON line is over {MAX_LINE} bytes, the most a result may be;"
            " it is in stdout.log, and no earlier line stands in for it",
        }
    if o.result is None:
        return "failed", {"kind": "no_result", "message": "the script printed no JSON object on stdout"}
    status = o.result.get("status")
    try:
        code = int(status) if status is not None and not isinstance(status, bool) else None
    except (TypeError, ValueError):
        code = None
    if code is not None and code >= 400:
        msg = o.result.get("message") or o.result.get("error") or f"status {code}"
        return "failed", {"kind": "status", "message": f"status {code}: {msg}"}
    return "done", None


class _CappedFile:
    """A log file that stops growing at `cap` bytes, and stops writing once fenced.

    Created by the pump thread (`create`), not by the loop: a file create costs the loop's
    critical path between two jobs (0.3-0.7 ms on some disks). One that cannot be created
    (no inode left) drops what it is given, and says how much in `dropped`."""

    def __init__(self, path: Path, cap: int, fence: Callable[[], bool]):
        self.path = path
        self.f: IO[bytes] | None = None
        self.cap, self.size, self.dropped = cap, 0, 0
        self.fence = fence

    def create(self) -> None:
        # Not O_APPEND: the pump is the file's only writer, and libsmbclient (smbnetfs, gvfs)
        # cannot open a file for appending over SMB3 (ENXIO, then EIO from the share for seconds).
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            self.f = open(fd, "wb", buffering=0)  # noqa: SIM115
        except OSError:
            self.f = None

    def write(self, data: bytes) -> None:
        room = self.cap - self.size
        if self.f is not None and room > 0 and self.fence():
            part = data[:room]
            try:
                self.f.write(part)
            except OSError:  # e.g. the disk is full: lose these bytes, never the pump (or the job)
                self.dropped += len(data)
                return
            self.size += len(part)
            self.dropped += len(data) - len(part)
        else:
            self.dropped += len(data)

    def close(self) -> None:
        if self.f is None:
            return
        try:
            if self.dropped and self.fence():
                self.f.write(f"\n[housespool: {self.dropped} more bytes dropped at the log cap]\n".encode())
        except OSError:
            pass
        self.f.close()


class Running:
    """One started script. The runner's loop polls it; nothing here blocks the loop."""

    def __init__(
        self,
        inv: Invocation,
        folder: Path,
        *,
        log_cap: int,
        still_ours: Callable[[], bool],
        nice: int = 0,
        on_exit: Callable[[], None] | None = None,
        spawn: Callable[[Invocation], Any] | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.folder = folder
        self._on_exit = on_exit or (lambda: None)
        self._on_record = on_record  # each metrics record, on the pump thread (the stopper's hook)
        self._still_ours = still_ours
        self._last_fence = 0.0
        self._fenced = False
        self.started = time.monotonic()
        self.rusage: Any = None  # `wait4`'s resource use, once reaped
        self.ended: float | None = None  # monotonic time of the exit, once reaped
        self._reap_lock = threading.Lock()
        self.kill_deadline: float | None = None
        self.result: dict[str, Any] | None = None
        self.overlong_result = False
        self.metrics_count = 0
        self._tail = b""
        self.leftovers: list[dict[str, Any]] = []
        out_dir = inv.env.get("SPOOL_OUTPUT_DIR") if inv.env else None
        self._marker = f"SPOOL_OUTPUT_DIR={out_dir}".encode() if out_dir else None
        self._out = _CappedFile(folder / "stdout.log", log_cap, self.fence)
        self._err = _CappedFile(folder / "stderr.log", log_cap, self.fence)
        self._metrics = _CappedFile(folder / "metrics.jsonl", log_cap, self.fence)
        # warm mode: a Popen look-alike (pid, pipes, poll, wait, returncode), or None for cold.
        # Raises OSError, or ValueError for a NUL or lone surrogate in an argument.
        self.proc: Any = spawn(inv) if spawn is not None else None
        if self.proc is None:
            self.proc = subprocess.Popen(
                inv.argv,
                cwd=inv.cwd,
                env=inv.env,
                start_new_session=True,
                close_fds=True,
                stdin=subprocess.PIPE if inv.stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)
            except OSError:
                pass
            lower_io_priority(self.proc.pid)  # Linux ioprio_set; a no-op elsewhere
        self._drained = threading.Event()
        self._threads: list[threading.Thread] = []
        if inv.stdin is not None:
            self._threads.append(threading.Thread(target=self._feed, args=(inv.stdin,), daemon=True))
            self._threads[0].start()
        # one thread per job pumps both pipes and reaps the process. A bare thread: Thread.start
        # waits until the new thread runs, a context switch (milliseconds on a busy machine)
        # the loop need not wait for; `_drained` says when it is done.
        _thread.start_new_thread(self._pump, ())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fence(self) -> bool:
        """True while the job folder is still ours (checked at most every 0.2 s)."""
        if self._fenced:
            return False
        now = time.monotonic()
        if now - self._last_fence >= FENCE_EVERY:
            self._last_fence = now
            if not self._still_ours():
                self._fenced = True
                return False
        return True

    def _feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _exit_fd(self) -> int | None:
        """An fd that turns readable when the process exits (a pidfd; a warm job's status
        socket), so the loop hears of the exit even while a grandchild holds the pipes."""
        own = getattr(self.proc, "exit_fd", None)
        if callable(own):
            fd = int(own())
            return fd if fd >= 0 else None
        try:
            return os.pidfd_open(self.proc.pid)  # type: ignore[attr-defined,no-any-return]
        except (AttributeError, OSError):  # not Linux >= 5.3: EOF on the pipes, or the loop's tick
            return None

    def _pump(self) -> None:
        """Stream stdout and stderr to their files until both close; reap; tell the loop."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for f in (self._out, self._err, self._metrics):  # the pipes hold the output meanwhile
            f.create()
        exit_fd = self._exit_fd()
        sel = selectors.DefaultSelector()
        try:
            exit_fd = self._watch(sel, exit_fd)
            self._pump_until_closed(sel, exit_fd)
        finally:  # whatever happened above, the loop must learn that this job is over
            try:
                sel.close()
                if exit_fd is not None and not callable(getattr(self.proc, "exit_fd", None)):
                    os.close(exit_fd)
                self.proc.stdout.close()
                self.proc.stderr.close()
                self._reap(block=True)
            finally:
                self._drained.set()
                self._on_exit()

    def _watch(self, sel: selectors.BaseSelector, exit_fd: int | None) -> int | None:
        """Register both pipes and the exit fd; returns the exit fd, None if it cannot be watched."""
        sel.register(self.proc.stdout.fileno(), selectors.EVENT_READ)
        sel.register(self.proc.stderr.fileno(), selectors.EVENT_READ)
        if exit_fd is not None:
            try:
                sel.register(exit_fd, selectors.EVENT_READ)
            except (OSError, ValueError):  # a warm job's status, read and closed already
                return None
        return exit_fd

    def _pump_until_closed(self, sel: selectors.BaseSelector, exit_fd: int | None) -> None:
        out_fd = self.proc.stdout.fileno()
        pending = b""  # stdout after its last newline
        skipping = False  # inside a line over MAX_LINE: its tail is never a line of its own
        open_pipes = 2
        tell_at: float | None = None  # once exited: when to tell the loop, pipes still open
        drain_until: float | None = None  # once exited: when what it left running is ended
        while open_pipes:
            now = time.monotonic()
            if drain_until is not None and now >= drain_until:
                self.leftovers = leftovers.end(self.proc.pid, self._marker)
                break  # our ends of the pipes close after: whatever still writes gets EPIPE
            waits = [t - now for t in (tell_at, drain_until) if t is not None]
            events = sel.select(max(0.0, min(waits)) if waits else None)
            if tell_at is not None and time.monotonic() >= tell_at:
                # exited, yet something it started holds the pipes: the loop ends the group
                # (`kill_leftovers_if_exited`), and meanwhile the pumping goes on
                tell_at = None
                self._on_exit()
            for key, _ in events:
                if key.fd == exit_fd:
                    sel.unregister(key.fd)
                    self._reap(block=True)
                    # usually the pipes close at once: then the loop is woken once, at the end
                    tell_at = time.monotonic() + EXIT_GRACE
                    drain_until = time.monotonic() + DRAIN_SECONDS
                    continue
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    open_pipes -= 1
                elif key.fd == out_fd:
                    pending, skipping = self._stdout(pending, skipping, chunk)
                else:
                    self._err.write(chunk)
                    self._tail = (self._tail + chunk)[-TAIL_BYTES:]
        if pending and not skipping:
            self._line(pending)

    def _stdout(self, pending: bytes, skipping: bool, chunk: bytes) -> tuple[bytes, bool]:
        """Log a stdout chunk and read each whole line in it: (what follows the last newline,
        whether it is the rest of an overlong line)."""
        self._out.write(chunk)
        if skipping:  # the rest of an overlong line: up to its newline, not a line
            nl = chunk.find(b"\n")
            if nl < 0:
                return pending, True
            chunk, skipping = chunk[nl + 1 :], False
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            self._line(line)
        if len(pending) > MAX_LINE:
            self._overlong(pending)
            return b"", True
        return pending, skipping

    def _overlong(self, head: bytes) -> None:
        """A stdout line over MAX_LINE: not kept as a record. If it began like a JSON object it
        may have been the result: until a later record comes, the job cannot end "done" with an
        earlier line standing in for it (`classify` fails it, kind `result_too_long`)."""
        if head.lstrip().startswith(b"{"):
            self.overlong_result = True

    def _line(self, line: bytes) -> None:
        if len(line) > MAX_LINE:
            self._overlong(line)
            return
        line = line.strip()
        if not (line.startswith(b"{") and line.endswith(b"}")):
            return
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return
        if isinstance(obj, dict):
            self.result = obj
            self.overlong_result = False
            self.metrics_count += 1
            self._metrics.write(line + b"\n")
            if self._on_record is not None:
                self._on_record(obj)

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, now: float, grace: float = 3.0) -> None:
        """SIGTERM the whole group now, SIGKILL it at `now + grace` (see `tick`)."""
        if self.kill_deadline is None:
            self.signal_group(signal.SIGTERM)
            self.kill_deadline = now + grace

    def tick(self, now: float) -> None:
        if self.kill_deadline is not None and now >= self.kill_deadline:
            self.signal_group(signal.SIGKILL)

    def kill_leftovers_if_exited(self) -> bool:
        """True once the process has exited and its output is fully drained. Not a mere query:
        the first time it finds the script's own process gone, it SIGKILLs the rest of its
        process group (whatever the script left running would hold the pipes open)."""
        if self._reap(block=False) is None:
            return False
        if self.kill_deadline is None:
            # the leader exited; its children may hold the pipes open: end the group now
            self.signal_group(signal.SIGKILL)
        return self._drained.is_set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until done (tests and shutdown only; the loop uses `kill_leftovers_if_exited`)."""
        self.proc.wait(timeout)
        self._drained.wait(timeout)
        for t in self._threads:
            t.join(timeout)

    def _reap(self, *, block: bool) -> int | None:
        """Reap the script by `wait4`, keeping its rusage (CPU, peak memory) in `rusage`: whoever
        reaps first, the pump or `done`, does it this way. A warm job is not our child: its pool
        reaps it. The exit code, None while it runs."""
        proc = self.proc
        with self._reap_lock:
            if not isinstance(proc, subprocess.Popen):
                code = proc.wait() if block else proc.poll()
            elif proc.returncode is None:
                try:
                    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
                except ChildProcessError:  # reaped by Popen's own wait (tests, shutdown): no rusage
                    pid, status, usage = -1, 0, None
                if pid == 0:
                    return None
                if pid > 0:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    self.rusage = usage
                code = proc.returncode if pid > 0 else (proc.wait() if block else proc.poll())
            else:
                code = proc.returncode
            if code is not None and self.ended is None:
                self.ended = time.monotonic()
        return code

    def outcome(self) -> Outcome:
        self._drained.wait(5)
        for t in self._threads:
            t.join(5)
        for f in (self._out, self._err, self._metrics):
            f.close()
        return Outcome(
            self.proc.returncode,
            None if self.overlong_result else self.result,  # never an earlier line for the result
            self.metrics_count,
            self._tail.decode("utf-8", "replace"),
            self._out.dropped > 0,
            self._err.dropped > 0,
            self.overlong_result,
            self.rusage,
            (self.ended or time.monotonic()) - self.started,
            self.leftovers or None,
        )
