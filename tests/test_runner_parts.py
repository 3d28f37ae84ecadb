"""A runner built in a test, driven by its steps' clock alone: no fork server, no daemon.

`Runner(spool, opts, parts=...)` from `build_parts` with given capabilities and a recording
`FsOps` (no fork server among them): the test calls `run_once(now)`
itself, and the `now` it passes is the only time the step reads (the storage pause, the
job's duration, lease renewals).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from runner.core.loop import Runner
from runner.core.options import RunnerOptions
from runner.core.parts import build_parts
from runner.machine.capabilities import detect
from spool import Spool
from spool.protocol import FsOps
from spool.states import State

SCRIPT = 'import json, time\ntime.sleep(0.3)\nprint(json.dumps({"acc": 0.5}))\n'


class Recording(FsOps):
    def __init__(self) -> None:
        self.renames: list[tuple[str, str]] = []

    def rename(self, src: Path, dst: Path) -> None:
        self.renames.append((src.parent.name, dst.parent.name))
        super().rename(src, dst)


def server_processes() -> list[int]:
    """Processes running warm mode's fork server (its file is runner/warm/server.py)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path("/proc", d, "cmdline").read_bytes()
            except OSError:
                continue
            if b"warm/server.py" in cmd:
                found.append(int(d))
    return found


def test_a_runner_built_in_a_test_runs_a_job_on_the_clock_it_is_given(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "job.py").write_text(SCRIPT)
    jid = sp.submit("job.py")
    before = set(server_processes())
    opts = RunnerOptions(name="parts", nice=0, warm=["json"])  # warm asked for, no fork server given
    fs = Recording()
    said: list[str] = []
    caps = detect(sys.executable, [], probe_torch=False)
    parts = build_parts(sp, opts, said.append, caps=caps, fs=fs)  # every claim and move goes through fs
    assert parts.warm is None and parts.probe is None  # no fork server, nothing probed: caps given
    r = Runner(sp, opts, parts, log=said.append)
    assert r.warm is None and r.fs is fs and r.proposer is parts.proposer

    # a spool that refused a write at step time 1000 gets no new claim for 2 s of steps' time
    r.health.at(1000.0)
    r.health.trouble("cannot publish x", OSError(5, "Input/output error"))
    r.run_once(1001.0)
    assert r.slots == {} and sp.get(jid).state is State.PENDING
    t0 = time.monotonic()
    r.run_once(1002.5)
    assert sp.get(jid).state is State.CLAIMED and r.started_count == 1

    deadline = t0 + 60
    while sp.get(jid).state is State.CLAIMED and time.monotonic() < deadline:
        r.run_once(1002.5 + (time.monotonic() - t0))
        time.sleep(0.02)
    rec = json.loads((sp.layout.state_dir(State.DONE) / jid / "result.json").read_bytes())
    assert rec["state"] == "done" and rec["result"] == {"acc": 0.5}
    assert "warm" not in rec  # cold: nobody gave this runner a fork server
    assert 0.3 <= rec["duration"] < 30  # measured on the steps' clock, which kept real pace here
    # the claim's rename of pending/<id>.json into its folder went through it (with a kit made
    # ahead or, when none was ready yet under load, a folder made at the claim)
    assert any(src == "pending" and dst.startswith(f"{jid}@") for src, dst in fs.renames)
    assert ("claimed", "done") in fs.renames  # the last move went through the runner's FsOps
    assert set(server_processes()) == before
    assert any(line.startswith(f"started {jid}") for line in said)
    r.kits.clear()
    r.reaper.close()
    r.clock.remove()
