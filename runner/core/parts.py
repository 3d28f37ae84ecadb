"""What a runner is made of. `build_parts` builds the real collaborators from the options; a
test builds `RunnerParts` from its own (no fork server, a fault-injecting `FsOps`, fixed
capabilities) and hands them to `Runner(spool, opts, parts=...)`. Nothing here starts a
process: the reaper and the usage sampler start with the first script, the probe (when the
capabilities are not given) runs on a thread of its own.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.core.contract import Invocation
from runner.core.descendants import Descendants
from runner.core.gate import AfterGate
from runner.core.heartbeat import Heartbeat
from runner.core.kits import Kits
from runner.core.options import RunnerOptions
from runner.core.propose import Proposer
from runner.core.reaper import Reaper
from runner.core.stopper import StopperFactory
from runner.core.takeover import Expiry
from runner.core.usage import UsageSampler, gpu_sampling_every
from runner.core.wake import Wake
from runner.core.writeup import StorageHealth, WriteUp
from runner.machine.capabilities import Capabilities, meets, pick_device
from runner.machine.pause import Pauser
from runner.machine.policy import IdlePolicy
from runner.machine.probe import CapsProbe
from runner.pins.provenance import Provenance
from runner.pins.revcache import RevCache
from spool.api import Spool
from spool.clock import SpoolClock
from spool.protocol import FsOps

__all__ = ["RunnerParts", "Spawners", "build_parts"]

Log = Callable[[str], None]


class Spawners(Protocol):
    """Warm mode as the loop sees it (`runner.warm.pool.WarmPool`): per job, a `spawn` for
    `Running` (None: cold) and the job's `warm` record; `close` at the end."""

    def spawner(self, job: Any) -> tuple[Callable[[Invocation], Any] | None, dict[str, Any]]: ...

    def close(self) -> None: ...


@dataclass
class RunnerParts:
    """A runner's collaborators. `warm` None: every job starts cold (no fork server); `probe`
    None: the capabilities were given, nothing is probed."""

    caps: Capabilities
    probe: CapsProbe | None  # torch and the GPU probed on a thread, jobs taken meanwhile
    device: str
    fs: FsOps  # every rename goes through it (tests inject faults here)
    clock: SpoolClock
    health: StorageHealth  # a spool refusing writes pauses new claims
    policy: IdlePolicy
    pauser: Pauser | None  # --pause-when-busy
    kits: Kits  # job folders made ahead
    reaper: Reaper  # our scripts die with us, even by SIGKILL
    expiry: Expiry
    heartbeat: Heartbeat
    prov: Provenance
    usage: UsageSampler
    writeup: WriteUp
    revs: RevCache
    stoppers: StopperFactory  # early termination
    proposer: Proposer
    gate: AfterGate  # jobs with `after` wait for their dependencies
    wake: Wake = field(default_factory=Wake)  # set by signal handlers too: never a lock
    warm: Spawners | None = None
    descendants: Descendants = field(default_factory=Descendants)  # what each job starts, ended with it


def build_parts(
    spool: Spool,
    opts: RunnerOptions,
    log: Log,
    *,
    caps: Capabilities | None = None,
    fs: FsOps | None = None,
    warm: Spawners | None = None,
) -> RunnerParts:
    """The real parts for a runner with these options (capabilities probed unless given)."""
    layout, settings, wake = spool.layout, spool.settings, Wake()
    probe = None
    if caps is None:
        probe = CapsProbe(opts.python, opts.tags, log=log, on_done=wake.set)
        caps = probe.caps
    device = pick_device(caps)
    fs = fs or FsOps()
    clock = SpoolClock(layout, opts.name)
    health = StorageHealth(log)
    prov = Provenance(spool.root, spool.scripts_dir, opts.python, caps, device)
    usage = UsageSampler(gpu_every=gpu_sampling_every(caps.cuda_devices, settings.lease_seconds))
    held = caps  # updated in place when the probe has said: the proposer sees the verdict
    return RunnerParts(
        caps=caps,
        probe=probe,
        device=device,
        fs=fs,
        clock=clock,
        health=health,
        policy=IdlePolicy.from_options(
            max_load=opts.max_load,
            hours=opts.hours,
            on_ac_power=opts.on_ac_power,
            when_user_idle_min=opts.when_user_idle,
        ),
        pauser=Pauser.from_options(opts.when_user_idle, log) if opts.pause_when_busy else None,
        kits=Kits(layout.runners, opts.name, opts.slots),
        reaper=Reaper(log),
        expiry=Expiry(layout, clock, settings, opts.name, log=log, trouble=health.trouble),
        heartbeat=Heartbeat(layout, opts, caps, spool.root),
        prov=prov,
        usage=usage,
        writeup=WriteUp(layout, settings, prov, who(opts, caps, device), health, log, usage=usage),
        revs=RevCache(spool.scripts_dir, spool.root, fetch=opts.git_fetch, log=log),
        stoppers=StopperFactory(layout, wake.set, log),
        proposer=Proposer(spool, fs, lambda req: meets(req, held)[0], log),
        gate=AfterGate(layout),
        wake=wake,
        warm=warm,
        descendants=Descendants(opts.descendants, log),
    )


def who(opts: RunnerOptions, caps: Capabilities, device: str) -> dict[str, Any]:
    """What every result of this runner says about who ran it."""
    return {
        "runner": opts.name,
        "host": socket.gethostname(),
        "python": opts.python,
        "python_version": caps.python_version,
        "device": device,
    }
