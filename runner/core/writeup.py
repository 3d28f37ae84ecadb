"""Writing a job up: its `result.json`, built once, and its last move.

A job that ended goes to `done/` or `failed/`, or back to `pending/` while it has retries left.
The record is built once, so a spool that refuses the write (a full disk, an EIO) gets the
same record again every `STORAGE_RETRY` seconds while the runner keeps the job and its lease;
`StorageHealth` says so plainly, once a minute, and holds back new claims meanwhile. A job
taken from us (its folder moved by someone else) gets nothing more written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.core.execute import Running
from runner.core.interrupt import CHECKPOINTED, interruption, share_full_note
from runner.core.outcome import Outcome, classify
from runner.core.outputs import result_paths
from runner.core.stopper import Stopper
from runner.core.takeover import failures_since_retry, new_id
from runner.core.usage import Peak, UsageSampler, usage_record
from runner.pins.provenance import Provenance
from spool.errors import StorageError
from spool.history import INTERRUPTED, attempt_history, count_since_retry, hosts_spanned, summary, tree_bytes
from spool.jobs import failure_record, utc_now
from spool.layout import CHECKPOINT_DIR, JOB_FILE, RESULT_FILE, Layout
from spool.model import Job
from spool.protocol import FsOps, drop_blanks, move, publish_json
from spool.settings import Settings
from spool.states import State
from spool.sweeps.hyperband import Verdict

__all__ = ["Slot", "StorageHealth", "WriteUp", "STORAGE_RETRY", "timeout_of"]

STORAGE_RETRY = 2.0  # seconds between tries when the spool will not take a write (e.g. disk full)


@dataclass
class Slot:
    """One job this runner is running."""

    job_id: str
    folder: Path
    job: Job
    attempt: int
    started_wall: str
    started: float
    proc: Running | None = None
    beat: int = 0
    last_renew: float = 0.0
    timed_out: bool = False
    cancelled: bool = False
    lost: bool = False
    handing_back: bool = False
    record: dict[str, Any] = field(default_factory=dict)
    prov: Any = None  # runner.pins.provenance.Started, taken when the script starts
    final: tuple[dict[str, Any], State, str] | None = None  # result.json, state and id: built once
    original_name: str | None = None  # the dropped file's name, when the job runs under a new id
    publishing: bool = False  # finished, but the spool refused the result: retried, lease kept
    publish_at: float = 0.0
    token: str = ""  # this claim's token (claim.json)
    warm: dict[str, Any] | None = None  # warm mode: {"used": bool, ...} for result.json
    stopper: Stopper | None = None  # a hyperband sweep's job: judged as its metric lines arrive
    early_stop: Verdict | None = None  # the verdict it was stopped by: done, marked stopped
    outcome: Outcome | None = None  # what the script left, read once (its logs are closed then)
    peak: Peak | None = None  # what sampling saw of its memory (and GPU memory), read once with it
    ending: tuple[str, dict[str, Any] | None] | None = None  # (state, error) once judged
    interrupt: tuple[str, str] | None = None  # (cause, message): stopped by us for a reason not its own
    hold_until: float | None = None  # died of a signal not ours: written up after this (see interrupt.py)
    interruptions: int = 0  # of this job so far, this attempt included if it was one


class StorageHealth:
    """Whether the spool takes our writes; while it does not, no new job is claimed."""

    def __init__(self, log: Callable[[str], None]):
        self._log = log
        self.pause_until = 0.0  # the loop's time: no new claims before this
        self._bad = False
        self._next_log = 0.0
        self._now = 0.0

    def at(self, now: float) -> None:
        """The time of the runner's step now under way (`run_once(now)`): the one clock of
        `trouble` and of the write-up (a job's duration, when to publish again)."""
        self._now = now

    @property
    def now(self) -> float:
        return self._now

    def trouble(self, what: str, exc: BaseException) -> None:
        """Say plainly (once a minute) that the spool refused a write; take no new job for a while."""
        now = self._now
        self.pause_until = now + STORAGE_RETRY
        if not self._bad or now >= self._next_log:
            self._log(
                f"{what}: {exc}. Taking no new jobs and keeping running ones until the spool "
                f"takes writes again (retrying every {STORAGE_RETRY:g} s)"
            )
            self._next_log = now + 60
        self._bad = True

    def ok(self) -> None:
        if self._bad:
            self._bad = False
            self._log("the spool takes writes again: carrying on")


def _there(path: Path) -> bool:
    """Whether `path` exists; False also when the spool cannot say just now (an EIO)."""
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def timeout_of(job: Job, settings: Settings) -> float | None:
    return job.timeout if "timeout" in job.model_fields_set else settings.defaults.timeout


class WriteUp:
    """Builds and publishes the result of this runner's jobs (`who`: its name, host, python...)."""

    def __init__(
        self,
        layout: Layout,
        settings: Settings,
        prov: Provenance,
        who: dict[str, Any],
        health: StorageHealth,
        log: Callable[[str], None],
        usage: UsageSampler | None = None,
    ):
        self.layout = layout
        self.settings = settings
        self.prov = prov
        self.who = who  # runner, host, python, python_version, device
        self.health = health
        self._log = log
        self.usage = usage  # samples each running script's memory (and GPU memory)

    def complete(self, slot: Slot, fs: FsOps) -> State | None:
        """The script has ended: write it up. Returns where the job went (None: nowhere, yet).

        Safe to call again after the spool refused a step (an EIO burst): the outcome is read
        once and kept, and the retry takes up where the refusal was."""
        assert slot.proc is not None
        if slot.outcome is None:
            slot.outcome = slot.proc.outcome()
            slot.peak = self.usage.remove(slot.proc.pid) if self.usage is not None else Peak()
        outcome = slot.outcome
        try:
            if slot.lost or not (slot.folder / JOB_FILE).exists():
                return None
            if slot.handing_back:
                if move(self.layout, slot.folder, slot.job_id, State.PENDING, fs=fs) is not None:
                    self._log(f"handed back {slot.job_id}")
                return None
        except (OSError, StorageError) as exc:
            return self._refused(slot, "cannot write up", exc)
        state, error = classify(
            outcome,
            timed_out=slot.timed_out,
            cancelled=slot.cancelled,
            timeout=timeout_of(slot.job, self.settings),
        )
        if slot.early_stop is not None:  # stopped by early termination: done, not failed
            state, error = "done", None
        elif state != "done" and not (slot.cancelled or slot.timed_out):
            state, error = self._not_its_fault(slot, outcome, state, error)
        if error is not None:
            error["stderr_tail"] = outcome.stderr_tail[-2000:]
        slot.record = {
            "usage": usage_record(outcome.wall, outcome.rusage, slot.peak or Peak()),
            "result": outcome.result,
            "exit_code": outcome.exit_code,
            "metrics_count": outcome.metrics_count,
            "truncated": outcome.stdout_truncated or outcome.stderr_truncated,
        }
        if outcome.leftovers:  # its script had exited; what it left running held the job open
            slot.record["leftovers_killed"] = outcome.leftovers
            self._log(f"{slot.job_id}: ended what it left running: {outcome.leftovers}")
        return self.finish(slot, state, error, fs)

    def _refused(self, slot: Slot, what: str, exc: BaseException) -> State | None:
        """The spool refused a step of the write-up (EIO, ESTALE, ETIMEDOUT, a full disk): keep
        the job (its lease renewed) and try again in `STORAGE_RETRY` seconds."""
        slot.publishing = True
        slot.publish_at = self.health.now + STORAGE_RETRY
        self.health.trouble(f"{what} {slot.job_id}", exc)
        return None

    def retry(self, slot: Slot, fs: FsOps) -> State | None:
        """Try a refused write-up again, from where it was refused."""
        if slot.ending is None and slot.proc is not None:
            return self.complete(slot, fs)
        state, error = slot.ending or ("failed", {"kind": "exit", "message": "no outcome"})
        return self.finish(slot, state, error, fs)

    def _not_its_fault(
        self, slot: Slot, outcome: Outcome, state: str, error: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any] | None]:
        """An attempt that did not finish: saved and asking to run again (its checkpoint exit
        code), interrupted (its machine or runner went away), or a failure of its own; a failure
        on a full share says so."""
        code = slot.job.checkpoint_exit_code
        if code is not None and outcome.exit_code == code:
            return CHECKPOINTED, None
        if slot.interrupt is not None:
            cause, message = slot.interrupt
            state, error, _, slot.interruptions = interruption(slot.folder, self.settings, cause, message)
            return state, error
        note = share_full_note(slot.folder, outcome.stderr_tail)
        if note and error is not None:
            error = {"kind": "disk_full", "message": f"{error['message']}; {note}"}
        return state, error

    def finish(self, slot: Slot, state: str, error: dict[str, Any] | None, fs: FsOps) -> State | None:
        """Publish the record and move the job; where it went, or None (taken from us, or the
        spool refused: then `slot.publishing` says to try again at `slot.publish_at`)."""
        slot.ending = (state, error)
        try:
            if slot.final is None:  # built once: a publish the spool refused is retried as it was
                slot.final = (*self.final_record(slot, state, error), slot.job_id)
            rec, target, dest = slot.final
            if not (slot.folder / JOB_FILE).exists():
                slot.publishing = False
                return None  # fenced: someone took the job while we were finishing
            publish_json(slot.folder / RESULT_FILE, rec, fs=fs, blank=True)
            if target is not State.PENDING:
                drop_blanks(slot.folder, fs)  # and an empty checkpoint folder
            moved = move(self.layout, slot.folder, dest, target, fs=fs)
        except (StorageError, OSError) as exc:
            if slot.final is None:  # could not even be built (the folder unreadable for now)
                return self._refused(slot, "cannot write up", exc)
            rec, target, dest = slot.final
            slot.publishing = True  # keep the slot (and renew its lease) until the spool takes it
            if _there(self.layout.state_dir(target) / dest):  # not the disk: the job ran twice
                new = new_id(dest)
                self._log(
                    f"DUPLICATE: {target.value}/{dest} exists already, so job {dest} ran twice (its "
                    "file dropped again while it ran, or a replicated sync folder where two runners "
                    f"both won the claim: claims are not safe there). Keeping this run too, as {new}."
                )
                slot.final = ({**rec, "id": new, "duplicate_of": dest}, target, new)
                slot.publish_at = 0.0
            else:
                slot.publish_at = self.health.now + STORAGE_RETRY
                self.health.trouble(f"cannot publish {slot.job_id}", exc)
            return None
        slot.publishing = False
        self.health.ok()
        if moved is None:
            self._log(
                f"{slot.job_id} was taken from us before it could be published"
                if target is not State.PENDING
                else f"{slot.job_id}: its retry is no longer ours (requeued and claimed again, or taken)"
            )
            return None
        return target

    def fail_now(
        self,
        folder: Path,
        job_id: str,
        job: dict[str, Any] | None,
        kind: str,
        msg: str,
        attempt: int,
        fs: FsOps,
    ) -> None:
        """A claimed job that cannot start at all (its file no longer parses): to failed/."""
        try:
            publish_json(
                folder / RESULT_FILE,
                failure_record(job_id, job, kind, msg, attempt=attempt, runner=self.who["runner"]),
                fs=fs,
                blank=True,
            )
            drop_blanks(folder, fs)
            move(self.layout, folder, job_id, State.FAILED, fs=fs)
        except StorageError as exc:
            self._log(f"cannot fail {job_id}: {exc}")

    def final_record(
        self, slot: Slot, state: str, error: dict[str, Any] | None
    ) -> tuple[dict[str, Any], State]:
        ended = utc_now()
        who = self.who
        rec: dict[str, Any] = {
            "format": 1,
            "id": slot.job_id,
            **({"original_name": slot.original_name} if slot.original_name else {}),
            "state": state,
            "job": slot.job.model_dump(mode="json"),
            "result": slot.record.get("result"),
            "error": error,
            "runner": who["runner"],
            "host": who["host"],
            "python": who["python"],
            "python_version": who["python_version"],
            "device": who["device"],
            "started": slot.started_wall,
            "ended": ended,
            "duration": round(self.health.now - slot.started, 6),
            "exit_code": slot.record.get("exit_code"),
            "attempt": slot.attempt,
            "metrics_count": slot.record.get("metrics_count", 0),
            "provenance": self.prov.end(slot.prov, wait=self.settings.lease_seconds / 4),
        }
        if slot.record.get("usage"):
            rec["usage"] = slot.record["usage"]
        if slot.record.get("truncated"):
            rec["logs_truncated"] = True
        if slot.record.get("leftovers_killed"):
            rec["leftovers_killed"] = slot.record["leftovers_killed"]
        if slot.warm is not None:
            rec["warm"] = slot.warm
        if slot.early_stop is not None:
            rec["stopped"] = True
            rec["early_terminate"] = slot.early_stop.record()
        self._history(slot, rec)
        target = State.DONE if state == "done" else State.FAILED
        if state in (INTERRUPTED, CHECKPOINTED) or (
            target is State.FAILED
            and error
            and error["kind"] not in ("cancelled", "invalid", INTERRUPTED)
            and self.retries_left(slot)
        ):
            target = State.PENDING
        moved = result_paths(rec["result"], slot.folder, f"{target.value}/{slot.job_id}")
        if moved:  # where the files the result names are after the move (argv4 scripts)
            rec["result_paths"] = moved
        return rec, target

    def _history(self, slot: Slot, rec: dict[str, Any]) -> None:
        """Interruptions, checkpoint size and, after earlier attempts, the machines spanned and
        each attempt's summary (the report's timeline): read from the folder, written once."""
        if not slot.interruptions and slot.attempt > 1:
            slot.interruptions = count_since_retry(slot.folder, INTERRUPTED)
        rec["interruptions"] = slot.interruptions
        ckpt = slot.folder / CHECKPOINT_DIR
        size = tree_bytes(ckpt)
        if size:
            rec["checkpoint_bytes"] = size
        if slot.attempt > 1:
            pieces = [*attempt_history(slot.folder), summary(rec, slot.attempt)]
            rec["attempts"] = pieces
            rec["hosts"] = hosts_spanned(pieces)
        else:
            rec["hosts"] = [rec["host"]]

    def retries_left(self, slot: Slot) -> bool:
        retries = (
            slot.job.retries if "retries" in slot.job.model_fields_set else self.settings.defaults.retries
        )
        return failures_since_retry(slot.folder) + 1 <= retries
