"""The runner: a loop around `run_once(now)`, one testable step.

Each step: look after running jobs (exit, cancel, timeout, lease), requeue expired
leases of dead runners, and, when slots are free and the idle policy allows, claim the
best pending jobs this machine can run and start them.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from runner.core.contract import Invocation, build_invocation
from runner.core.discover import Candidate, Scanner, Watcher
from runner.core.execute import Running
from runner.core.gate import GO, WAIT, AfterGate, fail_dependency
from runner.core.heartbeat import Heartbeat
from runner.core.interrupt import HOLD_SIGNALLED, SIGNAL_DEATHS, give_notice, grace_of
from runner.core.kits import Kits
from runner.core.lease import renew
from runner.core.options import RunnerOptions
from runner.core.propose import Proposer
from runner.core.reaper import Reaper
from runner.core.stopper import StopperFactory
from runner.core.syncguard import claim_safety_warnings
from runner.core.takeover import Expiry, new_id
from runner.core.usage import UsageSampler, gpu_sampling_every
from runner.core.writeup import STORAGE_RETRY, Slot, StorageHealth, WriteUp, timeout_of
from runner.machine.capabilities import Capabilities, meets, pick_device
from runner.machine.pause import Pauser
from runner.machine.policy import IdlePolicy, read
from runner.machine.probe import CapsProbe
from runner.pins.provenance import Provenance
from runner.pins.revcache import RevCache, RevMissing
from spool.api import Spool
from spool.clock import SpoolClock
from spool.errors import SpoolError, StorageError
from spool.jobs import CANCEL_FILE, new_token, reject, utc_now
from spool.layout import CLAIM_FILE, JOB_FILE
from spool.model import parse_job
from spool.protocol import FsOps, archive_previous_attempt, claim, drop_empty_claim, move, publish_json
from spool.states import State
from spool.untrusted import read_file

__all__ = ["Runner", "Slot"]

POLICY_EVERY = 5.0
PROBE_WAIT_AT_EXIT = 30.0  # seconds a stopping runner waits for its probe (so the next start has it)


class Spawners(Protocol):
    """Warm mode as the loop sees it (`runner.warm.pool.WarmPool`): per job, a `spawn` for
    `Running` (None: cold) and the job's `warm` record; `close` at the end."""

    def spawner(self, job: Any) -> tuple[Callable[[Invocation], Any] | None, dict[str, Any]]: ...

    def close(self) -> None: ...


def _job_doc(raw: bytes, job_id: str) -> dict[str, Any] | None:
    try:
        return parse_job(raw, job_id, env_allow=None).model_dump(mode="json")  # a record only
    except SpoolError:
        return None


def _still_there(path: Path) -> bool:
    """The fence of a running job's writes: False only once its folder is really gone (taken
    over, moved); a share that cannot say just now (EIO, ESTALE, ETIMEDOUT) is not a "gone"."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


class Runner:
    """Watches one spool, claims what this machine can run, runs it, writes what happened."""

    def __init__(
        self,
        spool: Spool,
        opts: RunnerOptions,
        *,
        caps: Capabilities | None = None,
        log: Any = None,
        warm: Spawners | None = None,
    ):
        self.spool = spool
        self.opts = opts
        self.settings = spool.settings
        self.layout = spool.layout
        self._log = log or (lambda msg: None)
        self.wake = threading.Event()
        self.probe: CapsProbe | None = None  # torch and the GPU probed on a thread, jobs taken meanwhile
        if caps is None:
            self.probe = CapsProbe(opts.python, opts.tags, log=self._log, on_done=self.wake.set)
            caps = self.probe.caps
        self.caps = caps
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
        self.scanner = Scanner(self.layout, keep=self._worth_a_look, env_allow=self.settings.env_allow)
        self.gate = AfterGate(self.layout)  # jobs with `after` wait for their dependencies
        self._rest: list[Candidate] = []  # the last full scan's candidates not yet tried
        self._rest_until = 0.0
        self.slots: dict[str, Slot] = {}
        self._ending: dict[str, Slot] = {}  # ended this step, written up at its end
        self.started_count = 0
        self.stopping = False
        self.hand_back = False
        self.idle = False
        self._next_scan = 0.0
        self._scan_due = False
        self._next_expiry = 0.0
        self.fs = FsOps()  # every rename goes through it (tests inject faults here)
        self.kits = Kits(self.layout.runners, opts.name, opts.slots)  # job folders made ahead
        self._policy_until = 0.0
        self._policy_ok: tuple[bool, str] = (True, "")
        self._yield_until = 0.0
        self._yield_why = ""
        self._signalled_at = -1e9
        self._log = log or (lambda msg: None)
        self.health = StorageHealth(self._log)  # a spool refusing writes pauses new claims
        self.reaper = Reaper(self._log)  # our scripts die with us, even by SIGKILL
        self.expiry = Expiry(
            self.layout, self.clock, self.settings, opts.name, log=self._log, trouble=self.health.trouble
        )
        self.pauser = Pauser.from_options(opts.when_user_idle, self._log) if opts.pause_when_busy else None
        self.heartbeat = Heartbeat(self.layout, opts, self.caps, self.spool.root)
        self.host = socket.gethostname()
        self.base_env = dict(os.environ)  # what jobs inherit; copied once (decoding it costs per job)
        self.prov = Provenance(self.spool.root, self.scripts_dir, opts.python, self.caps, self.device)
        who = {
            "runner": opts.name,
            "host": self.host,
            "python": opts.python,
            "python_version": self.caps.python_version,
            "device": self.device,
        }
        self.stoppers = StopperFactory(self.layout, self.wake.set, self._log)  # early termination
        self.usage = UsageSampler(gpu_every=gpu_sampling_every(self.caps.cuda_devices, self.lease_seconds))
        self.writeup = WriteUp(
            self.layout, self.settings, self.prov, who, self.health, self._log, usage=self.usage
        )
        self.proposer = Proposer(spool, self.fs, lambda req: meets(req, self.caps)[0], self._log)
        self.revs = RevCache(self.scripts_dir, self.spool.root, fetch=opts.git_fetch, log=self._log)
        self.heartbeat.extra["revs_missing"] = self.revs.notes  # why pinned jobs are left to others
        self.warm = warm  # warm mode's fork server (runner.cli.build_runner), or None: all cold

    # -- the step ---------------------------------------------------------------
    def run_once(self, now: float | None = None) -> bool:
        """One step of the loop; returns True if it started or finished anything."""
        now = time.monotonic() if now is None else now
        self.health.at(now)  # the step's time is the only one the step reads
        if self.probe is not None and not self.probe.ready and (full := self.probe.poll()) is not None:
            self._adopt(full)
        if self.wake.is_set():  # consumed here, so a full runner waits instead of spinning
            self.wake.clear()
            self._scan_due = True
        busy, ended = self._tend(now)
        if now >= self._next_expiry:
            self._next_expiry = now + min(self.scan_interval, self.lease_seconds / 4)
            busy |= bool(self._guard("cannot look for expired leases", self.expiry.requeue, mine=True))
        if self._may_take_work(now) and (now >= self._next_scan or self._scan_due):
            self._scan_due = False
            self._next_scan = now + self.scan_interval
            if self._policy_allows(now):  # adaptive sweeps: points for our free slots first
                free = self.opts.slots - len(self.slots)
                busy |= bool(self._guard("cannot propose", self.proposer.step, free))
            busy |= bool(self._guard("cannot look for jobs", self._take_work, now))
        # the jobs that ended are written up only now, once their slots run the next jobs: the
        # next script's start waits for no result.json or rename (the machine has other cores)
        for key, slot in ended.items():
            self._complete(slot)
            if slot.publishing:
                self.slots[key] = slot
        self._ending = {}
        if not self.stopping:
            self.kits.fill_soon()  # the next claims' folders, made while the scripts run
        jobs = [s.job_id for s in self.slots.values()]
        self._guard("cannot write the heartbeat", self.heartbeat.maybe_write, now, jobs, self._status_text())
        return busy

    def _guard(self, what: str, step: Any, *args: Any, mine: bool = False) -> Any:
        """One step of the loop whose file work the spool may refuse for a while (an EIO, ESTALE
        or ETIMEDOUT burst from a share, a full disk): said as storage trouble (new claims pause,
        running jobs go on), never a crash; the step is simply tried again next time."""
        try:
            if mine:
                return step({*self.slots, *self._ending}, self.fs)
            return step(*args)
        except (OSError, StorageError) as exc:
            self.health.trouble(what, exc)
            return None

    def _adopt(self, full: Capabilities) -> None:
        """The background probe's verdict: every holder of `caps` sees it (updated in place), and
        the jobs left out or waiting for it are judged again."""
        for f in dataclasses.fields(Capabilities):
            if f.name != "tags":
                setattr(self.caps, f.name, getattr(full, f.name))
        self.device = self.prov.device = self.writeup.who["device"] = pick_device(self.caps)
        self.writeup.who["python_version"] = self.caps.python_version
        self.usage.gpu_every = gpu_sampling_every(self.caps.cuda_devices, self.lease_seconds)
        self.scanner = Scanner(self.layout, keep=self._worth_a_look, env_allow=self.settings.env_allow)
        self._rest, self._scan_due = [], True
        self._log(f"probed {self.opts.python}: device {self.device} ({self.caps.gpu_reason})")

    def _status_text(self) -> str:
        if self.stopping:
            return "stopping"
        if not self._policy_ok[0]:
            return f"waiting: {self._policy_ok[1]}"
        return "running" if self.slots else "idle"

    def _may_take_work(self, now: float) -> bool:
        if self.stopping or len(self.slots) >= self.opts.slots:
            return False
        if now < self.health.pause_until:
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
        # A slot freed soon after a full scan: go on down that scan's list rather than read
        # pending/ again (one re-read per finished job made draining N jobs cost N^2). Jobs
        # others took meanwhile just fail to claim; new ones are seen at the next full scan.
        rest = bool(self._rest) and now < self._rest_until
        if rest:
            cands = self._rest
        else:
            cands = self.scanner.scan()
            self._rest_until = now + self.scan_interval
        self._rest = []
        self.gate.new_pass()
        runnable = unsettled = 0
        started = False
        spool_now: float | None = None
        for i, cand in enumerate(cands):
            if not self._may_take_work(now):
                self._rest = cands[i:]
                break
            if cand.job is None:
                if rest:
                    continue  # judged (settled, rejected) on full scans only, never on a stale read
                if cand.settling:
                    try:
                        spool_now = spool_now if spool_now is not None else self.clock.now()
                    except OSError as exc:
                        self.health.trouble("cannot read the spool's clock", exc)
                        break
                    if not self._settled(cand, spool_now):
                        unsettled += 1
                        continue
                self._reject(cand)
                started = True
                continue
            if cand.job.rev and not self.revs.available(cand.job.rev):
                continue  # this runner's repository lacks the commit: leave it to one that has it
            if self._probing and cand.job.requires is not None and cand.job.requires.gpu:
                unsettled += 1  # whether this machine has a usable GPU is not known yet
                continue
            if cand.job.after and (verdict := self.gate.verdict(cand.job)) != GO:
                if verdict == WAIT:  # what it waits for is queued or running: not drained yet
                    unsettled += 1
                else:
                    started |= fail_dependency(
                        self.layout, cand.entry, verdict, self.opts.name, self.writeup.fail_now, self.fs
                    )
                continue
            runnable += 1
            if not self._policy_allows(now):
                break
            started |= self._claim_and_start(cand, now)
        if rest:  # idle is judged on full scans only; an exhausted list means: read pending/ now
            return started or (not self._rest and self._take_work(now))
        self.idle = not self.slots and runnable == 0 and unsettled == 0 and not self._others_running()
        self.idle &= now >= self.health.pause_until  # a refused write is not "drained"
        if not self._policy_ok[0] and not self.slots:
            self.idle = True
        return started

    def _worth_a_look(self, cand: Candidate) -> bool:
        """False for a job whose `requires` this runner can never meet (its capabilities are fixed
        for its life): the scanner judges each job file once and leaves those out of its list."""
        req = cand.job.requires if cand.job is not None else None
        if req is not None and req.gpu and self._probing:
            return True  # judged again once the probe has said (a new scanner)
        return req is None or meets(req.model_dump(), self.caps)[0]

    @property
    def _probing(self) -> bool:
        return self.probe is not None and not self.probe.ready

    def _others_running(self) -> bool:
        """Jobs other runners hold: a drained spool has none (their leases may yet expire to us).
        Ours that ended this step are not written up yet: they are not others'."""
        return any(e.path.name not in self._ending for e in self.layout.entries(State.CLAIMED))

    def _settled(self, cand: Candidate, spool_now: float) -> bool:
        try:
            mtime = cand.entry.path.stat().st_mtime
        except OSError:
            try:  # a dangling or looping symlink: judged by its own time, so it is rejected in the end
                mtime = cand.entry.path.lstat().st_mtime
            except OSError:
                return False
        return spool_now - mtime >= self.settings.settle_seconds

    def _reject(self, cand: Candidate) -> None:
        try:
            reject(self.layout, cand.entry, cand.problem or "not a valid job", new_token(self.opts.name))
            self._log(f"rejected {cand.entry.path.name}: {cand.problem}")
        except StorageError as exc:
            self.health.trouble(f"cannot reject {cand.entry.path.name}", exc)

    def _claim_and_start(self, cand: Candidate, now: float) -> bool:
        got = self._claim(cand)
        if got is None:
            return False
        folder, job_id, attempt, raw, token = got
        try:
            job = parse_job(raw, job_id, env_allow=self.settings.env_allow)
        except SpoolError as exc:
            self.writeup.fail_now(folder, job_id, None, "invalid", str(exc), attempt, self.fs)
            return True
        slot = Slot(job_id, folder, job, attempt, utc_now(), now, last_renew=now)
        slot.original_name = cand.entry.path.name if job_id != cand.entry.id else None
        slot.token = token
        self.slots[folder.name] = slot
        self.started_count += 1
        return self._start(slot, now)

    def _claim(self, cand: Candidate) -> tuple[Path, str, int, bytes, str] | None:
        """Claim `cand`: (folder, job id, attempt, job bytes, token), or None (lost, or refused)."""
        token = new_token(self.opts.name)
        dest_id = None if cand.entry.is_folder else self._new_id_if_finished(cand.entry.id)
        kit = None if cand.entry.is_folder else self.kits.take()
        try:
            folder = claim(self.layout, cand.entry, token, dest_id=dest_id, kit=kit, fs=self.fs)
        except StorageError as exc:
            self.health.trouble(f"cannot claim {cand.entry.id}", exc)
            folder = None
        if folder is None:
            if kit is not None:
                self.kits.put_back(kit)
            return None
        job_id = dest_id or cand.entry.id
        if dest_id:
            self._log(f"{cand.entry.id} has run before: running this new copy as {dest_id}")
        try:
            # a cancel answered "stopping" just before a requeue travels with the folder: it wins
            cancelled = cand.entry.is_folder and (folder / CANCEL_FILE).exists()
            attempt = (archive_previous_attempt(folder, fs=self.fs) if cand.entry.is_folder else 0) + 1
            raw = read_file(folder / JOB_FILE)
        except (OSError, StorageError) as exc:  # the spool would not take a write: not the job's fault
            self._give_back(folder, job_id, f"cannot claim {job_id}", exc)
            return None
        self.health.ok()
        if cancelled:
            job_doc = _job_doc(raw, job_id)
            msg = "cancelled between two attempts"
            self.writeup.fail_now(folder, job_id, job_doc, "cancelled", msg, attempt, self.fs)
            self._log(f"{job_id}: cancelled before its next attempt")
            return None
        return folder, job_id, attempt, raw, token

    def _start(self, slot: Slot, now: float) -> bool:
        """Start the slot's script. A job that cannot start is failed at once; one whose commit
        this runner lacks goes back to pending/ for a runner that has it (False)."""
        try:
            script, git = self.revs.script_for(slot.job, slot.job_id)
            try:
                self._spawn(slot, script)
            finally:  # just after the start: the script does not wait for these
                self._write_claim(slot, now)
                try:
                    slot.prov = self.prov.begin(slot.job, git)
                except OSError as exc:  # the share refused a look (EIO): the job runs, provenance-less
                    self.health.trouble(f"cannot record the provenance of {slot.job_id}", exc)
            assert slot.proc is not None
            self.usage.add(slot.proc.pid)  # sampled from now on (its thread starts with the first job)
        except RevMissing as exc:  # found missing only now: hand it back for a runner that has it
            self.slots.pop(slot.folder.name, None)
            self.started_count -= 1
            if self.revs.hand_back(self.layout, slot.folder, slot.job_id, exc, self.opts.name, self.fs):
                self._log(f"handed back {slot.job_id}: {exc.reason}")
            return False
        except (SpoolError, OSError, ValueError) as exc:
            self._finish(slot, "failed", self._start_error(exc))
            self._log(f"could not start {slot.job_id} (attempt {slot.attempt}): {exc}")
            return True
        self._log(f"started {slot.job_id} (attempt {slot.attempt})")
        return True

    def _spawn(self, slot: Slot, script: Path) -> None:
        job, folder = slot.job, slot.folder
        inv = build_invocation(
            job,
            job_id=slot.job_id,
            python=self.opts.python,
            script=script,
            spool_root=self.spool.root,
            folder=folder,
            device=self.device,
            base_env=self.base_env,
            attempt=slot.attempt,
            env_allow=self.settings.env_allow,
            scripts_dir=self.scripts_dir,
        )
        spawn = None
        if self.warm is not None:  # a fork of the warm server, or cold with the reason
            spawn, slot.warm = self.warm.spawner(job)
        slot.stopper = self.stoppers.for_job(job.sweep, slot.job_id)
        slot.proc = Running(
            inv,
            folder,
            log_cap=self.log_cap,
            nice=self.opts.nice,
            still_ours=lambda: _still_there(folder / JOB_FILE),
            on_exit=self.wake.set,
            spawn=spawn,
            on_record=slot.stopper.on_record if slot.stopper is not None else None,
        )
        self.reaper.add(slot.proc.pid)

    def _start_error(self, exc: BaseException) -> dict[str, Any]:
        """The `error` of a job that could not start."""
        if isinstance(exc, SpoolError):
            kind = getattr(exc, "kind", "invalid")
            return {"kind": kind, "message": exc.message if not exc.field else f"{exc.field}: {exc.message}"}
        if isinstance(exc, OSError):
            return {"kind": "exit", "message": f"cannot start {self.opts.python}: {exc}"}
        # a NUL or lone surrogate cannot be an argument or variable
        return {"kind": "invalid", "message": f"its params, args or env cannot be passed to a script ({exc})"}

    def _write_claim(self, slot: Slot, now: float) -> None:
        """claim.json, written once the script has started (its start waits for no file create).

        Until it exists the folder counts as mid-claim, which nobody takes before watching it
        stand still for a whole lease; its mtime starts the lease (renewed into `lease` later).
        A spool that refuses it gets the job back in pending/, its script stopped at once."""
        record = {
            "token": slot.token,
            "runner": self.opts.name,
            "host": self.host,
            "attempt": slot.attempt,
            "claimed_at": slot.started_wall,
        }
        try:
            publish_json(slot.folder / CLAIM_FILE, record, fs=self.fs, blank=True)  # fsynced
        except StorageError as exc:
            self.health.trouble(f"cannot claim {slot.job_id}", exc)
            slot.handing_back = True
            if slot.proc is not None:
                slot.proc.stop(now, grace=0.0)

    def _give_back(self, folder: Path, job_id: str, what: str, exc: BaseException) -> None:
        self.health.trouble(what, exc)
        if isinstance(exc, FileNotFoundError):  # no job.json in it: nothing to give back
            drop_empty_claim(folder, self.fs)  # (a kit's things go with it; a job never)
            return
        try:
            move(self.layout, folder, job_id, State.PENDING, fs=self.fs)  # back, for later
        except StorageError:
            pass  # still claimed without a lease: it is handed on when the lease runs out

    # -- running jobs -----------------------------------------------------------
    def _tend(self, now: float) -> tuple[bool, dict[str, Slot]]:
        """Look after running jobs: (anything changed, the slots whose script has ended). Those
        leave `slots` (kept in `_ending` until written up) for `run_once` to write up."""
        changed = False
        ended: dict[str, Slot] = {}
        for key, slot in list(self.slots.items()):
            try:
                changed |= self._tend_one(key, slot, now, ended)
            except (OSError, StorageError) as exc:  # a share's burst: the job runs on, we retry
                self.health.trouble(f"cannot look after {slot.job_id}", exc)
        self._ending = ended
        return changed or bool(ended), ended

    def _tend_one(self, key: str, slot: Slot, now: float, ended: dict[str, Slot]) -> bool:
        """One running job: renew, retry a refused write-up, stop on cancel/timeout/hyperband,
        notice its end."""
        proc = slot.proc
        if proc is None:
            self.slots.pop(key, None)
            return True
        proc.tick(now)
        if not slot.lost and now - slot.last_renew >= self.lease_seconds / 4:
            slot.beat += 1
            slot.last_renew = now
            if not ((slot.folder / JOB_FILE).exists() and renew(slot.folder, slot.beat)):
                self._lose(slot, now)
        if slot.publishing:  # finished, but the spool refused its result: try again, lease kept
            if self.hand_back:
                self.slots.pop(key, None)  # stopping for good: the lease hands it on
            elif now >= slot.publish_at:
                self._published(slot, self.writeup.retry(slot, self.fs))
            return key not in self.slots
        if proc.kill_deadline is None and proc.proc.poll() is None:  # not once its script exited
            self._maybe_stop(slot, proc, now)
        if self.pauser is not None:  # --pause-when-busy; stopped time counts towards no timeout
            slot.started += self.pauser.tend(key, proc, now)
        if proc.kill_leftovers_if_exited() and self._written_up_now(slot, proc, now):
            self.reaper.remove(proc.pid)  # its group is ended (or being killed)
            if slot.stopper is not None:
                slot.stopper.close()
            ended[key] = self.slots.pop(key)
        return key in ended

    def _stop_early(self, slot: Slot, now: float) -> None:
        """Hyperband says stop: stopped as a cancel is, written up as done, marked stopped."""
        assert slot.proc is not None and slot.stopper is not None
        if slot.proc.proc.poll() is not None:
            return  # it ended on its own meanwhile: it ran to its end
        v = slot.early_stop = slot.stopper.verdict
        assert v is not None
        give_notice(slot.proc, slot.folder, now, grace_of(slot.job, self.settings))
        self._log(
            f"stopping {slot.job_id} early (hyperband): {v.value:g} at band {v.band}, "
            f"threshold {v.threshold:g}"
        )

    def _maybe_stop(self, slot: Slot, proc: Running, now: float) -> None:
        """Give a running job the stop notice if it is to stop: the runner stops for good, a
        cancel, its timeout, the machine is to be yielded, or it has been paused too long."""
        grace = grace_of(slot.job, self.settings)
        why = None
        if self.hand_back:
            why = ("stopped", f"runner {self.opts.name} on {self.host} was stopped")
        elif (slot.folder / CANCEL_FILE).exists():
            slot.cancelled = True
        elif slot.stopper is not None and slot.stopper.verdict is not None:
            self._stop_early(slot, now)
            return
        elif (limit := timeout_of(slot.job, self.settings)) and now - slot.started > limit:
            slot.timed_out = True
        elif reason := self._yield_reason(now):
            why = ("yield", f"runner {self.opts.name} on {self.host} yielded the machine: {reason}")
        elif self.pauser is not None and self.pauser.paused_for(slot.folder.name, now) > self.lease_seconds:
            why = ("paused", f"paused on {self.host} longer than the lease ({self.lease_seconds:g} s)")
        else:
            return
        slot.interrupt = why
        give_notice(proc, slot.folder, now, grace)

    def _written_up_now(self, slot: Slot, proc: Running, now: float) -> bool:
        """False while a script found dead of SIGTERM/SIGINT/SIGHUP/SIGKILL that we did not send
        waits (HOLD_SIGNALLED) for its runner to get the same signal: then it was interrupted."""
        if proc.kill_deadline is not None or proc.proc.returncode not in SIGNAL_DEATHS:
            return True
        if self.stopping and now - self._signalled_at <= HOLD_SIGNALLED + self.scan_interval:
            sig = -proc.proc.returncode
            slot.interrupt = ("stopped", f"killed by signal {sig} together with its runner {self.opts.name}")
            return True
        if slot.hold_until is None:
            slot.hold_until = now + HOLD_SIGNALLED
        return now >= slot.hold_until

    def _yield_reason(self, now: float) -> str:
        """With --yield: why the machine is to be given back now ("" while it need not be)."""
        if not self.opts.yield_ or not self.policy.yields_for:
            return ""
        if now >= self._yield_until:
            self._yield_until = now + POLICY_EVERY
            self._yield_why = self.policy.must_yield(read(self.policy))
        return self._yield_why

    def _lose(self, slot: Slot, now: float) -> None:
        slot.lost = True
        if slot.proc is not None:
            slot.proc.stop(now, grace=1.0)
        self._log(f"lost the lease on {slot.job_id}: stopping it, writing nothing more")

    def _complete(self, slot: Slot) -> None:
        self._published(slot, self.writeup.complete(slot, self.fs))

    def _finish(self, slot: Slot, state: str, error: dict[str, Any] | None) -> None:
        self._published(slot, self.writeup.finish(slot, state, error, self.fs))

    def _published(self, slot: Slot, went: State | None) -> None:
        if not slot.publishing:  # else kept, its lease renewed, until the spool takes the result
            self.slots.pop(slot.folder.name, None)
        if went is State.PENDING:  # a retry: pending/ is not drained after all
            self.idle = False
            self._scan_due = True
        elif went is not None and self.gate.waiting:  # jobs waiting (`after`) may go now
            self._scan_due = True

    # -- dead runners' jobs -----------------------------------------------------
    def _new_id_if_finished(self, job_id: str) -> str | None:
        """A new id for a dropped file whose id has run already: it runs again, nothing is lost."""
        for state in (State.DONE, State.FAILED):
            if (self.layout.state_dir(state) / job_id).exists():
                return new_id(job_id)
        return None

    # -- lifetime ---------------------------------------------------------------
    def request_stop(self) -> None:
        """First call: take no more work, finish what runs. Second: hand running jobs back
        (interrupted: the stop notice, then back to pending/ without spending a retry)."""
        if self.stopping:
            self.hand_back = True
        self.stopping = True
        self._signalled_at = time.monotonic()
        self.wake.set()

    def finished(self) -> bool:
        if self.stopping:
            return not self.slots
        if self.opts.max_jobs is not None and self.started_count >= self.opts.max_jobs and not self.slots:
            return True
        return self.opts.exit_when_idle and self.idle and not self.slots

    def run(self) -> int:
        """Loop until stopped (SIGINT/SIGTERM) or, with --exit-when-idle, drained."""
        while True:  # a share in an EIO burst at our start: said, waited out, never a crash
            try:
                self.layout.runners.mkdir(exist_ok=True)
                warnings = claim_safety_warnings(self.layout, self.opts.name)
                break
            except OSError as exc:
                self.health.trouble("cannot start on the spool", exc)
                time.sleep(STORAGE_RETRY)
        for warning in warnings:
            self._log(f"WARNING: {warning}")
        self.heartbeat.extra["warnings"] = warnings  # shown by `spool runners`, even with -q
        watcher = Watcher([self.layout.state_dir(State.PENDING)], self.wake, enabled=self.opts.events)
        old = {s: signal.signal(s, lambda *_: self.request_stop()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._guard("cannot tidy old kits", self.kits.clear)  # a crashed predecessor's of our name
            self.heartbeat.write(time.monotonic(), [], "starting")
            while True:
                self.run_once(time.monotonic())  # the loop's one reading of the clock per step
                if self.finished():
                    break
                timeout = 0.2 if self.slots else max(0.01, self._next_scan - time.monotonic())
                self.wake.wait(min(timeout, self.scan_interval))
        finally:
            watcher.stop()
            self._guard("cannot remove our kits", self.kits.clear)
            if self.warm is not None:
                self.warm.close()
            self.usage.close()
            self.reaper.close()  # scripts still listed (a crash of this loop) are stopped
            self.heartbeat.write(time.monotonic(), [], "stopped")
            self.clock.remove()
            if self.probe is not None:  # let a probe under way finish: its verdict is cached
                self.probe.wait(PROBE_WAIT_AT_EXIT)
            for s, h in old.items():  # last: a second signal while shutting down must not kill us
                signal.signal(s, h)
        return 0
