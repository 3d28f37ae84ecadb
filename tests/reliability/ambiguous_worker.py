"""A claimer for scenario 5, run as its own process: claims pending jobs through an FsOps whose
renames sometimes report EIO after (or without) renaming, and logs what it believes it holds.

Each claim ends one of three ways: moved to done/, requeued to pending/ (a failed attempt), or
abandoned in claimed/ (a crash) for a later `take_over`. Log lines: `<mono> <event> <id> <token>`.
A requeue whose rename reported EIO after happening may find the job claimed again already:
it cannot tell that from losing the job and logs `lost-requeue`; the test checks which it was.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rkit import flaky_fs  # noqa: E402

from spool.errors import StorageError  # noqa: E402
from spool.layout import Layout  # noqa: E402
from spool.protocol import archive_previous_attempt, claim, move, publish_json, read_claim, take_over  # noqa: E402
from spool.states import State  # noqa: E402

REQUEUE, ABANDON = 0.25, 0.03


def main() -> None:
    root, name, seed, logpath = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    layout = Layout(root)
    fs = flaky_fs(0.01, seed)
    rng = random.Random(seed)
    log = open(logpath, "w", buffering=1)  # noqa: SIM115

    def note(event: str, job: str, token: str) -> None:
        log.write(f"{time.monotonic():.6f} {event} {job} {token}\n")

    def retry(call):  # a reported error leaves things where they were (or where they went): again
        while True:
            try:
                return call()
            except StorageError:
                pass

    def settle(folder: Path, job: str, token: str, dst: State) -> None:
        if dst is State.DONE:
            rec = {"format": 1, "id": job, "state": "done", "runner": name, "token": token}
            retry(lambda: publish_json(folder / "result.json", rec, fsync=False, fs=fs))
        note("releasing", job, token)  # logged before the move, so a successor's claim comes after
        target = retry(lambda: move(layout, folder, job, dst, fs=fs))
        if target is None:  # after a requeue, also: ours, then claimed again before we looked
            note("lost" if dst is State.DONE else "lost-requeue", job, token)
        else:
            note("done" if dst is State.DONE else "requeued", job, token)

    idle = 0
    while idle < 3:
        entries = sorted(layout.entries(State.PENDING), key=lambda e: e.id)
        abandoned = [
            e
            for e in layout.entries(State.CLAIMED)
            if (c := read_claim(e.path) or {}).get("abandoned") and c.get("token") == e.token
        ]
        if not entries and not abandoned:
            idle += 1
            time.sleep(0.05)
            continue
        idle = 0
        for e in abandoned:  # a dead claimer's job: take it over and put it back
            token = f"{name}.{os.urandom(4).hex()}"
            try:
                mine = take_over(layout, e.path, e.id, token, fs=fs)
            except StorageError:
                continue
            if mine is None:
                continue
            note("claim", e.id, token)
            retry(lambda m=mine, t=token: publish_json(m / "claim.json", {"token": t}, fsync=False, fs=fs))
            settle(mine, e.id, token, State.PENDING)
        for e in entries:
            token = f"{name}.{os.urandom(4).hex()}"
            try:
                folder = claim(layout, e, token, fs=fs)
            except StorageError:
                continue
            if folder is None:
                continue
            note("claim", e.id, token)
            if e.is_folder:
                archive_previous_attempt(folder)
            r = rng.random()
            if r < ABANDON:
                note("releasing", e.id, token)  # it "crashes": it no longer acts for the job
            claim_doc = {"token": token, "abandoned": r < ABANDON}
            retry(lambda f=folder, d=claim_doc: publish_json(f / "claim.json", d, fsync=False, fs=fs))
            if r < ABANDON:
                note("abandoned", e.id, token)
            elif r < ABANDON + REQUEUE:
                settle(folder, e.id, token, State.PENDING)
            else:
                settle(folder, e.id, token, State.DONE)
    log.write(json.dumps({"renames": fs.calls, "eio_before": fs.before, "eio_after": fs.after}) + "\n")


if __name__ == "__main__":
    main()
