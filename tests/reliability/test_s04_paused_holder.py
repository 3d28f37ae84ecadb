"""Scenario 4, paused holder: a runner is frozen (SIGSTOP) mid-job past its lease; another
runner takes the job over and finishes it; then the frozen one wakes (SIGCONT).

The stale runner must write nothing into the job: it re-checks its claim (the folder named by
its token) before every write and every publish, so it finds the job gone and stops its script.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from rkit import drop, job_bytes, marker_pids, size, timeout_for, wait_for
from runner_kit import gone

from spool.states import State

LEASE = 2.0
ROUNDS = size(3, 1)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.slow
@timeout_for(600, 120)
@pytest.mark.parametrize("frozen", ["runner", "runner and script"])
def test_paused_holder_writes_nothing_after_it_wakes(scenario, frozen):
    sp, runners = scenario.spool(lease_seconds=LEASE, scan_interval=0.2)
    submitted = {}
    for rnd in range(ROUNDS):
        jid = f"paused-{rnd}"
        raw = job_bytes(rnd, params={"s": 2.5 * LEASE, "tick": 0.1}, retries=1)
        drop(sp, jid, raw)
        submitted[f"{jid}.json"] = raw
        sleepy = runners.start(name=f"sleepy{rnd}", quiet=False)
        wait_for(
            lambda j=jid: (
                len([p for p in os.listdir(sp.root / "data" / "runs") if p.startswith(j + ".")]) == 1
                if (sp.root / "data" / "runs").exists()
                else False
            ),
            30,
            0.05,
            "the script started",
        )
        (claimed,) = list(sp.layout.state_dir(State.CLAIMED).iterdir())
        wait_for(
            lambda c=claimed: (c / "stdout.log").exists() and (c / "stdout.log").stat().st_size > 0, 10, 0.05
        )
        (script_pid,) = [p for p in marker_pids(sp) if os.path.exists(f"/proc/{p}")]
        os.kill(sleepy.pid, signal.SIGSTOP)
        if frozen == "runner and script":
            os.killpg(script_pid, signal.SIGSTOP)
        t_stop = time.monotonic()

        rescuer = runners.start(name=f"rescuer{rnd}", quiet=False)
        done = sp.layout.state_dir(State.DONE) / jid
        wait_for(lambda d=done: (d / "result.json").exists(), 60, 0.05, "the rescuer finished the job")
        assert time.monotonic() - t_stop >= LEASE * 0.75  # not taken before the lease ran out
        before = snapshot(done)

        if frozen == "runner and script":
            os.killpg(script_pid, signal.SIGCONT)
        os.kill(sleepy.pid, signal.SIGCONT)
        wait_for(lambda s=sleepy: "lost the lease" in s.stderr(), 10, 0.05, "the stale runner noticed")
        wait_for(
            lambda p=script_pid: gone(p),
            10,
            0.05,
            "stale script stopped",
        )
        time.sleep(1.0)  # time for any stray write to land
        assert snapshot(done) == before, "the stale runner wrote into the job after waking"
        assert sleepy.alive(), "the stale runner died instead of carrying on"

        rec = (done / "result.json").read_text()
        assert f'"runner": "rescuer{rnd}"' in rec and '"attempt": 2' in rec
        lost = (done / "attempts" / "1" / "result.json").read_text()
        assert "lost_lease" in lost and f"sleepy{rnd}" in lost
        pids = {
            ln.split()[1] for ln in (done / "stdout.log").read_text().splitlines() if ln.startswith("pid ")
        }
        assert pids and str(script_pid) not in pids, "the final attempt's log holds the stale script's lines"
        runners.stop_all()
        assert sleepy.proc.returncode == 0 and rescuer.proc.returncode == 0

    v = scenario.check(sp, submitted)
    scenario.figures(f"4 paused holder ({frozen})", f"{ROUNDS} x SIGSTOP past a {LEASE:g} s lease", v)
