"""The runner's stopper (runner.core.stopper) on a real spool folder: which jobs get one, and
the verdict it reaches from the job's own records and the other runs' metrics.jsonl."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from runner.core.stopper import StopperFactory
from spool.api import Spool
from spool.sweeps import plan_from_wandb
from spool.sweeps.store import create_sweep

SWEEP = (
    "program: t.py\nmethod: grid\nmetric: {name: loss}\n"
    "early_terminate: {type: hyperband, min_iter: 1, eta: 3}\nparameters:\n  x: {values: [1, 2, 3]}\n"
)


def _spool(tmp_path: Path, text: str = SWEEP) -> tuple[Spool, str]:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "t.py").write_text("print('{}')\n")
    sid, _ = create_sweep(sp, plan_from_wandb(text), {}, stop_after=0)
    return sp, sid


def _done(sp: Spool, job_id: str, losses: list[float]) -> None:
    folder = sp.root / "done" / job_id
    folder.mkdir(parents=True)
    (folder / "job.json").write_text("{}")
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"loss": v}) + "\n" for v in losses))


def test_only_jobs_of_a_sweep_with_early_terminate_get_a_stopper(tmp_path: Path) -> None:
    sp, sid = _spool(tmp_path)
    plain = create_sweep(
        sp, plan_from_wandb("program: t.py\nmethod: grid\nparameters:\n  x: {value: 1}\n"), {}
    )[0]
    logs: list[str] = []
    f = StopperFactory(sp.layout, lambda: None, logs.append)
    assert f.for_job(None, "abc") is None
    assert f.for_job(plain, f"{plain}-00000") is None
    assert f.for_job("nosuchsweep", "nosuchsweep-00000") is None
    stopper = f.for_job(sid, f"{sid}-00001")
    assert stopper is not None and stopper.rules.bands[:2] == (1, 3)
    (sp.root / "sweeps" / "broken.yaml").write_text("early_terminate: {type: hyperband}\nmetric: {name: l}\n")
    assert f.for_job("broken", "broken-00000") is None and "broken.yaml" in logs[-1]


def test_a_worse_run_is_stopped_at_its_first_band_and_the_loop_is_woken(tmp_path: Path) -> None:
    sp, sid = _spool(tmp_path)
    _done(sp, f"{sid}-00000", [5, 1, 1, 1])
    woken = threading.Event()
    stopper = StopperFactory(sp.layout, woken.set, print).for_job(sid, f"{sid}-00001")
    assert stopper is not None
    stopper.on_record({"loss": 9, "epoch": 1})
    stopper.on_record({"note": "no metric here"})
    assert not woken.wait(0.3) and stopper.verdict is None  # no band reached yet: not even judged
    stopper.on_record({"loss": 8, "epoch": 2})  # band 1: [1, 8] -> index int(2 / 3) = 0 -> 1
    assert woken.wait(5)
    v = stopper.verdict
    assert v is not None and (v.stop, v.band, v.threshold, v.value, v.iteration) == (True, 1, 1, 8, 2)


def test_a_better_run_goes_on_and_is_judged_again_at_each_value(tmp_path: Path) -> None:
    sp, sid = _spool(tmp_path)
    _done(sp, f"{sid}-00000", [5, 4, 3, 2, 1])
    woken = threading.Event()
    stopper = StopperFactory(sp.layout, woken.set, print).for_job(sid, f"{sid}-00001")
    assert stopper is not None
    for loss in (9, 3, 2):  # band 1: [3, 4] -> 3; level at band 1 is not worse
        stopper.on_record({"loss": loss})
    assert not woken.wait(0.5) and stopper.verdict is None
    stopper.on_record({"loss": 5})  # band 3: [2, 5] -> index 0 -> 2: worse
    assert woken.wait(5) and stopper.verdict is not None and stopper.verdict.band == 3
    stopper.close()
