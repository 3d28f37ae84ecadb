"""Leases judged by the spool's clock, never by comparing two machines' clocks.

A holder renews its lease by writing into `lease` in the job folder; the file server
stamps the mtime. Anyone judging expiry writes into a clock file of its own on the
same spool and compares the two mtimes (`spool.clock.SpoolClock`): both come from the one
clock that matters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from spool.layout import CLAIM_FILE, JOB_FILE, Entry, Layout
from spool.protocol import read_claim

__all__ = ["renew", "lease_age", "Expired", "find_expired", "LEASE_FILE"]

LEASE_FILE = "lease"


def renew(folder: Path, beat: int) -> bool:
    """Write into the lease file (the write moves its mtime); False if the folder is gone."""
    try:
        fd = os.open(folder / LEASE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot renew this time (e.g. no inode left); the folder is still ours
    try:
        os.write(fd, str(beat).encode())
    except OSError:
        pass  # a full disk: the truncating open has moved the mtime already, which is the lease
    finally:
        os.close(fd)
    return True


def lease_age(folder: Path, spool_now: float) -> float | None:
    """Seconds since the lease, the claim or the folder itself last moved (the newest counts).

    Never job.json's time: that is when the user wrote the job, maybe hours before the claim.
    """
    newest = None
    for path in (folder / LEASE_FILE, folder / CLAIM_FILE, folder):
        try:
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
    return None if newest is None else spool_now - newest


@dataclass(frozen=True)
class Expired:
    entry: Entry
    age: float
    empty: bool  # a leftover folder with no job.json (a lost or crashed claim)
    mid_claim: bool = False  # claim.json is not (yet) this folder's: a claim or take-over in progress


def find_expired(layout: Layout, spool_now: float, lease_seconds: float, mine: set[str]) -> list[Expired]:
    """Claimed folders (not ours) whose lease has not moved for `lease_seconds`."""
    from spool.states import State

    out = []
    for entry in layout.entries(State.CLAIMED):
        if entry.path.name in mine:
            continue
        age = lease_age(entry.path, spool_now)
        if age is not None and age > lease_seconds:
            mid = (read_claim(entry.path) or {}).get("token") != entry.token
            out.append(Expired(entry, age, not (entry.path / JOB_FILE).exists(), mid))
    return out
