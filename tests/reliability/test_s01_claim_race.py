"""Scenario 1, claim race: four runners race for the same noop jobs on a local folder.

Every job must run exactly once (one script start, attempt 1) and end in done/.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from rkit import drop, job_bytes, size, timeout_for

N = size(4000, 400)
RUNNERS = 4


@pytest.mark.slow
@timeout_for(3600, 240)
def test_four_runners_race_for_every_job(scenario):
    sp, runners = scenario.spool(scan_interval=0.2, lease_seconds=8)
    jobs = {f"race-{i:05d}": job_bytes(i) for i in range(N)}
    first = dict(list(jobs.items())[: N // 2])
    for j, raw in first.items():  # half waiting when the runners start ...
        drop(sp, j, raw, age=7200)  # queued two hours ago

    def late() -> None:  # ... and half dropped while they race
        for j, raw in list(jobs.items())[N // 2 :]:
            drop(sp, j, raw)

    for k in range(RUNNERS):
        runners.start(name=f"race{k}", exit_when_idle=True)
    t = threading.Thread(target=late)
    t.start()
    t.join()
    runners.wait_all(timeout=3000 if N > 1000 else 200)

    v = scenario.check(sp, {f"{j}.json": raw for j, raw in jobs.items()})
    assert v.done == N
    twice = {j: n for j, n in v.runs.items() if n != 1}
    assert not twice and len(v.runs) == N, f"jobs not run exactly once: {list(twice.items())[:10]}"
    assert all(v.attempts[f"{j}.json"] == 1 for j in jobs)
    shares = Counter(rec["runner"] for rec in v.records.values())
    assert len(shares) == RUNNERS, shares
    scenario.figures("1 claim race", f"{RUNNERS} runners x {N} noop jobs", v, shares=dict(shares))
