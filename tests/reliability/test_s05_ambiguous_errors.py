"""Scenario 5, ambiguous errors: 1% of renames report EIO, half after really renaming (a lost
NFS reply), half without. The protocol checks the outcome on disk before concluding, so no
job is lost and no job is ever held by two claimers at once.

Two levels: (a) claimer processes calling `spool.protocol` directly (claims, requeues, crashes
and take-overs) for the issue's 10,000 claims; (b) real `Runner` objects in threads whose `fs`
is the faulty one, running real scripts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from rkit import JOB_PYTHON, count, drop_many, finished, flaky_fs, job_bytes, size, timeout_for

from runner.core.loop import Runner
from runner.core.options import RunnerOptions
from runner.machine.capabilities import detect
from spool.states import State

HERE = Path(__file__).resolve().parent
JOBS_A = size(7000, 1000)  # about 1.45 claims per job: 10,000 claims at full size
WORKERS = 4
JOBS_B = size(1000, 150)


@pytest.mark.slow
@timeout_for(1800, 120)
def test_protocol_claims_with_ambiguous_renames(scenario, tmp_path):
    sp, _ = scenario.spool()
    submitted = drop_many(sp, {f"amb-{i:05d}": job_bytes(i) for i in range(JOBS_A)})
    logs = [tmp_path / f"worker{k}.log" for k in range(WORKERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "ambiguous_worker.py"), str(sp.root), f"w{k}", str(k), str(log)]
        )
        for k, log in enumerate(logs)
    ]
    for p in procs:
        assert p.wait(1500) == 0

    holds: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    stats = {"renames": 0, "eio_before": 0, "eio_after": 0}
    bad = []
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                for k, n in json.loads(line).items():
                    stats[k] += n
                continue
            t, event, job, token = line.split()
            holds[job].append((float(t), event, token))
            if event == "lost":
                bad.append(f"{job}: {token} found its claimed job moved by someone else")
    claims = 0
    requeued_then_claimed = 0
    for job, events in holds.items():
        events.sort()
        holder = None
        dones = 0
        for i, (_t, event, token) in enumerate(events):
            if event == "lost-requeue":
                # fine only if the requeue was ours: the job's next claim, by someone else,
                # comes after our "releasing" (a take-over while we held it would come before)
                released = max(t for t, e, tok in events[:i] if tok == token and e == "releasing")
                if any(e == "claim" and tok != token and t > released for t, e, tok in events):
                    requeued_then_claimed += 1
                else:
                    bad.append(f"{job}: {token} lost its requeue and nobody claimed the job after")
            elif event == "claim":
                claims += 1
                if holder is not None:
                    bad.append(f"{job}: claimed by {token} while {holder} held it")
                holder = token
            elif event == "releasing":
                holder = None
            elif event == "done":
                dones += 1
        if dones != 1:
            bad.append(f"{job}: moved to done {dones} times")
    assert not bad, bad[:20]
    v = scenario.check(sp, submitted)
    assert v.done == JOBS_A
    assert claims >= JOBS_A and stats["eio_before"] > 0 and stats["eio_after"] > 0
    scenario.figures(
        "5a ambiguous renames",
        f"{claims} claims by {WORKERS} processes, 1% EIO",
        v,
        runs=claims,
        requeued_then_claimed=requeued_then_claimed,
        **stats,
    )


@pytest.mark.slow
@timeout_for(1800, 120)
def test_runners_with_ambiguous_renames(scenario):
    sp, _ = scenario.spool(lease_seconds=3, scan_interval=0.1)
    submitted = drop_many(sp, {f"ramb-{i:05d}": job_bytes(i, retries=3) for i in range(JOBS_B)})
    caps = detect(JOB_PYTHON, [], probe_torch=False)
    fs = flaky_fs(0.01, 5)
    errors: list[BaseException] = []
    runners = []
    for k in range(3):
        r = Runner(
            sp, RunnerOptions(name=f"amb{k}", python=JOB_PYTHON, nice=0, heartbeat_seconds=60), caps=caps
        )
        r.fs = fs
        runners.append(r)
    stop = threading.Event()

    def drive(r: Runner) -> None:
        try:
            while not stop.is_set():
                if not r.run_once():
                    time.sleep(0.01)
        except BaseException as exc:  # a crash of the loop is what this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    deadline = time.monotonic() + (1500 if JOBS_B > 200 else 100)
    try:
        while time.monotonic() < deadline and not errors:
            if finished(sp) == JOBS_B and count(sp, State.CLAIMED) == 0:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, repr(errors[0])
    v = scenario.check(sp, submitted)
    assert v.done == JOBS_B, v.summary()
    twice = {j: n for j, n in v.runs.items() if n > v.attempts[f"{j}.json"]}
    assert not twice, f"scripts started more often than attempts were recorded: {twice}"
    scenario.figures(
        "5b runners, ambiguous renames",
        f"3 runners x {JOBS_B} jobs, 1% EIO",
        v,
        renames=fs.calls,
        eio_before=fs.before,
        eio_after=fs.after,
    )
