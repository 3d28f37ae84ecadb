"""A job forked by the warm server, as the runner sees it: enough of `subprocess.Popen` (pid,
pipes, poll, wait, returncode) for `runner.core.execute.Running`, its exit status read from the
server's status socket."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import Any

__all__ = ["WarmProcess"]


class WarmProcess:
    """A forked job as the runner sees it: enough of `subprocess.Popen` for `Running`."""

    def __init__(self, pid: int, stdin: Any, stdout: Any, stderr: Any, status_fd: int, rest: bytes):
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self.lost_status = False
        self._status_fd = status_fd
        self._buf = rest
        import threading

        self._lock = threading.Lock()
        self._parse()

    def exit_fd(self) -> int:
        return self._status_fd

    def _parse(self) -> bool:
        if b"\n" not in self._buf:
            return False
        line = self._buf.split(b"\n", 1)[0].decode(errors="replace")
        if line.startswith("exit "):
            self.returncode = int(line.split()[1])
        else:
            self.returncode = 255
        self._close_status()
        return True

    def _close_status(self) -> None:
        if self._status_fd >= 0:
            try:
                os.close(self._status_fd)
            except OSError:
                pass
            self._status_fd = -1

    def _read_some(self, timeout: float | None) -> bool:
        """Read what the server sent; True once the exit status is known."""
        if self.returncode is not None:
            return True
        if self._status_fd < 0:
            return self.returncode is not None
        ready, _, _ = select.select([self._status_fd], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self._status_fd, 256)
        if chunk:
            self._buf += chunk
            return self._parse()
        # the server went away without a status: wait for the job itself to be gone
        self._close_status()
        self._wait_gone(None)
        self.lost_status = True
        self.returncode = -signal.SIGKILL
        return True

    def _wait_gone(self, timeout: float | None) -> None:
        end = None if timeout is None else time.monotonic() + timeout
        while end is None or time.monotonic() < end:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                return
            time.sleep(0.05)

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._read_some(0)
        finally:
            self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if end is None else max(0.0, end - time.monotonic())
            if not self._lock.acquire(timeout=-1 if left is None else left):
                raise subprocess.TimeoutExpired("warm job", timeout or 0)
            try:
                if self._read_some(left):
                    break
            finally:
                self._lock.release()
            if end is not None and time.monotonic() >= end and self.returncode is None:
                raise subprocess.TimeoutExpired("warm job", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
