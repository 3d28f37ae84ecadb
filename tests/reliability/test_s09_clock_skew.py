"""Scenario 9, clock skew: runners whose wall clocks are 300 s ahead and 300 s behind.

Leases are judged by the spool's clock (the mtime of a file just written there), never by a
runner's own clock, so: no lease is ever taken early, and an expired one is still taken on time.

The skew is put into real runner processes with LD_PRELOAD, as `faketime` does. libfaketime
0.9.10 (Debian 12) cannot be used: it also shifts the monotonic clock, which Python 3.11 hands
to the kernel unshifted in timed waits (an `Event.wait(0.3)` never returns), and with that
disabled its `clock_nanosleep` makes `time.sleep` fail with EINVAL. So the test builds a
20-line preload that shifts only what a badly set machine has wrong: the wall clock
(CLOCK_REALTIME, gettimeofday, time). Monotonic time, sleeps and file times stay real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from clock_kit import SHIM
from rkit import drop, finished, job_bytes, marker_pids, size, timeout_for, wait_for

from spool.states import State

LEASE = 2.0
SKEWS = {"ahead": 300, "behind": -300}
ROUNDS = size(4, 1)

# the preload's C source is `clock_kit.SHIM` (shared with the --yield test)


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the wall-clock preload (Debian package gcc)")
    d = tmp_path_factory.mktemp("skew")
    (d / "skew.c").write_text(SHIM)
    r = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(d / "skew.so"), str(d / "skew.c"), "-ldl"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot build the wall-clock preload: {r.stderr.strip()[:300]}")
    probe = subprocess.run(
        ["python3", "-c", "import time; print(time.time())"],
        env={**os.environ, "LD_PRELOAD": str(d / "skew.so"), "HOUSESPOOL_WALL_SKEW": "300"},
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or abs(float(probe.stdout) - time.time() - 300) > 30:
        pytest.skip(f"the wall-clock preload does not take effect here: {probe.stderr.strip()[:300]}")
    return d / "skew.so"


def skewed(shim: Path, seconds: int) -> dict[str, str]:
    return {"LD_PRELOAD": str(shim), "HOUSESPOOL_WALL_SKEW": str(seconds)}


def _skew_seen(rec: dict) -> float:
    """How far the recording runner's clock was from ours (started is its wall clock)."""
    return datetime.fromisoformat(rec["started"]).timestamp() - time.time()


@pytest.mark.slow
@timeout_for(900, 120)
def test_skewed_runners_never_take_a_live_lease(scenario, shim):
    sp, runners = scenario.spool(lease_seconds=LEASE, scan_interval=0.2)
    for name, off in SKEWS.items():
        runners.start("--slots", "2", name=name, env=skewed(shim, off))
    runners.start("--slots", "2", name="right")
    time.sleep(1.5)  # all three up before the jobs appear: they race for them
    submitted = {}
    n = 6 * ROUNDS
    for i in range(n):  # each job outlives its lease 2.5 times over: renewals must be honoured
        raw = job_bytes(i, params={"s": 2.5 * LEASE})
        drop(sp, f"skew-{i:03d}", raw)
        submitted[f"skew-{i:03d}.json"] = raw
    wait_for(lambda: finished(sp) == n, 60 * ROUNDS, 0.1, "all long jobs ended")
    runners.stop_all()
    v = scenario.check(sp, submitted)
    assert v.done == n and all(a == 1 for a in v.attempts.values()), v.summary()  # 0 premature requeues
    by_runner = {r["runner"] for r in v.records.values()}
    assert by_runner == {"ahead", "behind", "right"}, by_runner
    for rec in v.records.values():  # the skew was real
        want = {"ahead": 300, "behind": -300, "right": 0}[rec["runner"]]
        assert abs(_skew_seen(rec) - want) < 60, (rec["runner"], _skew_seen(rec))
    scenario.figures("9a clock skew, live leases", f"{n} jobs of 2.5 leases, runners +-300 s", v)


@pytest.mark.slow
@timeout_for(900, 120)
def test_skewed_runners_still_reclaim_expired_leases(scenario, shim):
    sp, runners = scenario.spool(lease_seconds=LEASE, scan_interval=0.2)
    procs = {}
    for name, off in SKEWS.items():
        procs[name] = runners.start("--tag", name, name=name, env=skewed(shim, off))
    submitted = {}
    for name in SKEWS:  # one job that only each skewed runner may run
        raw = json.dumps(
            {"script": "mark.py", "params": {"s": 4 * LEASE}, "retries": 1, "requires": {"tags": [name]}}
        ).encode()
        drop(sp, f"held-by-{name}", raw)
        submitted[f"held-by-{name}.json"] = raw
    wait_for(lambda: len(marker_pids(sp)) == 2, 30, 0.05, "both jobs running")
    taken = {}
    for victim, rescuer in (("ahead", "behind"), ("behind", "ahead")):
        job = f"held-by-{victim}"
        (folder,) = [p for p in sp.layout.state_dir(State.CLAIMED).iterdir() if p.name.startswith(job + "@")]
        script = [p for p in marker_pids(sp) if os.path.exists(f"/proc/{p}") and _job_of(sp, p) == job]
        runners.kill(procs[victim], signal.SIGKILL)  # the machine dies with its script
        for pid in script:
            os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        wait_for(lambda f=folder: not f.exists(), 30, 0.02, f"{rescuer} took over {job}")
        taken[victim] = round(time.monotonic() - t0, 2)
        procs[victim] = runners.start("--tag", victim, name=victim, env=skewed(shim, SKEWS[victim]))
    wait_for(lambda: finished(sp) == 2, 60, 0.1, "both jobs ended")
    runners.stop_all()
    v = scenario.check(sp, submitted)
    assert v.done == 2
    for victim in SKEWS:
        first = json.loads(
            (v.folders[f"held-by-{victim}.json"] / "attempts" / "1" / "result.json").read_text()
        )
        assert first["error"]["kind"] == "lost_lease" and victim in first["error"]["message"]
        # renewed every lease/4, so the lease ran out between 0.75 and 1 lease after the kill
        assert 0.5 * LEASE <= taken[victim] <= LEASE + 3, taken
    scenario.figures(
        "9b clock skew, dead holders",
        "2 leases held by +-300 s runners, reclaimed",
        v,
        reclaimed_after_s=taken,
    )


def _job_of(sp, pid: int) -> str | None:
    for name in os.listdir(sp.root / "data" / "runs"):
        if name.rsplit(".", 2)[1] == str(pid):
            return name.rsplit(".", 2)[0]
    return None
