"""An adaptive sweep's slots: `sweeps/<id>.slots/<n>.json`, one per proposed point, never rewritten.

Slot n is taken by an exclusive create of its file (`spool.protocol.publish_new`: written
whole under a temp name, then published under a name that cannot already exist), so of two
proposers computing slot n at once exactly one wins and the other sees the slot taken. The
file records the point and what it was computed from; job `<id>-<n>` is published from it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from spool.errors import StorageError
from spool.jobs import utc_now
from spool.layout import Layout, is_ignored_name
from spool.protocol import FsOps, json_lines, publish_new
from spool.sweeps.bayes import Proposal
from spool.untrusted import read_json

__all__ = ["slots_dir", "stop_path", "read_slots", "live_count", "slot_record", "take_slot"]

_DEFAULT_FS = FsOps()


def slots_dir(layout: Layout, sweep_id: str) -> Path:
    return layout.sweeps / f"{sweep_id}.slots"


def stop_path(layout: Layout, sweep_id: str) -> Path:
    """A file whose presence closes the sweep to new proposals (`spool sweep --stop ID`)."""
    return layout.sweeps / f"{sweep_id}.stop"


_seen: dict[str, dict[str, Any]] = {}  # slot files never change: each is read once per process


def read_slots(layout: Layout, sweep_id: str) -> dict[int, dict[str, Any]]:
    """Every taken slot, by number. A slot file is whole by construction; one that does not
    parse (edited by hand, a damaged disk) still counts as taken, with no point."""
    out: dict[int, dict[str, Any]] = {}
    try:
        it = os.scandir(slots_dir(layout, sweep_id))
    except FileNotFoundError:
        return out
    with it:
        for de in it:
            name = de.name
            if is_ignored_name(name) or not name.endswith(".json") or not name[:-5].isdigit():
                continue
            rec = _seen.get(de.path)
            if rec is None:
                try:
                    rec = read_json(de.path)
                except (OSError, ValueError, RecursionError):
                    rec = None
                if not isinstance(rec, dict):  # being written (a share without links), or torn
                    try:
                        mtime = os.stat(de.path).st_mtime
                    except OSError:
                        continue
                    rec = {"point": None, "unreadable": True, "mtime": mtime}
                else:
                    _seen[de.path] = rec
            out[int(name[:-5])] = rec
    return out


def live_count(layout: Layout, slots: dict[int, dict[str, Any]], settle_seconds: float) -> int:
    """Slots that count toward run_cap: all but the void ones, files still unreadable after the
    settle time (on a share without hard links a slot file is created, then written: a proposer
    killed between the two leaves an empty file for good; its job never existed)."""
    unread = [r["mtime"] for r in slots.values() if r.get("unreadable")]
    if not unread:
        return len(slots)
    from spool.clock import spool_now

    now = spool_now(layout)
    return len(slots) - sum(1 for m in unread if now - m > settle_seconds)


def slot_record(slot: int, point: dict[str, Any], proposal: Proposal | None, seed: int = 0) -> dict[str, Any]:
    """What a slot file holds: the point, how it was chosen and from which results."""
    rec: dict[str, Any] = {"slot": slot, "point": point}
    if proposal is not None:
        rec.update(
            method=proposal.method,
            sample_seed=seed,
            observed=proposal.observed,
            standins=proposal.standins,
            predicted={"mean": proposal.mean, "std": proposal.std, "acquisition": proposal.acquisition},
        )
    rec.update(by=f"{socket.gethostname()}:{os.getpid()}", at=utc_now())
    return rec


def take_slot(
    layout: Layout, sweep_id: str, slot: int, record: dict[str, Any], *, fs: FsOps = _DEFAULT_FS
) -> bool:
    """Take slot `slot` with `record`; False if another proposer took it first (normal)."""
    folder = slots_dir(layout, sweep_id)
    try:
        fs.mkdir(folder)
    except FileExistsError:
        pass
    except OSError as exc:
        if not folder.is_dir():
            raise StorageError(f"cannot make the slots folder ({exc.strerror})", file=folder) from None
    return publish_new(folder / f"{slot:05d}.json", json_lines(record), fs=fs)
