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
import time
from typing import Any

from runner.core.claiming import POLICY_EVERY, Claiming
from runner.core.discover import Candidate, Scanner, Watcher
from runner.core.execute import Running
from runner.core.interrupt import HOLD_SIGNALLED, SIGNAL_DEATHS, give_notice, grace_of
from runner.core.lease import renew
from runner.core.options import RunnerOptions
from runner.core.parts import RunnerParts, Spawners, build_parts
from runner.core.syncguard import claim_safety_warnings
from runner.core.usage import gpu_sampling_every
from runner.core.writeup import STORAGE_RETRY, Slot, timeout_of
from runner.machine.capabilities import Capabilities, pick_device
from runner.machine.policy import read
from spool.api import Spool
from spool.errors import StorageError
from spool.jobs import CANCEL_FILE
from spool.layout import JOB_FILE
from spool.states import State

__all__ = ["Runner", "Slot"]

PROBE_WAIT_AT_EXIT = 30.0  # seconds a stopping runner waits for its probe (so the next start has it)


class Runner(Claiming):
    """Watches one spool, claims what this machine can run, runs it, writes what happened."""

    def __init__(
        self,
        spool: Spool,
        opts: RunnerOptions,
        parts: RunnerParts | None = None,
        *,
        caps: Capabilities | None = None,
        log: Any = None,
        warm: Spawners | None = None,
    ):
        """A runner from its `parts` (`runner.core.parts.build_parts` makes the real ones from
        the options, with these `caps` and `warm` when given)."""
        self._log = log or (lambda msg: None)
        if parts is None:
            parts = build_parts(spool, opts, self._log, caps=caps, warm=warm)
        self.spool = spool
        self.opts = opts
        self.settings = spool.settings
        self.layout = spool.layout
        self.scripts_dir = spool.scripts_dir
        self.lease_seconds = self.settings.lease_seconds
        self.scan_interval = opts.scan_interval or self.settings.scan_interval
        self.log_cap = int(self.settings.log_cap_mb * 1024 * 1024)
        self.host = socket.gethostname()
        self.base_env = dict(os.environ)  # what jobs inherit; copied once (decoding it costs per job)
        self._parts(parts)
        self.scanner = Scanner(self.layout, keep=self._worth_a_look, env_allow=self.settings.env_allow)
        self._warned: set[str] = set()
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
        self._policy_until = 0.0
        self._policy_ok: tuple[bool, str] = (True, "")
        self._yield_until = 0.0
        self._yield_why = ""
        self._signalled_at = -1e9

    def _parts(self, parts: RunnerParts) -> None:
        """Take the collaborators in (see `RunnerParts` for what each is for)."""
        self.caps = parts.caps
        self.probe = parts.probe
        self.device = parts.device
        self.fs = parts.fs
        self.clock = parts.clock
        self.health = parts.health
        self.policy = parts.policy
        self.pauser = parts.pauser
        self.kits = parts.kits
        self.reaper = parts.reaper
        self.descendants = parts.descendants
        self.expiry = parts.expiry
        self.heartbeat = parts.heartbeat
        self.prov = parts.prov
        self.usage = parts.usage
        self.writeup = parts.writeup
        self.revs = parts.revs
        self.stoppers = parts.stoppers
        self.proposer = parts.proposer
        self.gate = parts.gate
        self.wake = parts.wake
        self.warm = parts.warm  # warm mode's fork server (runner.cli.build_runner), or None: all cold
        self.heartbeat.extra["revs_missing"] = self.revs.notes  # why pinned jobs are left to others

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
            if proc.kin.cgroup is not None:
                self.reaper.remove_cgroup(str(proc.kin.cgroup))
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
        # the same signal: ours came no earlier than just before the script died (its reaping
        # time, not this step's: a step slowed by a loaded machine is no failure), or since;
        # later than the hold after this step saw the death, it is not waited for
        died = proc.ended if proc.ended is not None else now
        if self.stopping and self._signalled_at >= died - (HOLD_SIGNALLED + self.scan_interval):
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
            self.descendants.close()  # this runner's job cgroups, emptied as each job ended
            self.heartbeat.write(time.monotonic(), [], "stopped")
            self.clock.remove()
            if self.probe is not None:  # let a probe under way finish: its verdict is cached
                self.probe.wait(PROBE_WAIT_AT_EXIT)
            for s, h in old.items():  # last: a second signal while shutting down must not kill us
                signal.signal(s, h)
        return 0
