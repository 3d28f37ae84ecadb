"""The runner: a loop around `run_once(now)`, one testable step.

Each step: look after running jobs (exit, cancel, timeout, lease), requeue expired
leases of dead runners, and, when slots are free and the idle policy allows, claim the
best pending jobs this machine can run and start them.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.capabilities import Capabilities, detect, meets, pick_device
from runner.contract import build_invocation
from runner.discover import Candidate, Scanner, Watcher
from runner.execute import Running, classify
from runner.heartbeat import Heartbeat
from runner.lease import SpoolClock, find_expired, renew
from runner.options import RunnerOptions
from runner.policy import IdlePolicy, read
from spool.api import Spool
from spool.errors import SpoolError, StorageError
from spool.jobs import CANCEL_FILE, check_script, failure_record, new_token, reject, utc_now
from spool.layout import JOB_FILE, RESULT_FILE
from spool.model import Job, parse_job
from spool.protocol import archive_previous_attempt, claim, move, publish_json, read_claim, take_over
from spool.states import State

__all__ = ["Runner", "Slot"]

POLICY_EVERY = 5.0


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


class Runner:
    """Watches one spool, claims what this machine can run, runs it, writes what happened."""

    def __init__(
        self, spool: Spool, opts: RunnerOptions, *, caps: Capabilities | None = None, log: Any = None
    ):
        self.spool = spool
        self.opts = opts
        self.settings = spool.settings
        self.layout = spool.layout
        self.caps = caps or detect(opts.python, opts.tags)
        self.device = pick_device(self.caps)
        self.scripts_dir = spool.scripts_dir
        self.lease_seconds = self.settings.lease_seconds
        self.scan_interval = opts.scan_interval or self.settings.scan_interval
        self.log_cap = int(self.settings.log_cap_mb * 1024 * 1024)
        self.policy = IdlePolicy.from_options(
            max_load=opts.max_load,
            hours=opts.hours,
            on_ac_power=opts.on_ac_power,
            when_user_idle_min=opts.when_user_idle,
        )
        self._warned: set[str] = set()
        self.clock = SpoolClock(self.layout, opts.name)
        self.scanner = Scanner(self.layout)
        self.wake = threading.Event()
        self.slots: dict[str, Slot] = {}
        self.started_count = 0
        self.stopping = False
        self.hand_back = False
        self.idle = False
        self._next_scan = 0.0
        self._next_expiry = 0.0
        self._policy_until = 0.0
        self._policy_ok: tuple[bool, str] = (True, "")
        self._log = log or (lambda msg: None)
        self.heartbeat = Heartbeat(self.layout, opts, self.caps, self.spool.root)
        self.host = socket.gethostname()

    # -- the step ---------------------------------------------------------------
    def run_once(self, now: float | None = None) -> bool:
        """One step of the loop; returns True if it started or finished anything."""
        now = time.monotonic() if now is None else now
        busy = self._tend(now)
        if now >= self._next_expiry:
            self._next_expiry = now + min(self.scan_interval, self.lease_seconds / 4)
            busy |= self._requeue_expired()
        if self._may_take_work() and (now >= self._next_scan or self.wake.is_set()):
            self.wake.clear()
            self._next_scan = now + self.scan_interval
            busy |= self._take_work(now)
        self.heartbeat.maybe_write(now, [s.job_id for s in self.slots.values()], self._status_text())
        return busy

    def _status_text(self) -> str:
        if self.stopping:
            return "stopping"
        if not self._policy_ok[0]:
            return f"waiting: {self._policy_ok[1]}"
        return "running" if self.slots else "idle"

    def _may_take_work(self) -> bool:
        if self.stopping or len(self.slots) >= self.opts.slots:
            return False
        return self.opts.max_jobs is None or self.started_count < self.opts.max_jobs

    # -- claiming ---------------------------------------------------------------
    def _policy_allows(self, now: float) -> bool:
        if now >= self._policy_until:
            self._policy_until = now + POLICY_EVERY
            readings = read(self.policy)
            for warning in self.policy.unknowns(readings):
                if warning not in self._warned:
                    self._warned.add(warning)
                    self._log(f"warning: {warning}")
            self._policy_ok = self.policy.allows(readings)
        return self._policy_ok[0]

    def _take_work(self, now: float) -> bool:
        cands = self.scanner.scan()
        runnable = unsettled = 0
        started = False
        spool_now: float | None = None
        for cand in cands:
            if not self._may_take_work():
                break
            if cand.job is None:
                if cand.settling:
                    spool_now = spool_now if spool_now is not None else self.clock.now()
                    if not self._settled(cand, spool_now):
                        unsettled += 1
                        continue
                self._reject(cand)
                started = True
                continue
            ok, _why = meets(cand.job.requires.model_dump() if cand.job.requires else None, self.caps)
            if not ok:
                continue
            runnable += 1
            if not self._policy_allows(now):
                break
            started |= self._claim_and_start(cand, now)
        self.idle = not self.slots and runnable == 0 and unsettled == 0 and not self._others_running()
        if not self._policy_ok[0] and not self.slots:
            self.idle = True
        return started

    def _others_running(self) -> bool:
        """Jobs other runners hold: a drained spool has none (their leases may yet expire to us)."""
        return any(True for _ in self.layout.entries(State.CLAIMED))

    def _settled(self, cand: Candidate, spool_now: float) -> bool:
        try:
            mtime = cand.entry.path.stat().st_mtime
        except OSError:
            return False
        return spool_now - mtime >= self.settings.settle_seconds

    def _reject(self, cand: Candidate) -> None:
        try:
            reject(self.layout, cand.entry, cand.problem or "not a valid job", new_token(self.opts.name))
            self._log(f"rejected {cand.entry.path.name}: {cand.problem}")
        except StorageError as exc:
            self._log(f"cannot reject {cand.entry.path.name}: {exc}")

    def _claim_and_start(self, cand: Candidate, now: float) -> bool:
        token = new_token(self.opts.name)
        try:
            folder = claim(self.layout, cand.entry, token)
        except StorageError as exc:
            self._log(f"cannot claim {cand.entry.id}: {exc}")
            return False
        if folder is None:
            return False
        job_id = cand.entry.id
        try:
            previous = archive_previous_attempt(folder) if cand.entry.is_folder else 0
            attempt = previous + 1
            publish_json(
                folder / "claim.json",
                {
                    "token": token,
                    "runner": self.opts.name,
                    "host": self.host,
                    "attempt": attempt,
                    "claimed_at": utc_now(),
                },
                fsync=False,
            )
            renew(folder, 0)
            job = parse_job((folder / JOB_FILE).read_bytes(), job_id)
        except (OSError, SpoolError) as exc:
            self._fail_now(folder, job_id, None, "invalid", str(exc), 1)
            return True
        slot = Slot(job_id, folder, job, attempt, utc_now(), now, last_renew=now)
        self.slots[folder.name] = slot
        self.started_count += 1
        try:
            script = check_script(self.scripts_dir, job, job_id)
            inv = build_invocation(
                job,
                job_id=job_id,
                python=self.opts.python,
                script=script,
                spool_root=self.spool.root,
                folder=folder,
                device=self.device,
            )
            slot.proc = Running(
                inv,
                folder,
                log_cap=self.log_cap,
                nice=self.opts.nice,
                still_ours=lambda: (folder / JOB_FILE).exists(),
                on_exit=self.wake.set,
            )
        except SpoolError as exc:
            self._finish(
                slot,
                "failed",
                {
                    "kind": "invalid",
                    "message": exc.message if not exc.field else f"{exc.field}: {exc.message}",
                },
            )
        except OSError as exc:
            self._finish(
                slot, "failed", {"kind": "exit", "message": f"cannot start {self.opts.python}: {exc}"}
            )
        self._log(f"started {job_id} (attempt {attempt})")
        return True

    def _fail_now(
        self, folder: Path, job_id: str, job: dict[str, Any] | None, kind: str, msg: str, attempt: int
    ) -> None:
        try:
            publish_json(
                folder / RESULT_FILE,
                failure_record(job_id, job, kind, msg, attempt=attempt, runner=self.opts.name),
            )
            move(self.layout, folder, job_id, State.FAILED)
        except StorageError as exc:
            self._log(f"cannot fail {job_id}: {exc}")

    # -- running jobs -----------------------------------------------------------
    def _tend(self, now: float) -> bool:
        changed = False
        for key, slot in list(self.slots.items()):
            proc = slot.proc
            if proc is None:
                self.slots.pop(key, None)
                changed = True
                continue
            proc.tick(now)
            if not slot.lost and now - slot.last_renew >= self.lease_seconds / 4:
                slot.beat += 1
                slot.last_renew = now
                if not ((slot.folder / JOB_FILE).exists() and renew(slot.folder, slot.beat)):
                    self._lose(slot, now)
            if proc.kill_deadline is None:
                if self.hand_back:
                    slot.handing_back = True
                    proc.stop(now)
                elif (slot.folder / CANCEL_FILE).exists():
                    slot.cancelled = True
                    proc.stop(now, grace=1.0)
                elif (limit := self._timeout(slot)) is not None and now - slot.started > limit:
                    slot.timed_out = True
                    proc.stop(now)
            if proc.done():
                self._complete(slot)
                self.slots.pop(key, None)
                changed = True
        return changed

    def _timeout(self, slot: Slot) -> float | None:
        if "timeout" in slot.job.model_fields_set:
            return slot.job.timeout
        return self.settings.defaults.timeout

    def _lose(self, slot: Slot, now: float) -> None:
        slot.lost = True
        if slot.proc is not None:
            slot.proc.stop(now, grace=1.0)
        self._log(f"lost the lease on {slot.job_id}: stopping it, writing nothing more")

    def _complete(self, slot: Slot) -> None:
        assert slot.proc is not None
        outcome = slot.proc.outcome()
        if slot.lost or not (slot.folder / JOB_FILE).exists():
            return
        if slot.handing_back:
            if move(self.layout, slot.folder, slot.job_id, State.PENDING) is not None:
                self._log(f"handed back {slot.job_id}")
            return
        state, error = classify(
            outcome, timed_out=slot.timed_out, cancelled=slot.cancelled, timeout=self._timeout(slot)
        )
        if error is not None:
            error["stderr_tail"] = outcome.stderr_tail[-2000:]
        slot.record = {
            "result": outcome.result,
            "exit_code": outcome.exit_code,
            "metrics_count": outcome.metrics_count,
            "truncated": outcome.stdout_truncated or outcome.stderr_truncated,
        }
        self._finish(slot, state, error)

    def _finish(self, slot: Slot, state: str, error: dict[str, Any] | None) -> None:
        ended = utc_now()
        rec: dict[str, Any] = {
            "format": 1,
            "id": slot.job_id,
            "state": state,
            "job": slot.job.model_dump(mode="json"),
            "result": slot.record.get("result"),
            "error": error,
            "runner": self.opts.name,
            "host": self.host,
            "python": self.opts.python,
            "python_version": self.caps.python_version,
            "device": self.device,
            "started": slot.started_wall,
            "ended": ended,
            "duration": round(time.monotonic() - slot.started, 6),
            "exit_code": slot.record.get("exit_code"),
            "attempt": slot.attempt,
            "metrics_count": slot.record.get("metrics_count", 0),
            "provenance": {},
        }
        if slot.record.get("truncated"):
            rec["logs_truncated"] = True
        target = State.DONE if state == "done" else State.FAILED
        if (
            target is State.FAILED
            and error
            and error["kind"] not in ("cancelled", "invalid")
            and self._retries_left(slot)
        ):
            target = State.PENDING
        try:
            if not (slot.folder / JOB_FILE).exists():
                return  # fenced: someone took the job while we were finishing
            publish_json(slot.folder / RESULT_FILE, rec, fsync=False)
            if move(self.layout, slot.folder, slot.job_id, target) is None:
                self._log(f"{slot.job_id} was taken from us before it could be published")
        except StorageError as exc:
            self._log(f"cannot publish {slot.job_id}: {exc}; the lease will hand it on")
        self.slots.pop(slot.folder.name, None)

    def _retries_left(self, slot: Slot) -> bool:
        retries = (
            slot.job.retries if "retries" in slot.job.model_fields_set else self.settings.defaults.retries
        )
        return failures_since_retry(slot.folder) + 1 <= retries

    # -- dead runners' jobs -----------------------------------------------------
    def _requeue_expired(self) -> bool:
        try:
            spool_now = self.clock.now()
        except OSError:
            return False
        acted = False
        for exp in find_expired(self.layout, spool_now, self.lease_seconds, set(self.slots)):
            acted |= self._take_over(exp.entry.path, exp.entry.id, exp.empty)
        return acted

    def _take_over(self, folder: Path, job_id: str, empty: bool) -> bool:
        if empty:
            try:
                folder.rmdir()
            except OSError:
                pass
            return False
        old = read_claim(folder) or {}
        token = new_token(self.opts.name)
        mine = take_over(self.layout, folder, job_id, token)
        if mine is None:
            return False
        try:
            job = parse_job((mine / JOB_FILE).read_bytes(), job_id)
        except SpoolError:
            job = None
        attempt = int(old.get("attempt") or 1)
        cancelled = (mine / CANCEL_FILE).exists()
        kind = "cancelled" if cancelled else "lost_lease"
        msg = (
            "cancelled; its runner had gone"
            if cancelled
            else f"runner {old.get('runner', '?')} on {old.get('host', '?')} stopped renewing its lease"
        )
        publish_json(
            mine / RESULT_FILE,
            failure_record(
                job_id,
                job.model_dump(mode="json") if job else None,
                kind,
                msg,
                attempt=attempt,
                runner=old.get("runner"),
            ),
        )
        retries = job.retries if job and "retries" in job.model_fields_set else self.settings.defaults.retries
        target = State.FAILED if cancelled or failures_since_retry(mine) + 1 > retries else State.PENDING
        move(self.layout, mine, job_id, target)
        self._log(f"{job_id}: lease expired ({kind}) -> {target.value}")
        return True

    # -- lifetime ---------------------------------------------------------------
    def request_stop(self) -> None:
        """First call: take no more work, finish what runs. Second: hand running jobs back."""
        if self.stopping:
            self.hand_back = True
        self.stopping = True
        self.wake.set()

    def finished(self) -> bool:
        if self.stopping:
            return not self.slots
        if self.opts.max_jobs is not None and self.started_count >= self.opts.max_jobs and not self.slots:
            return True
        return self.opts.exit_when_idle and self.idle and not self.slots

    def run(self) -> int:
        """Loop until stopped (SIGINT/SIGTERM) or, with --exit-when-idle, drained."""
        self.layout.runners.mkdir(exist_ok=True)
        watcher = Watcher([self.layout.state_dir(State.PENDING)], self.wake, enabled=self.opts.events)
        old = {s: signal.signal(s, lambda *_: self.request_stop()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.heartbeat.write(time.monotonic(), [], "starting")
            while True:
                self.run_once()
                if self.finished():
                    break
                timeout = 0.2 if self.slots else max(0.01, self._next_scan - time.monotonic())
                self.wake.wait(min(timeout, self.scan_interval))
        finally:
            watcher.stop()
            for s, h in old.items():
                signal.signal(s, h)
            self.heartbeat.write(time.monotonic(), [], "stopped")
            self.clock.remove()
        return 0


def failures_since_retry(folder: Path) -> int:
    """Failed attempts archived in `folder` since the user last retried it by hand."""
    try:
        base = int(json.loads((folder / "retry.json").read_bytes()).get("base", 0))
    except (OSError, ValueError, AttributeError):
        base = 0
    count = 0
    attempts = folder / "attempts"
    if attempts.is_dir():
        for p in attempts.iterdir():
            if p.name.isdigit() and int(p.name) > base:
                try:
                    if json.loads((p / RESULT_FILE).read_bytes()).get("state") == "failed":
                        count += 1
                except (OSError, ValueError, AttributeError):
                    pass
    return count
