"""The runner loop's wake-up: an `Event` that a signal handler may set.

`threading.Event.set` takes the event's lock. A SIGTERM handler that called it while the main
thread was inside `Event.wait` or `clear` (holding that same, non-reentrant lock: Python runs
the handler in the main thread, between two bytecodes) waited for itself for ever: a runner
told to stop twice could hang instead of exiting. Here the flag is a byte in a pipe: `set` is
one non-blocking `os.write`, which takes no lock, so the stop handler, file-event threads and
the probe may all call it at any instant.
"""

from __future__ import annotations

import os
import select
import weakref

__all__ = ["Wake"]


class Wake:
    """Set, clear, wait: `threading.Event`'s meaning, safe to set from a signal handler."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()  # not inherited by children (PEP 446)
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._poll = select.poll()
        self._poll.register(self._r, select.POLLIN)
        self._closer = weakref.finalize(self, _close, self._r, self._w)

    def set(self) -> None:
        try:
            os.write(self._w, b"!")
        except BlockingIOError:  # the pipe is full: it is set already
            pass
        except OSError:  # closed (the runner is gone): nothing waits any more
            pass

    def is_set(self) -> bool:
        return self.wait(0)

    def clear(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except OSError:  # BlockingIOError: drained; EBADF: closed
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """True once set (at once if it is), False after `timeout` seconds without."""
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        try:
            return bool(self._poll.poll(ms))  # poll, not select: any fd number (FD_SETSIZE)
        except (OSError, ValueError):  # closed under us
            return False

    def close(self) -> None:
        self._closer()


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
