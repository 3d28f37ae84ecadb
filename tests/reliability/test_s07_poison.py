"""Scenario 7, poison jobs: a script that segfaults, one that SIGKILLs its own process group,
one that SIGKILLs its runner's process group, and one that floods stdout.

Each fails after retries+1 attempts with the right kind; the logs stay under the cap; runners
survive everything but the direct kill (which no process survives: a service manager restarts
the runner, as the test does here, and the lease hands the job on until its retries are spent).
"""

from __future__ import annotations

import json
import time

import pytest
from rkit import drop, finished, job_bytes, size, timeout_for

FLOOD_MB = size(1024, 64)
CAP_MB = 1
LEASE = 2.0

POISON = {
    "segv.py": "import ctypes\nctypes.string_at(0)\n",
    "killgroup.py": "import os, signal\nos.killpg(0, signal.SIGKILL)\n",
    "killrunner.py": "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n",
    "flood.py": (
        "import sys\nline = b'x' * 1023 + b'\\n'\nmb = int(sys.argv[1].split('=')[1])\n"
        "w = sys.stdout.buffer.write\nfor _ in range(mb * 1024):\n    w(line)\n"
        "sys.stderr.write('e' * 3000000)\n"
    ),
}
EXPECT = {
    "segv.py": ("exit", "SIGSEGV"),
    "killgroup.py": ("exit", "SIGKILL"),
    # its runner goes away every time: interruptions, never a spent retry, until the cap
    "killrunner.py": ("interrupted", "max_interruptions = 1"),
    "flood.py": ("no_result", "no JSON"),
}


@pytest.mark.slow
@timeout_for(1200, 150)
def test_poison_jobs_fail_with_the_right_kind_and_runners_survive(scenario):
    sp, runners = scenario.spool(
        lease_seconds=LEASE, scan_interval=0.2, log_cap_mb=CAP_MB, max_interruptions=1
    )
    for name, text in POISON.items():
        (sp.scripts_dir / name).write_text(text)
    submitted = {}
    for name in POISON:
        params = {"mb": FLOOD_MB} if name == "flood.py" else {}
        raw = json.dumps({"script": name, "params": params, "retries": 1}).encode()
        drop(sp, f"poison-{name[:-3]}", raw)
        submitted[f"poison-{name[:-3]}.json"] = raw
    for i in range(20):
        drop(sp, f"fine-{i:02d}", job_bytes(i))
        submitted[f"fine-{i:02d}.json"] = job_bytes(i)

    live = [runners.start(name=f"tough{k}") for k in range(2)]
    deaths = 0
    deadline = time.monotonic() + (900 if FLOOD_MB > 100 else 120)
    while finished(sp) < len(submitted):
        assert time.monotonic() < deadline, "poison jobs did not all end"
        for k, rp in enumerate(live):
            if not rp.alive():  # the service manager restarts a dead runner
                rp.killed = True  # (killed by its job, not by a bug: checked below)
                deaths += 1
                live[k] = runners.start(name=f"tough{k}")
        time.sleep(0.1)
    runners.stop_all()

    v = scenario.check(sp, submitted)
    for name, (kind, words) in EXPECT.items():
        origin = f"poison-{name[:-3]}.json"
        rec = v.records[origin]
        assert rec["state"] == "failed" and rec["error"]["kind"] == kind, (name, rec["error"])
        assert words in rec["error"]["message"], (name, rec["error"])
        earlier = [
            json.loads((v.folders[origin] / "attempts" / str(n) / "result.json").read_text())["error"]["kind"]
            for n in range(1, v.attempts[origin])
        ]
        if kind == "interrupted":  # its runner died each time: one lost lease, then the cap
            assert earlier == ["lost_lease"], (name, earlier)
        else:  # one spent retry; a lease lost on a busy machine (the flood) is an interruption
            lost = rec.get("interruptions", 0)
            assert sorted(earlier) == sorted([kind] + ["lost_lease"] * lost), (name, earlier, lost)
    flood = v.folders["poison-flood.json"]
    for folder in (flood, flood / "attempts" / "1"):
        for log in ("stdout.log", "stderr.log"):
            assert (folder / log).stat().st_size <= CAP_MB * 2**20 + 200, (folder, log)
    assert v.records["poison-flood.json"].get("logs_truncated") is True
    assert v.done == 20
    assert deaths == 2, f"{deaths} runner deaths; only the two runner-killing attempts may kill one"
    scenario.figures(
        "7 poison jobs",
        f"segv, killpg(0), kill runner, {FLOOD_MB} MB stdout; retries=1",
        v,
        runner_deaths=deaths,
    )
