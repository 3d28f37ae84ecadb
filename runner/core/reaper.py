"""A dead runner's scripts die with it: a small watcher process per runner.

Scripts run in their own sessions (so the runner can signal a script and all it started, and a
terminal's ^C reaches the runner only). A runner killed with SIGKILL, or by the OOM killer,
would leave them running: its lease then expires, another runner starts the job again, and two
copies train on one GPU and write into one `outputs/`. So each runner starts a reaper: a tiny
process (stdlib only, run by path, in a session of its own) that reads "+<pgid>" and "-<pgid>"
lines from a pipe as the runner's scripts start and end. The pipe closes when the runner dies,
however it dies (the kernel closes its end); the reaper then sends SIGTERM to every group still
listed, SIGKILL to what is left after `grace` seconds, and exits. A runner that exits cleanly
has no script left listed: its reaper just exits. Linux and macOS alike (no prctl needed).
A job run in a cgroup of its own (`runner.core.descendants`) is listed by that too ("+/<path>",
"-/<path>"): its members get the same SIGTERM, and `cgroup.kill` after the grace, so a helper
that left the script's session dies with the runner as well.

Not covered: a runner killed in the instant between starting a script and listing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable

__all__ = ["Reaper"]

GRACE = 5.0  # seconds between the SIGTERM and the SIGKILL of an orphaned script's group
_STOP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)  # the watcher ignores these


class Reaper:
    """The runner's side: start the watcher on first use, list and unlist process groups.

    Never blocks and never raises: a watcher that cannot start, or stops reading, only loses
    the protection (and says so once through `log`)."""

    def __init__(self, log: Callable[[str], None], *, grace: float = GRACE):
        self._log = log
        self._grace = grace
        self._fd: int | None = None
        self._closer: weakref.finalize | None = None  # a runner dropped unclosed (tests) lets go too
        self.proc: subprocess.Popen[bytes] | None = None
        self._broken = False

    def add(self, pgid: int) -> None:
        self._send(b"+%d\n" % pgid)

    def remove(self, pgid: int) -> None:
        if self._fd is not None:
            self._send(b"-%d\n" % pgid)

    def add_cgroup(self, path: str) -> None:
        if path.startswith("/") and "\n" not in path:
            self._send(b"+" + os.fsencode(path) + b"\n")

    def remove_cgroup(self, path: str) -> None:
        if self._fd is not None and path.startswith("/") and "\n" not in path:
            self._send(b"-" + os.fsencode(path) + b"\n")

    def close(self) -> None:
        """The runner is done: with nothing listed, the watcher exits at once."""
        self._let_go()
        if self.proc is not None:
            try:
                self.proc.wait(self._grace + 2)
            except subprocess.TimeoutExpired:
                pass

    def _send(self, line: bytes) -> None:
        if self._broken:
            return
        if self._fd is None and not self._start():
            return
        assert self._fd is not None
        try:
            if os.write(self._fd, line) == len(line):
                return
        except OSError:
            pass
        self._give_up("it stopped reading")

    def _start(self) -> bool:
        r, w = os.pipe()
        # born with the stop signals blocked (a mask survives fork and exec): a SIGTERM to every
        # process at once (Slurm's scancel) landing while the watcher's interpreter starts, before
        # it ignores them, would kill it; blocked, the signal waits and its SIG_IGN discards it
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(self._grace)],
                stdin=r,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of the runner's group: a ^C or killpg aimed there
                close_fds=True,
            )
        except OSError as exc:
            os.close(w)
            self._give_up(f"it could not start ({exc})")
            return False
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            os.close(r)
        os.set_blocking(w, False)  # a stopped watcher must never stall the runner's loop
        self._fd = w
        self._closer = weakref.finalize(self, os.close, w)
        return True

    def _let_go(self) -> None:
        if self._closer is not None:
            self._closer()  # closes the pipe, once
        self._fd = None

    def _give_up(self, why: str) -> None:
        self._broken = True
        self._let_go()
        self._log(f"warning: the reaper is off ({why}): if this runner is killed, its scripts run on")


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pgids: set[int], sig: int) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass


def _members(cgroup: bytes) -> list[int]:
    try:
        with open(cgroup + b"/cgroup.procs", "rb") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _signal_cgroups(cgroups: set[bytes], sig: int) -> None:
    for cgroup in cgroups:
        if sig == signal.SIGKILL:
            try:
                with open(cgroup + b"/cgroup.kill", "wb", buffering=0) as f:
                    f.write(b"1")  # Linux >= 5.14: all of it at once, a fork under way too
                continue
            except OSError:
                pass
        for pid in _members(cgroup):
            try:
                os.kill(pid, sig)
            except OSError:
                pass


def _main(argv: list[str]) -> None:
    """The watcher: list groups from stdin until it closes, then end the ones still listed."""
    grace = float(argv[0]) if argv else GRACE
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # only the pipe's end says the runner is gone
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked from birth (see `_start`)
    groups: set[int] = set()
    cgroups: set[bytes] = set()
    pending = b""
    while True:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line[:1] == b"+" and line[1:].isdigit():
                groups.add(int(line[1:]))
            elif line[:1] == b"-" and line[1:].isdigit():
                groups.discard(int(line[1:]))
            elif line[:2] == b"+/":
                cgroups.add(line[1:])
            elif line[:2] == b"-/":
                cgroups.discard(line[1:])
    groups = {g for g in groups if g > 1}
    cgroups = {c for c in cgroups if _members(c)}
    if not groups and not cgroups:
        return
    _signal(groups, signal.SIGTERM)
    _signal_cgroups(cgroups, signal.SIGTERM)
    end = time.monotonic() + grace
    while (groups or cgroups) and time.monotonic() < end:
        time.sleep(0.05)
        groups = {g for g in groups if _alive(g)}
        cgroups = {c for c in cgroups if _members(c)}
    _signal(groups, signal.SIGKILL)
    _signal_cgroups(cgroups, signal.SIGKILL)


if __name__ == "__main__":
    _main(sys.argv[1:])
