"""Bayes sweeps through real processes and real folders: two runners on a W&B file, proposers
racing, killed at every file step, paused past a lease, and everything crashing mid-sweep."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runner_kit import wait_for

from spool import Spool, State
from spool.sweeps.slots import read_slots

BIN = Path(sys.executable).parent / "spool"

QUAD = (
    "import argparse, json\n"
    "p = argparse.ArgumentParser()\n"
    "p.add_argument('--x', type=float)\n"
    "p.add_argument('--opt', default='a')\n"
    "p.add_argument('--n', type=int, default=1)\n"
    "a = p.parse_args()\n"
    "v = (a.x - 0.3) ** 2 + (0.0 if a.opt == 'a' else 0.5) + 0.01 * a.n\n"
    "print(json.dumps({'loss': v + 1.0, 'epoch': 1}))\n"  # the best value is not the first line
    "print(json.dumps({'loss': v, 'epoch': 2}))\n"
    "print(json.dumps({'loss': v + 0.25, 'epoch': 3}))\n"  # nor the last
)

SWEEP = """\
program: quad.py
method: bayes
metric:
  name: loss
  goal: minimize
run_cap: {cap}
parameters:
  x: {{min: -1.0, max: 1.0}}
  opt: {{values: [a, b]}}
  n: {{distribution: q_uniform, min: 1, max: 5}}
"""


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    s = Spool.init(tmp_path / "spool")
    (s.scripts_dir / "quad.py").write_text(QUAD)
    return s


def cli(sp: Spool, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "--spool", str(sp.root), *args], capture_output=True, text=True, timeout=timeout
    )


def make_sweep(sp: Spool, cap: int, tmp: Path) -> str:
    f = tmp / "sweep.yaml"
    f.write_text(SWEEP.format(cap=cap))
    out = cli(sp, "--json", "sweep", str(f))
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["sweep"])


def sweep_jobs(sp: Spool, sid: str) -> dict[str, list[str]]:
    """Job ids of the sweep per state (every state folder looked at once)."""
    out: dict[str, list[str]] = {}
    for state in State:
        out[state.value] = sorted(j for j, _ in sp.layout.ids(state) if j.startswith(sid + "-"))
    return out


def check_whole(sp: Spool, sid: str, cap: int) -> None:
    """Exactly `cap` slots and jobs, numbered 0..cap-1, no point twice, every job done."""
    slots = read_slots(sp.layout, sid)
    assert sorted(slots) == list(range(cap))
    jobs = sweep_jobs(sp, sid)
    assert jobs["done"] == [f"{sid}-{i:05d}" for i in range(cap)], jobs
    points = [json.dumps(slots[i]["point"], sort_keys=True) for i in range(cap)]
    assert len(set(points)) == cap
    for i in range(cap):  # each job runs its slot's point
        job = json.loads((sp.layout.state_dir(State.DONE) / f"{sid}-{i:05d}" / "job.json").read_text())
        assert job["params"] == slots[i]["point"]


def test_bayes_end_to_end_with_two_runners(sp: Spool, tmp_path: Path) -> None:
    sid = make_sweep(sp, 14, tmp_path)
    assert len(read_slots(sp.layout, sid)) == 1  # `spool sweep` proposed the first point
    runners = [
        subprocess.Popen([str(BIN), "--spool", str(sp.root), "runner", "--exit-when-idle", "-q", "--name", n])
        for n in ("ra", "rb")
    ]
    for r in runners:
        assert r.wait(timeout=240) == 0
    check_whole(sp, sid, 14)
    slots = read_slots(sp.layout, sid)
    assert slots[0]["method"] == "random" and slots[13]["method"] == "gp"
    assert all(type(s["point"]["n"]) is int for s in slots.values())  # q omitted: integers
    # the observation is the best over the history (the second line), not the last line
    last = slots[13]["observed"]
    x = slots[0]["point"]
    want = (x["x"] - 0.3) ** 2 + (0.0 if x["opt"] == "a" else 0.5) + 0.01 * x["n"]
    assert last[f"{sid}-00000"] == pytest.approx(want)
    hosts = set()
    for i in range(14):
        rec = json.loads((sp.layout.state_dir(State.DONE) / f"{sid}-{i:05d}" / "result.json").read_text())
        hosts.add(rec.get("runner"))
    assert hosts == {"ra", "rb"}, hosts  # both runners ran (and so proposed) points
    out = cli(sp, "--json", "show", sid)
    view = json.loads(out.stdout)["bayes"]
    assert view["open"] is False and view["closed_because"] == "run_cap"
    gp_rows = [r for r in view["slots"] if r["method"] == "gp"]
    assert gp_rows and all(r["predicted_std"] is not None and r["acquisition"] is not None for r in gp_rows)
    assert view["slots"][-1]["best_so_far"] == min(r["value"] for r in view["slots"])
    text = cli(sp, "show", sid).stdout
    assert "SLOT" in text and "gp" in text


def test_flags_make_the_same_kind_of_sweep(sp: Spool) -> None:
    out = cli(
        sp, "--json", "sweep", "quad.py", "--method", "bayes", "--metric", "loss", "--goal", "min",
        "--run-cap", "3", "--uniform", "x=-1:1", "--choice", "opt=a,b", "-p", "n=2",
    )
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["sweep"]
    point = read_slots(sp.layout, sid)[0]["point"]
    assert set(point) == {"x", "opt", "n"} and point["n"] == 2
    bad = cli(sp, "sweep", "quad.py", "--method", "bayes", "--uniform", "x=-1:1")
    assert bad.returncode == 2 and "--metric" in bad.stderr and "Traceback" not in bad.stderr


def test_wait_proposes_and_stop_closes(sp: Spool, tmp_path: Path) -> None:
    sid = make_sweep(sp, 50, tmp_path)
    runner = subprocess.Popen([str(BIN), "--spool", str(sp.root), "runner", "-q", "--name", "r1"])
    try:
        wait_for(lambda: len(sweep_jobs(sp, sid)["done"]) >= 3, timeout=120)
        assert cli(sp, "sweep", "--stop", sid).returncode == 0
        out = cli(sp, "wait", "--sweep", sid, timeout=120)
        assert out.returncode == 0, out.stderr
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=60)
    n = len(read_slots(sp.layout, sid))
    assert 3 <= n < 50
    jobs = sweep_jobs(sp, sid)
    assert len(jobs["done"]) == n and not jobs["pending"]
