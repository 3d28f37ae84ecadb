"""Bayes sweeps through real processes and real folders: two runners on a W&B file, proposers
racing, killed at every file step, paused past a lease, and everything crashing mid-sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
        sp,
        "--json",
        "sweep",
        "quad.py",
        "--method",
        "bayes",
        "--metric",
        "loss",
        "--goal",
        "min",
        "--run-cap",
        "3",
        "--uniform",
        "x=-1:1",
        "--choice",
        "opt=a,b",
        "-p",
        "n=2",
    )
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["sweep"]
    point = read_slots(sp.layout, sid)[0]["point"]
    assert set(point) == {"x", "opt", "n"} and point["n"] == 2
    bad = cli(sp, "sweep", "quad.py", "--method", "bayes", "--uniform", "x=-1:1")
    assert bad.returncode == 2 and "--metric" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli(sp, "sweep", "quad.py", "--method", "bayes", "--metric", "loss", "--uniform", "x=-1:1", "--run-cap", "0")
    assert bad.returncode == 2 and "run_cap" in bad.stderr


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


KIT = Path(__file__).with_name("bayes_kit.py")


def kit(sp: Spool, sid: str, mode: str, at: int, want: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, str(KIT), str(sp.root), sid, mode, str(at), str(want)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def drain(sp: Spool, *names: str) -> None:
    procs = [
        subprocess.Popen([str(BIN), "--spool", str(sp.root), "runner", "--exit-when-idle", "-q", "--name", n])
        for n in names
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0


def check_slots_and_jobs(sp: Spool, sid: str) -> None:
    """Between faults: slots numbered 0..n-1, each point once, at most one job per slot."""
    slots = read_slots(sp.layout, sid)
    assert sorted(slots) == list(range(len(slots)))
    points = [json.dumps(s["point"], sort_keys=True) for s in slots.values()]
    assert len(set(points)) == len(points)
    jobs = sweep_jobs(sp, sid)
    every = [j for ids in jobs.values() for j in ids]
    assert len(every) == len(set(every))
    assert set(every) <= {f"{sid}-{i:05d}" for i in slots}


def test_a_proposer_killed_at_every_file_step_loses_nothing(sp: Spool, tmp_path: Path) -> None:
    cap = 12
    sid = make_sweep(sp, cap, tmp_path)
    counted = kit(sp, sid, "count", 0, 2)
    out, err = counted.communicate(timeout=120)
    assert counted.returncode == 0, err
    per_proposal = json.loads(out)["calls"]  # the calls of one proposal: slot, then the job
    assert per_proposal >= 4
    for at in range(1, per_proposal + 2):  # before each call, and after the last
        p = kit(sp, sid, "kill", at, 10**6)
        p.communicate(timeout=120)
        assert p.returncode in (9, 0)
        check_slots_and_jobs(sp, sid)
    assert len(read_slots(sp.layout, sid)) < cap
    drain(sp, "ra", "rb")  # the runners finish unpublished slots and propose the rest
    check_whole(sp, sid, cap)


def test_four_proposers_at_once_never_queue_the_same_point(sp: Spool, tmp_path: Path) -> None:
    sid = make_sweep(sp, 40, tmp_path)
    run = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "runner", "--max-jobs", "5", "-q", "--name", "r0"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert len(sweep_jobs(sp, sid)["done"]) == 5  # results in hand: the proposals use the model
    procs = [kit(sp, sid, "barrier", 0, 4) for _ in range(4)]
    time.sleep(2.0)  # all four have imported and are waiting
    (sp.root / "go").write_text("")
    added: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        added += json.loads(out)["added"]
    assert len(added) == len(set(added))
    check_slots_and_jobs(sp, sid)
    slots = read_slots(sp.layout, sid)
    assert len(sweep_jobs(sp, sid)["pending"]) >= 4
    assert all(slots[n]["method"] == "gp" for n in slots if n >= 6)


def test_a_proposer_paused_past_a_lease_finds_its_slot_taken(sp: Spool, tmp_path: Path) -> None:
    text = (sp.root / "spool.toml").read_text().replace("lease_seconds = 60", "lease_seconds = 2")
    (sp.root / "spool.toml").write_text(text)
    sid = make_sweep(sp, 30, tmp_path)
    first = f"{sid}-00000"
    # finish slot 0 so slot 1 needs a proposal, then pause a proposer inside it
    runner = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "runner", "--max-jobs", "1", "-q", "--name", "r0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert runner.returncode == 0, runner.stderr
    assert sweep_jobs(sp, sid)["done"] == [first] and not sweep_jobs(sp, sid)["pending"]
    paused = kit(sp, sid, "stop", 1, 1)  # stops before its first file call: the point is computed
    wait_for(lambda: any(p.name.startswith("stopped-") for p in sp.root.iterdir()), timeout=60)
    time.sleep(3.0)  # longer than the lease
    other = kit(sp, sid, "count", 0, 2)  # another proposer goes on meanwhile
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    taken = json.loads(out)["added"]
    assert f"{sid}-00001" in taken
    os.kill(paused.pid, signal.SIGCONT)
    out, err = paused.communicate(timeout=120)
    assert paused.returncode == 0, err
    mine = json.loads(out)["added"]
    assert f"{sid}-00001" not in mine  # it found slot 1 taken and went on from there
    check_slots_and_jobs(sp, sid)
    slots = read_slots(sp.layout, sid)
    assert slots[1]["by"].endswith(f":{other.pid}")


def test_every_process_crashes_mid_sweep_then_a_runner_resumes(sp: Spool, tmp_path: Path) -> None:
    text = (sp.root / "spool.toml").read_text()
    text = text.replace("lease_seconds = 60", "lease_seconds = 2").replace(
        "scan_interval = 1", "scan_interval = 0.2"
    )
    (sp.root / "spool.toml").write_text(text)
    cap = 12
    sid = make_sweep(sp, cap, tmp_path)
    procs = [
        subprocess.Popen([str(BIN), "--spool", str(sp.root), "runner", "-q", "--name", n])
        for n in ("ra", "rb")
    ]
    waiter = subprocess.Popen(
        [str(BIN), "--spool", str(sp.root), "wait", "--sweep", sid],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(sweep_jobs(sp, sid)["done"]) >= 4, timeout=180)
    finally:
        for p in [*procs, waiter]:
            p.kill()
            p.wait(timeout=30)
    assert len(read_slots(sp.layout, sid)) < cap
    drain(sp, "rc")  # from the folder alone
    slots = read_slots(sp.layout, sid)
    assert sorted(slots) == list(range(cap))
    jobs = sweep_jobs(sp, sid)
    ended = sorted(jobs["done"] + jobs["failed"])
    assert ended == [f"{sid}-{i:05d}" for i in range(cap)], jobs
    assert not jobs["pending"] and not jobs["claimed"]
    points = [json.dumps(slots[i]["point"], sort_keys=True) for i in range(cap)]
    assert len(set(points)) == cap


def test_a_void_slot_does_not_count_toward_run_cap(sp: Spool, tmp_path: Path) -> None:
    """A slot file still empty after the settle time (a proposer killed between the O_EXCL create
    and the write, on a share without hard links) is void: the sweep still gets run_cap points."""
    from spool.sweeps.adaptive import propose_next
    from spool.sweeps.slots import slots_dir

    sid = make_sweep(sp, 3, tmp_path)
    torn = slots_dir(sp.layout, sid) / "00001.json"
    torn.write_bytes(b"")
    old = time.time() - 3600
    os.utime(torn, (old, old))
    added = propose_next(sp, sid, want=10)
    slots = read_slots(sp.layout, sid)
    assert sorted(slots) == [0, 1, 2, 3] and slots[1].get("unreadable")
    assert added == [f"{sid}-00002", f"{sid}-00003"]
    assert sweep_jobs(sp, sid)["pending"] == [f"{sid}-00000", f"{sid}-00002", f"{sid}-00003"]
    assert propose_next(sp, sid, want=10) == []  # closed: three live slots
