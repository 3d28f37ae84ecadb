"""Leases judged by the spool's clock, never by comparing two machines' clocks.

A holder renews its lease by writing into `lease` in the job folder; the file server
stamps the mtime. Anyone judging expiry writes into a clock file of its own on the
same spool and compares the two mtimes: both come from the one clock that matters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from spool.layout import CLAIM_FILE, JOB_FILE, Entry, Layout

__all__ = ["SpoolClock", "renew", "lease_age", "Expired", "find_expired", "LEASE_FILE"]

LEASE_FILE = "lease"


class SpoolClock:
    """`now()` is the spool's time: the mtime of a file we just wrote there."""

    def __init__(self, layout: Layout, runner: str):
        self.path = layout.runners / f".clock-{runner}"

    def now(self) -> float:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"t")
            return os.fstat(fd).st_mtime
        finally:
            os.close(fd)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def renew(folder: Path, beat: int) -> bool:
    """Write into the lease file (the write moves its mtime); False if the folder is gone."""
    try:
        fd = os.open(folder / LEASE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        return False
    try:
        os.write(fd, str(beat).encode())
    finally:
        os.close(fd)
    return True


def lease_age(folder: Path, spool_now: float) -> float | None:
    """Seconds since the lease (or, before the first renewal, the claim) last moved."""
    for name in (LEASE_FILE, CLAIM_FILE, JOB_FILE):
        try:
            return spool_now - os.stat(folder / name).st_mtime
        except FileNotFoundError:
            continue
    try:
        return spool_now - os.stat(folder).st_mtime
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Expired:
    entry: Entry
    age: float
    empty: bool  # a leftover folder with no job.json (a lost or crashed claim)


def find_expired(layout: Layout, spool_now: float, lease_seconds: float, mine: set[str]) -> list[Expired]:
    """Claimed folders (not ours) whose lease has not moved for `lease_seconds`."""
    from spool.states import State

    out = []
    for entry in layout.entries(State.CLAIMED):
        if entry.path.name in mine:
            continue
        age = lease_age(entry.path, spool_now)
        if age is not None and age > lease_seconds:
            out.append(Expired(entry, age, not (entry.path / JOB_FILE).exists()))
    return out
