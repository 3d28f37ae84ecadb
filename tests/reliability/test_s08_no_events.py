"""Scenario 8, no events: jobs keep appearing while the runners get no file events at all
(`--no-events`, as on a network folder); the periodic scan of pending/ alone finds every one."""

from __future__ import annotations

import threading
import time

import pytest
from rkit import count, drop, finished, job_bytes, size, timeout_for, wait_for

from spool.states import State

N = size(20000, 300)
RUNNERS = 2


@pytest.mark.slow
@timeout_for(3600, 150)
def test_every_job_runs_without_file_events(scenario):
    sp, runners = scenario.spool(scan_interval=1.0)
    jobs = {f"quiet-{i:05d}": job_bytes(i) for i in range(N)}
    items = list(jobs.items())
    for j, raw in items[: N // 4]:  # a backlog ...
        drop(sp, j, raw)

    def trickle() -> None:  # ... and the rest arriving in bursts while the runners work
        rest = items[N // 4 :]
        step = max(1, len(rest) // 50)
        for k in range(0, len(rest), step):
            for j, raw in rest[k : k + step]:
                drop(sp, j, raw)
            time.sleep(0.05)

    for k in range(RUNNERS):
        runners.start("--slots", "2", name=f"quiet{k}", events=False)
    t = threading.Thread(target=trickle)
    t.start()
    t.join()
    wait_for(lambda: finished(sp) == N and count(sp, State.CLAIMED) == 0, 3300 if N > 1000 else 120, 0.5)
    runners.stop_all()
    v = scenario.check(sp, {f"{j}.json": raw for j, raw in jobs.items()})
    assert v.done == N and all(n == 1 for n in v.runs.values()) and len(v.runs) == N
    scenario.figures("8 no events", f"{N} jobs, {RUNNERS} runners --no-events", v)
