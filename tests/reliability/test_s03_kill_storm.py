"""Scenario 3, kill storm: random runners SIGKILLed (and restarted, as a service manager
would) over and over while short jobs run. Every job must still end exactly once."""

from __future__ import annotations

import random
import signal
import time

import pytest
from rkit import count, drop_many, finished, job_bytes, size, timeout_for, wait_for

from spool.states import State

N = size(1000, 200)
KILLS = size(60, 12)
RUNNERS = 4
LEASE = 2.0


@pytest.mark.slow
@timeout_for(1800, 150)
def test_kill_storm_every_job_ends_once(scenario):
    sp, runners = scenario.spool(lease_seconds=LEASE, scan_interval=0.2)
    rng = random.Random(3)
    jobs = {
        f"storm-{i:05d}": job_bytes(i, params={"s": rng.choice([0, 0.05, 0.1, 0.3, 0.6])}, retries=20)
        for i in range(N)
    }
    submitted = drop_many(sp, jobs)
    live = {k: runners.start("--slots", "2", name=f"storm{k}", quiet=False) for k in range(RUNNERS)}
    kills = 0
    while kills < KILLS and finished(sp) < N:
        time.sleep(rng.uniform(0.1, 0.6))
        k = rng.randrange(RUNNERS)
        runners.kill(live[k], signal.SIGKILL)
        kills += 1
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0, LEASE))  # sometimes the machine stays down a while
        live[k] = runners.start("--slots", "2", name=f"storm{k}", quiet=False)
    assert kills >= KILLS, f"only {kills} kills before the jobs ran out: make the jobs longer"
    wait_for(lambda: finished(sp) == N and count(sp, State.CLAIMED) == 0, 600, 0.2, "every job ended")
    runners.stop_all()

    v = scenario.check(sp, submitted)
    assert v.done == N, v.summary()
    retried = sum(1 for n in v.attempts.values() if n > 1)
    assert retried <= 2 * kills  # a kill costs at most the two jobs that runner held
    scenario.figures(
        "3 kill storm", f"{N} short jobs, {kills} SIGKILLs, {RUNNERS} runners", v, jobs_retried=retried
    )
