"""Scenario 11, power loss: every runner and every script SIGKILLed at the same instant,
mid-work, then everything restarted. Every job is resolved, and nothing stays in claimed/
longer than the lease allows (a claim cut between its rename and its claim.json waits two)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from rkit import count, drop_many, finished, job_bytes, kill_stray_scripts, size, timeout_for, wait_for

from spool.states import State

ROUNDS = size(6, 2)
PER_ROUND = size(200, 60)
RUNNERS = 4
LEASE = 2.0


@pytest.mark.slow
@timeout_for(1800, 120)
def test_power_loss_then_restart_resolves_everything(scenario):
    sp, runners = scenario.spool(lease_seconds=LEASE, scan_interval=0.2)
    rng = random.Random(11)
    submitted: dict[str, bytes] = {}
    recovery: list[float] = []
    cut_claimed: list[int] = []
    for rnd in range(ROUNDS):
        jobs = {
            f"power-{rnd}-{i:04d}": job_bytes(i, params={"s": rng.choice([0.1, 0.3, 1.0])}, retries=20)
            for i in range(PER_ROUND)
        }
        submitted.update(drop_many(sp, jobs))
        procs = [runners.start("--slots", "2", name=f"box{k}") for k in range(RUNNERS)]
        if rnd:  # after a cut: how long until claimed/ holds only live claims again?
            stale = set(sp.layout.state_dir(State.CLAIMED).iterdir())
            t0 = time.monotonic()
            wait_for(lambda s=stale: not (s & set(sp.layout.state_dir(State.CLAIMED).iterdir())), 30, 0.05)
            recovery.append(time.monotonic() - t0)
        time.sleep(rng.uniform(0.5, 2.5))
        for rp in procs:  # the power goes: runners and their scripts at once
            try:
                os.kill(rp.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_stray_scripts(sp)
        for rp in procs:
            rp.killed = True
            rp.proc.wait(10)
        cut_claimed.append(count(sp, State.CLAIMED))

    t0 = time.monotonic()
    for k in range(RUNNERS):
        runners.start("--slots", "2", name=f"box{k}", exit_when_idle=True)
    stale = set(sp.layout.state_dir(State.CLAIMED).iterdir())
    wait_for(lambda: not (stale & set(sp.layout.state_dir(State.CLAIMED).iterdir())), 30, 0.05)
    recovery.append(time.monotonic() - t0)
    wait_for(lambda: finished(sp) == len(submitted), 600, 0.2, "every job ended")
    runners.wait_all(60)

    v = scenario.check(sp, submitted)
    assert v.done == len(submitted), v.summary()
    assert max(recovery) <= 2 * LEASE + 3, recovery  # nothing stuck in claimed/ past the lease
    scenario.figures(
        "11 power loss",
        f"{ROUNDS} cuts x {PER_ROUND} jobs, {RUNNERS} runners",
        v,
        claimed_at_cuts=cut_claimed,
        worst_recovery_s=round(max(recovery), 2),
    )
