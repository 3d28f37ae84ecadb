"""Sweeps through the real CLI and real runners: create, resume, wait, retry the failed points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spool import Spool, State
from spool.sweeps import plan_from_flags
from spool.sweeps.store import create_sweep, load_sweep, resume_sweep

BIN = Path(sys.executable).parent / "spool"

PICKY = (
    "import argparse, json, sys\n"
    "p = argparse.ArgumentParser()\n"
    "p.add_argument('--lr', type=float)\n"
    "p.add_argument('--hidden', type=int, default=8)\n"
    "p.add_argument('--seed', type=int, default=0)\n"
    "a = p.parse_args()\n"
    "if a.lr > 0.5:\n"
    "    sys.exit('lr too high')\n"
    "print(json.dumps({'score': a.lr * a.hidden + a.seed}))\n"
)


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    s = Spool.init(tmp_path / "spool")
    (s.scripts_dir / "picky.py").write_text(PICKY)
    return s


def cli(sp: Spool, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "--spool", str(sp.root), *args], capture_output=True, text=True, timeout=timeout
    )


def drain(sp: Spool) -> None:
    out = cli(sp, "runner", "--exit-when-idle", "-q", "--nice", "0")
    assert out.returncode == 0, out.stderr


def pending_ids(sp: Spool) -> list[str]:
    return sorted(e.id for e in sp.layout.entries(State.PENDING))


def test_grid_with_seeds_writes_definition_and_jobs(sp: Spool) -> None:
    out = cli(
        sp,
        "sweep",
        "picky.py",
        "--grid",
        "lr=0.1,0.2",
        "--grid",
        "hidden=4,8,16",
        "--seeds",
        "2",
        "--name",
        "g",
        "--priority",
        "3",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    sid = doc["sweep"]
    assert doc["count"] == 12 and len(doc["jobs"]) == 12
    rec = load_sweep(sp, sid)
    assert rec.doc["script"] == "picky.py" and rec.doc["seeds"] == 2 and rec.doc["name"] == "g"
    assert (sp.root / "sweeps" / f"{sid}.yaml").exists()
    jobs = [json.loads((sp.root / "pending" / f"{j}.json").read_text()) for j in doc["jobs"]]
    assert {(j["params"]["lr"], j["params"]["hidden"], j["params"]["seed"]) for j in jobs} == {
        (lr, h, s) for lr in (0.1, 0.2) for h in (4, 8, 16) for s in (0, 1)
    }
    assert all(j["sweep"] == sid and j["priority"] == 3 for j in jobs)
    st = json.loads(cli(sp, "status", "--json").stdout)
    assert st["sweeps"][sid]["pending"] == 12


def test_dry_run_writes_nothing_and_limits_need_yes(sp: Spool) -> None:
    out = cli(sp, "sweep", "picky.py", "--grid", "lr=0.1,0.2", "--dry-run")
    assert out.returncode == 0 and "2 point(s)" in out.stdout
    assert pending_ids(sp) == [] and list((sp.root / "sweeps").glob("*.yaml")) == []
    big = [f"--grid=x{i}=" + ",".join(str(v) for v in range(10)) for i in range(6)]  # 10^6 points
    out = cli(sp, "sweep", "picky.py", *big)
    assert out.returncode == 2 and "--yes" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert pending_ids(sp) == []


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--uniform", "lr=0.1:0.2"], "lr"),  # a range cannot be gridded
        (["--grid", "lr="], "lr"),  # empty values
        (["--random", "3", "--uniform", "lr=0.5:0.1"], "lr"),  # min > max
        ([], "no"),  # empty space
    ],
)
def test_bad_spaces_are_refused_with_nothing_written(sp: Spool, args: list[str], needle: str) -> None:
    out = cli(sp, "sweep", "picky.py", *args)
    assert out.returncode == 2, out.stdout
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert (
        pending_ids(sp) == []
        and list((sp.root / "sweeps").glob("*")) == []
        or [p.name for p in (sp.root / "sweeps").iterdir()] == [".gitkeep"]
    )


def test_wandb_yaml_runs_as_it_is(sp: Spool, tmp_path: Path) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(
        "program: picky.py\nmethod: random\nrun_cap: 5\nmetric:\n  name: score\n  goal: maximize\n"
        "parameters:\n  lr:\n    distribution: log_uniform_values\n    min: 0.001\n    max: 0.1\n"
        "  hidden:\n    values: [4, 8]\n"
    )
    out = cli(sp, "sweep", str(f), "--sample-seed", "7", "--json")
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["sweep"]
    again = cli(sp, "sweep", str(f), "--sample-seed", "7", "--dry-run", "--json")
    points = json.loads(again.stdout)["points"]
    assert load_sweep(sp, sid).points == points and len(points) == 5
    assert load_sweep(sp, sid).doc["metric"] == {"name": "score", "goal": "maximize"}
    drain(sp)
    df = sp.results(sweep=sid)
    assert len(df) == 5 and (df["param.lr"].between(0.001, 0.1)).all()
    bad = tmp_path / "bayes.yaml"
    bad.write_text("program: picky.py\nmethod: bayes\nparameters:\n  lr:\n    values: [1]\n")
    out = cli(sp, "sweep", str(bad))
    assert out.returncode == 2 and "bayes" in out.stderr


def test_resume_after_crash_adds_exactly_the_missing_jobs(sp: Spool) -> None:
    plan = plan_from_flags(
        "picky.py", [f"lr={','.join(str(i / 10000) for i in range(1000))}"], None, [], [], [], [], 1, {}, 0
    )
    sid, written = create_sweep(sp, plan, {}, stop_after=517)  # the submitting process "dies" here
    assert len(written) == 517
    # some of the written ones have moved on meanwhile: one done by a runner, one cancelled
    sp.cancel(written[3])
    out = cli(sp, "sweep", "--resume", sid, "--json")
    assert out.returncode == 0, out.stderr
    added = json.loads(out.stdout)["added"]
    assert len(added) == 1000 - 517
    all_ids = {e.id for st in State for e in sp.layout.entries(st)}
    assert all_ids == set(load_sweep(sp, sid).job_ids)
    assert resume_sweep(sp, sid) == []  # a second resume adds nothing


def test_wait_exit_codes_and_retry_failed_points(sp: Spool) -> None:
    out = cli(sp, "sweep", "picky.py", "--grid", "lr=0.1,0.9,0.2", "--json")
    sid = json.loads(out.stdout)["sweep"]
    drain(sp)
    w = cli(sp, "wait", "--sweep", sid)
    assert w.returncode == 1
    assert f"failed {sid}-00001: exit" in w.stdout
    ok = cli(sp, "wait", f"{sid}-00000", f"{sid}-00002")
    assert ok.returncode == 0
    r = cli(sp, "retry", "--failed", "--sweep", sid, "--json")
    assert json.loads(r.stdout) == [f"{sid}-00001"]
    assert pending_ids(sp) == [f"{sid}-00001"]
    assert cli(sp, "wait", "nope-00000").returncode == 2


def test_wait_times_out_with_exit_1(sp: Spool) -> None:
    jid = sp.submit("picky.py", {"lr": 0.1})
    w = cli(sp, "wait", jid, "--timeout", "0.5")
    assert w.returncode == 1 and "timed out" in w.stderr
