"""Jobs whose runner went away: a claim whose lease has run out (by the spool's clock) is
taken over with one rename and requeued as interrupted (no retry spent), or failed once it
has been interrupted more than `max_interruptions` times (see `runner.core.interrupt`).

One `Expiry` per runner; `Runner.run_once` calls `requeue` every quarter lease. A folder
whose `claim.json` is missing or names another token is a claim (or take-over) in progress:
its times may be an earlier attempt's, so it is taken only after this runner has watched it
stand still for a whole lease itself.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from runner.core.interrupt import interruption
from runner.core.kits import drop_dead_kits
from runner.core.lease import find_expired
from runner.core.syncguard import double_claims
from spool.clock import SpoolClock
from spool.errors import SpoolError, StorageError
from spool.history import count_since_retry
from spool.jobs import CANCEL_FILE, failure_record, new_token
from spool.layout import JOB_FILE, RESULT_FILE, Layout
from spool.model import parse_job
from spool.protocol import FsOps, drop_blanks, drop_empty_claim, move, publish_json, read_claim, take_over
from spool.settings import Settings
from spool.states import State
from spool.untrusted import read_file

__all__ = ["Expiry", "new_id", "failures_since_retry"]


class Expiry:
    """Takes over the expired claims of other runners (and warns of doubly claimed jobs)."""

    def __init__(
        self,
        layout: Layout,
        clock: SpoolClock,
        settings: Settings,
        runner: str,
        *,
        log: Callable[[str], None],
        trouble: Callable[[str, BaseException], None],
    ):
        self.layout = layout
        self.clock = clock
        self.settings = settings
        self.runner = runner
        self._log = log
        self._trouble = trouble  # the spool refused a write: the runner pauses its claims
        self._mid_claims: dict[str, float] = {}  # claimed folder -> when first seen mid-claim
        self._warned: set[str] = set()

    def requeue(self, mine: set[str], fs: FsOps) -> bool:
        """Take over every expired claim not in `mine` (our own folders); True if any moved."""
        try:
            spool_now = self.clock.now()
        except OSError:
            return False
        self._warn_double_claims()
        drop_dead_kits(self.layout.runners, self.runner, spool_now)
        lease = self.settings.lease_seconds
        acted = False
        mono = time.monotonic()
        watched: dict[str, float] = {}
        for exp in find_expired(self.layout, spool_now, lease, mine):
            if exp.mid_claim and not exp.empty:
                name = exp.entry.path.name
                watched[name] = self._mid_claims.get(name, mono)
                if mono - watched[name] < lease:
                    continue
            acted |= self._take_over(exp.entry.path, exp.entry.id, exp.empty, fs)
        self._mid_claims = watched
        return acted

    def _warn_double_claims(self) -> None:
        """One job held by two claims: only a folder without atomic rename (or a re-drop) does that."""
        for job_id, names in double_claims(self.layout).items():
            if job_id not in self._warned:
                self._warned.add(job_id)
                self._log(
                    f"DUPLICATE CLAIM: job {job_id} is claimed twice ({', '.join(names)}): its file was "
                    "dropped again while it ran, or this spool is a replicated sync folder (Syncthing, "
                    "Dropbox) where two runners can both win a rename. Claims are not safe there."
                )

    def _take_over(self, folder: Path, job_id: str, empty: bool, fs: FsOps) -> bool:
        if empty:
            drop_empty_claim(folder, fs)
            return False
        old = read_claim(folder) or {}
        mine = take_over(self.layout, folder, job_id, new_token(self.runner), fs=fs)
        if mine is None:
            return False
        if self._finish_written(mine, job_id, old, fs):
            return True
        try:
            job = parse_job((mine / JOB_FILE).read_bytes(), job_id, env_allow=None)  # a record only
        except SpoolError:
            job = None
        attempt = int(old.get("attempt") or 1)
        cancelled = (mine / CANCEL_FILE).exists()
        who = f"runner {old.get('runner', '?')} on {old.get('host', '?')}"
        extra: dict[str, object] = {"attempt": attempt, "runner": old.get("runner")}
        if cancelled:
            kind, msg, target = "cancelled", "cancelled; its runner had gone", State.FAILED
        else:  # its machine or runner went away: an interruption, not a spent retry
            state, error, target, count = interruption(
                mine, self.settings, "lost_lease", f"{who} stopped renewing its lease"
            )
            kind, msg = error["kind"], error["message"]
            extra.update(state=state, interruptions=count, started=old.get("claimed_at"))
            if old.get("host"):  # the machine it ran on, not ours
                extra["host"] = old["host"]
        dest = job_id
        if (self.layout.state_dir(target) / dest).exists():  # a second claim of one job: keep both
            dest = new_id(job_id)
            self._log(f"DUPLICATE: {target.value}/{job_id} exists already; requeueing this claim as {dest}")
        try:
            publish_json(
                mine / RESULT_FILE,
                failure_record(
                    dest,
                    job.model_dump(mode="json") if job else None,
                    kind,
                    msg,
                    **extra,
                ),
                fs=fs,
                blank=True,
            )
            if target is State.FAILED:
                drop_blanks(mine, fs)
            move(self.layout, mine, dest, target, fs=fs)
        except StorageError as exc:  # left under our token, mid-claim: taken again after a lease
            self._trouble(f"cannot requeue {job_id}", exc)
            return False
        self._log(f"{job_id}: lease expired ({kind}) -> {target.value}")
        return True


    def _finish_written(self, mine: Path, job_id: str, old: dict[str, object], fs: FsOps) -> bool:
        """A holder that died after publishing its attempt's result.json, before the folder's
        last move: the job is finished, not lost. Moved on as that result says (done, or failed
        and then requeued while retries are left), never failed over a good result."""
        try:
            rec = json.loads(read_file(mine / RESULT_FILE))
        except (OSError, ValueError):
            return False
        if not isinstance(rec, dict) or rec.get("state") not in ("done", "failed"):
            return False
        attempt = old.get("attempt", rec.get("attempt"))
        if rec.get("id") not in (None, job_id) or rec.get("attempt") != attempt:
            return False  # another job's or another attempt's record: not this attempt's result
        target = State.DONE if rec["state"] == "done" else State.FAILED
        err = rec.get("error") or {}
        if target is State.FAILED and err.get("kind") not in ("cancelled", "invalid"):
            job = rec.get("job") or {}
            retries = job.get("retries", self.settings.defaults.retries) if isinstance(job, dict) else 0
            if isinstance(retries, int) and failures_since_retry(mine) + 1 <= retries:
                target = State.PENDING
        if (self.layout.state_dir(target) / job_id).exists():
            return False  # a second claim of one job: the usual take-over keeps both
        try:
            if target is not State.PENDING:
                drop_blanks(mine, fs)
            move(self.layout, mine, job_id, target, fs=fs)
        except StorageError as exc:
            self._trouble(f"cannot finish {job_id}", exc)
            return True
        self._log(f"{job_id}: its runner had gone after writing its result: finished it -> {target.value}")
        return True


def new_id(job_id: str) -> str:
    """`<id>.<6 hex>`: still a valid id (at most 120 characters, no reserved suffix)."""
    return f"{job_id[:110]}.{os.urandom(3).hex()}"


def failures_since_retry(folder: Path) -> int:
    """Failed attempts archived in `folder` since the user last retried it by hand."""
    return count_since_retry(folder, "failed")
