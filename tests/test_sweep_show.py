"""`spool show SWEEP` and its hyperband table, read from job folders as the runner leaves them
(here written by hand, so every threshold is known; the end-to-end test has real runners)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spool.api import Spool
from spool.sweeps import plan_from_wandb
from spool.sweeps.store import create_sweep

BIN = Path(sys.executable).parent / "spool"
SWEEP = """\
program: t.py
method: grid
metric: {name: loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 1, eta: 3}
parameters:
  x: {values: [1, 2, 3, 4, 5]}
"""


def _folder(sp: Spool, state: str, job_id: str, losses: list[float], result: dict[str, Any] | None) -> None:
    name = f"{job_id}@r1.abcd" if state == "claimed" else job_id
    folder = sp.root / state / name
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"script": "t.py", "sweep": job_id.split("-")[0]}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"loss": v}) + "\n" for v in losses))
    if result is not None:
        (folder / "result.json").write_text(json.dumps(result))


@pytest.fixture
def swept(tmp_path: Path) -> tuple[Spool, str]:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "t.py").write_text("print('{}')\n")
    sid, ids = create_sweep(sp, plan_from_wandb(SWEEP), {}, stop_after=0)
    job = {"script": "t.py", "sweep": sid, "params": {}}
    stop = {"type": "hyperband", "band": 1, "threshold": 4.0, "value": 9.0, "iteration": 2, "strict": True}
    _folder(sp, "done", f"{sid}-00000", [5, 4, 3, 2], {"job": job, "result": {"loss": 2}})
    _folder(
        sp,
        "done",
        f"{sid}-00001",
        [9, 9],
        {"job": job, "result": {"loss": 9}, "stopped": True, "early_terminate": stop},
    )
    _folder(sp, "failed", f"{sid}-00002", [6, 5], {"job": job, "error": {"kind": "exit"}})
    _folder(sp, "claimed", f"{sid}-00003", [4, 1, 1, 1], None)
    (sp.root / "pending" / f"{sid}-00004.json").write_text(json.dumps(job))
    return sp, sid


def test_the_sweep_view_has_bands_thresholds_and_stops(swept: tuple[Spool, str]) -> None:
    sp, sid = swept
    view = sp.sweep(sid)
    assert view["jobs"] == {"pending": 1, "claimed": 1, "done": 2, "failed": 1}
    hb = view["hyperband"]
    assert (hb["min_iter"], hb["eta"], hb["strict"]) == (1, 3, True)
    # band 1: [1, 4, 5, 9] -> index int(4 / 3) = 1 -> 4; band 3: [1, 2] -> index 0 -> 1; band 9: nobody
    assert hb["bands"] == [
        {"band": 1, "threshold": 4, "reached": 4, "stopped": [f"{sid}-00001"]},
        {"band": 3, "threshold": 1, "reached": 2, "stopped": []},
        {"band": 9, "threshold": None, "reached": 0, "stopped": []},
    ]
    runs = {r["id"]: r for r in hb["runs"]}
    assert runs[f"{sid}-00001"]["stopped"]["value"] == 9.0
    assert runs[f"{sid}-00003"] == {"id": f"{sid}-00003", "state": "claimed", "iteration": 4, "band": 3}


def test_spool_show_prints_the_table_and_json(swept: tuple[Spool, str]) -> None:
    sp, sid = swept
    out = subprocess.run([str(BIN), "--spool", str(sp.root), "show", sid], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"sweep {sid}" in text and "hyperband: min_iter 1, eta 3, strict" in text
    assert "BAND" in text and "THRESHOLD" in text
    assert f"{sid}-00001 stopped at band 1: 9 against threshold 4 (iteration 2)" in text
    assert f"{sid}-00003 running: iteration 4, band 3" in text
    js = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "show", sid, "--json"], capture_output=True, text=True
    )
    assert json.loads(js.stdout)["hyperband"]["bands"][0]["threshold"] == 4


def test_results_mark_the_stopped_runs(swept: tuple[Spool, str]) -> None:
    sp, sid = swept
    df = sp.results(sweep=sid).set_index("id")
    assert df.loc[f"{sid}-00001", "stopped.band"] == 1 and df.loc[f"{sid}-00001", "stopped.value"] == 9.0
    assert df["stopped.band"].isna().tolist() == [True, False]


def test_a_sweep_without_early_terminate_shows_no_table(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "t.py").write_text("print('{}')\n")
    sid, _ = create_sweep(
        sp, plan_from_wandb("program: t.py\nmethod: grid\nparameters:\n  x: {values: [1]}\n"), {}
    )
    view = sp.sweep(sid)
    assert "hyperband" not in view and view["jobs"]["pending"] == 1


def test_a_sweeps_own_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "t.py").write_text("print('{}')\n")
    text = 'program: t.py\nname: "evil\\e[2J\\e]0;pwned\\a"\nmethod: grid\nparameters:\n  x: {values: [1]}\n'
    sid, _ = create_sweep(sp, plan_from_wandb(text), {})
    out = subprocess.run([str(BIN), "--spool", str(sp.root), "show", sid], capture_output=True, text=True)
    assert out.returncode == 0 and "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "evil?[2J?]0;pwned?" in out.stdout


def test_a_fifo_for_a_sweep_definition_never_blocks(tmp_path: Path) -> None:
    import os

    from spool.errors import SweepError
    from spool.sweeps.store import load_sweep

    sp = Spool.init(tmp_path / "spool")
    os.mkfifo(sp.root / "sweeps" / "20260101T000000-000000-abcd.yaml")
    with pytest.raises(SweepError, match="unreadable"):
        load_sweep(sp, "20260101T000000-000000-abcd")
    out = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "show", "20260101T000000-000000-abcd"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr
