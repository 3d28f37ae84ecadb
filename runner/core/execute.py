"""Running one script: a process group, streamed logs, metrics lines, a capped disk footprint.

The child gets its own session (process group) so a timeout or cancel kills everything
it started, and so it cannot signal the runner's group by accident. stdout and stderr
are pumped by one thread per job straight to files; JSON-object lines go to metrics.jsonl too.
"""

from __future__ import annotations

import _thread
import json
import math
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.core.contract import Invocation
from runner.core.descendants import Descendants, joiner
from runner.core.logfile import CappedFile
from runner.core.outcome import MAX_LINE, Outcome, classify
from runner.machine.niceness import lower_io_priority

__all__ = ["Running", "Outcome", "classify"]

CHUNK = 1 << 16
TAIL_BYTES = 4096
FENCE_EVERY = 0.2
DRAIN_SECONDS = 2.0  # after an exit, how long what it started may hold the pipes before it is ended
EXIT_GRACE = 0.05  # after an exit, how long the pipes may stay open before the loop is told
POLL_EXIT = 0.25  # where no fd says the script exited (macOS): how often the pump asks


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
        descendants: Descendants | None = None,
        on_start: Callable[[int], None] | None = None,
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
        self._out = CappedFile(folder / "stdout.log", log_cap, self.fence)
        self._err = CappedFile(folder / "stderr.log", log_cap, self.fence)
        self._metrics = CappedFile(folder / "metrics.jsonl", log_cap, self.fence)
        # warm mode: a Popen look-alike (pid, pipes, poll, wait, returncode), or None for cold.
        # Raises OSError, or ValueError for a NUL or lone surrogate in an argument.
        self.proc: Any = spawn(inv) if spawn is not None else None
        kin = descendants or Descendants("tree")
        cgroup = None
        if self.proc is None:
            # a cold script is born in its cgroup: it steps in itself between fork and exec, so
            # nothing it starts, from its first instruction, can be outside (a move by the
            # runner after the start came too late under load: a helper escaped)
            cgroup = kin.cgroup_for_start()
            try:
                self.proc = subprocess.Popen(
                    inv.argv,
                    cwd=inv.cwd,
                    env=inv.env,
                    start_new_session=True,
                    close_fds=True,
                    stdin=subprocess.PIPE if inv.stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    preexec_fn=joiner(cgroup[1]) if cgroup is not None else None,
                )
            finally:
                if cgroup is not None:
                    os.close(cgroup[1])
        if on_start is not None:  # the reaper lists it first: nothing below comes before that
            on_start(self.proc.pid)
        # at once: whatever the script starts from its first instant is the job's too (a warm
        # job is moved now; a cold one is in already, and the move checks it)
        self.kin = kin.track(self.proc.pid, self._marker, cgroup[0] if cgroup is not None else None)
        self._kin_killed = False
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)
            except OSError:
                pass
            lower_io_priority(self.proc.pid)  # Linux ioprio_set; a no-op elsewhere
        self._drained = threading.Event()
        self._kin_ended = threading.Event()  # set once `leftovers` is known (after `_drained`)
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
        self.kin.start()  # what following it needs (a tree: the script's start time)
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
                self._on_exit()  # its slot may run the next job while what it started is ended
                try:  # the script is gone: so is all it started (`runner.core.descendants`)
                    self.leftovers = self.kin.end()
                finally:
                    self._kin_ended.set()

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
        """Pump until the script has exited and both pipes are closed, or until `DRAIN_SECONDS`
        after its exit (what it left running holds them: `_pump` ends it); meanwhile follow
        what it starts (`kin.look`)."""
        out_fd = self.proc.stdout.fileno()
        pending = b""  # stdout after its last newline
        skipping = False  # inside a line over MAX_LINE: its tail is never a line of its own
        open_pipes = 2
        exited = False
        tell_at: float | None = None  # once exited: when to tell the loop, pipes still open
        drain_until: float | None = None  # once exited: when what it left running is ended
        while open_pipes or not exited:
            now = time.monotonic()
            if drain_until is not None and now >= drain_until:
                break  # our ends of the pipes close after: whatever still writes gets EPIPE
            if not exited and now >= self.kin.next_look:
                self.kin.look()
            due = [t for t in (tell_at, drain_until) if t is not None]
            if not exited:
                if self.kin.next_look < math.inf:  # a cgroup needs no looking
                    due.append(self.kin.next_look)
                # no exit fd, or one that may never fire: a warm job's status socket, read and
                # closed by the loop's own `_reap` first, leaves the epoll set without an event
                due.append(now + POLL_EXIT)
            events = sel.select(max(0.0, min(due) - time.monotonic()) if due else None)
            if tell_at is not None and time.monotonic() >= tell_at:
                # exited, yet something it started holds the pipes: the loop ends the group
                # (`kill_leftovers_if_exited`), and meanwhile the pumping goes on
                tell_at = None
                self._on_exit()
            gone = not exited and self._reap(block=False) is not None  # whoever saw the exit first
            for key, _ in events:
                if key.fd == exit_fd:
                    sel.unregister(key.fd)
                    self._reap(block=True)
                    gone = True
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
            if gone and not exited:
                exited = True
                # usually the pipes close at once: then the loop is woken once, at the end
                tell_at = time.monotonic() + EXIT_GRACE
                drain_until = time.monotonic() + DRAIN_SECONDS
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
        """SIGTERM the whole group, and what the script started outside it, now; SIGKILL them
        at `now + grace` (see `tick`)."""
        if self.kill_deadline is None:
            self.signal_group(signal.SIGTERM)
            self.kin.signal(signal.SIGTERM)
            self.kill_deadline = now + grace

    def tick(self, now: float) -> None:
        if self.kill_deadline is not None and now >= self.kill_deadline:
            self.signal_group(signal.SIGKILL)
            if not self._kin_killed:  # once: after the exit the pump ends what is left
                self._kin_killed = True
                self.kin.signal(signal.SIGKILL)

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
        self._kin_ended.wait(timeout)
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
        self._kin_ended.wait(5)
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
