"""A job's log file as the pump writes it: capped in size, fenced once the job is not ours."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["CappedFile"]


class CappedFile:
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
