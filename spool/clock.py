"""The spool's clock: the one time every machine on a shared folder agrees on.

Machines' own clocks disagree (a laptop minutes ahead, a desktop without NTP), so nothing that
judges a file's age on the spool (a lease, a heartbeat, a settling job file) compares it with
this machine's clock. It writes into a clock file of its own on the spool instead and reads
back the mtime the file server stamped: both times then come from the one clock that matters.
"""

from __future__ import annotations

import os
import time

from spool.layout import Layout

__all__ = ["SpoolClock", "spool_now"]


class SpoolClock:
    """`now()` is the spool's time: the mtime of `runners/.clock-<owner>`, written just now."""

    def __init__(self, layout: Layout, owner: str):
        self.path = layout.runners / f".clock-{owner}"

    def now(self) -> float:
        """The spool's time; OSError when the spool will not take the write."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"t")
            return os.fstat(fd).st_mtime
        finally:
            os.close(fd)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


def spool_now(layout: Layout) -> float:
    """One reading for a process that reads the clock once (a CLI verb, a request): its clock
    file goes again at once. This machine's time when the spool will not take a write (a
    read-only share can still be looked at)."""
    clock = SpoolClock(layout, f"cli-{os.getpid()}")
    try:
        return clock.now()
    except OSError:
        return time.time()
    finally:
        clock.remove()
