"""Taking work: which pending jobs this runner tries (`_take_work`, the idle judgement), the
claim (one rename through `spool.protocol.claim`), and the script's start (`_start`: the
invocation, warm or cold, `claim.json` just after). A part of `runner.core.loop.Runner`,
kept in a module of its own; the loop's state it reads is declared below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.core.contract import build_invocation
from runner.core.descendants import Descendants
from runner.core.discover import Candidate, Scanner
from runner.core.execute import Running
from runner.core.gate import GO, WAIT, AfterGate, fail_dependency
from runner.core.kits import Kits
from runner.core.options import RunnerOptions
from runner.core.reaper import Reaper
from runner.core.stopper import StopperFactory
from runner.core.takeover import new_id
from runner.core.usage import UsageSampler
from runner.core.wake import Wake
from runner.core.writeup import Slot, StorageHealth, WriteUp
from runner.machine.capabilities import Capabilities, meets
from runner.machine.policy import IdlePolicy, read
from runner.machine.probe import CapsProbe
from runner.pins.provenance import Provenance
from runner.pins.revcache import RevCache, RevMissing
from spool.api import Spool
from spool.clock import SpoolClock
from spool.errors import SpoolError, StorageError
from spool.jobs import CANCEL_FILE, new_token, reject, utc_now
from spool.layout import CLAIM_FILE, JOB_FILE, Layout
from spool.model import parse_job
from spool.protocol import FsOps, archive_previous_attempt, claim, drop_empty_claim, move, publish_json
from spool.settings import Settings
from spool.states import State
from spool.untrusted import read_file

if TYPE_CHECKING:
    from runner.core.parts import Spawners

__all__ = ["Claiming", "POLICY_EVERY"]

POLICY_EVERY = 5.0


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


class Claiming:
    """The claiming half of the runner (mixed into `Runner`, which makes all of this)."""

    spool: Spool
    opts: RunnerOptions
    settings: Settings
    layout: Layout
    scripts_dir: Path
    scan_interval: float
    log_cap: int
    host: str
    base_env: dict[str, str]
    caps: Capabilities
    probe: CapsProbe | None
    device: str
    fs: FsOps
    clock: SpoolClock
    health: StorageHealth
    policy: IdlePolicy
    kits: Kits
    reaper: Reaper
    descendants: Descendants
    prov: Provenance
    usage: UsageSampler
    writeup: WriteUp
    revs: RevCache
    stoppers: StopperFactory
    gate: AfterGate
    wake: Wake
    warm: Spawners | None
    scanner: Scanner
    slots: dict[str, Slot]
    _ending: dict[str, Slot]
    _rest: list[Candidate]
    _rest_until: float
    _warned: set[str]
    _policy_until: float
    _policy_ok: tuple[bool, str]
    started_count: int
    stopping: bool
    idle: bool
    _log: Any

    def _finish(self, slot: Slot, state: str, error: dict[str, Any] | None) -> None:
        raise NotImplementedError  # the loop's (runner.core.loop.Runner._finish)

    def _may_take_work(self, now: float) -> bool:
        if self.stopping or len(self.slots) >= self.opts.slots:
            return False
        if now < self.health.pause_until:
            return False
        return self.opts.max_jobs is None or self.started_count < self.opts.max_jobs

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
            descendants=self.descendants,
            on_start=self.reaper.add,
        )
        if slot.proc.kin.cgroup is not None:  # a helper out of its session dies with us too
            self.reaper.add_cgroup(str(slot.proc.kin.cgroup))

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

    def _new_id_if_finished(self, job_id: str) -> str | None:
        """A new id for a dropped file whose id has run already: it runs again, nothing is lost."""
        for state in (State.DONE, State.FAILED):
            if (self.layout.state_dir(state) / job_id).exists():
                return new_id(job_id)
        return None
