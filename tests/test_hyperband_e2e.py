"""Hyperband end to end: a W&B-style sweep file with early_terminate, two real runners, runs
stopped as their metric lines arrive, ending in done/ marked stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from spool.api import Spool
from spool.states import State
from spool.sweeps.hyperband import Hyperband

BIN = Path(sys.executable).parent / "spool"

# the loss curve of run x: (1 + x) / epoch, so a higher x is worse at every epoch. A stopped run
# notes the SIGTERM it got (and ends on it, as a script that saves its work would).
TRAIN = r"""
import argparse, json, os, signal, sys, time
p = argparse.ArgumentParser()
p.add_argument("--x", type=int)
p.add_argument("--epochs", type=int, default=12)
a = p.parse_args()
def term(*_):
    open(os.path.join(os.environ["SPOOL_OUTPUT_DIR"], "sigterm"), "w").write(str(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
for epoch in range(1, a.epochs + 1):
    print(json.dumps({"epoch": epoch, "val_loss": (1 + a.x) / epoch, "t": time.time()}), flush=True)
    time.sleep(0.15)
print(json.dumps({"val_loss": (1 + a.x) / a.epochs, "done": True}))
"""

SWEEP = """\
method: grid
controller:
  type: local
metric:
  name: val_loss
  goal: minimize
early_terminate:
  type: hyperband
  min_iter: 2
  eta: 3
command:
  - ${env}
  - python
  - train.py
  - ${args}
parameters:
  x:
    values: [0, 1, 2, 3, 4, 5, 6, 7]
"""


def cli(sp: Spool, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "--spool", str(sp.root), *args], capture_output=True, text=True, timeout=timeout
    )


def test_two_runners_stop_the_bad_runs_into_done_marked_stopped(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "train.py").write_text(TRAIN)
    f = tmp_path / "sweep.yaml"
    f.write_text(SWEEP)
    out = cli(sp, "sweep", str(f), "--json")
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["sweep"]
    runners = [
        subprocess.Popen(
            [
                str(BIN),
                "--spool",
                str(sp.root),
                "runner",
                "--exit-when-idle",
                "-q",
                "--name",
                f"r{i}",
                "--nice",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    for r in runners:
        _, err = r.communicate(timeout=120)
        assert r.returncode == 0, err
    # every job ends in done/: nothing failed, nothing left
    assert [e.id for e in sp.layout.entries(State.FAILED)] == []
    done = sorted(e.id for e in sp.layout.entries(State.DONE))
    assert len(done) == 8
    records = {j: json.loads((sp.root / "done" / j / "result.json").read_text()) for j in done}
    x_of = {j: rec["job"]["params"]["x"] for j, rec in records.items()}
    stopped = {x_of[j]: rec for j, rec in records.items() if rec.get("stopped")}
    # x = 0 is the best at every band: never stopped; the worst two always start after two runs
    # have ended (one slot per runner, jobs taken in order), so they are stopped at band 2
    assert 0 not in stopped and {6, 7} <= set(stopped), sorted(stopped)
    rules = Hyperband.from_definition(
        {"type": "hyperband", "min_iter": 2, "eta": 3}, {"name": "val_loss", "goal": "minimize"}
    )
    lengths: dict[int, int] = {}
    for x, rec in stopped.items():
        et = rec["early_terminate"]
        assert et["type"] == "hyperband" and et["band"] in rules.bands and et["strict"] is True
        assert et["value"] == (1 + x) / (et["band"] + 1)  # the value at index `band`
        assert et["value"] > et["threshold"]
        assert rec["error"] is None and rec["exit_code"] == 0
        job = next(j for j, v in x_of.items() if v == x)
        folder = sp.root / "done" / job
        assert (folder / "outputs" / "sigterm").exists()  # stopped by SIGTERM, as a cancel is
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        assert et["band"] + 1 <= et["iteration"] <= len(lines)
        lengths[x] = len(lines)
    # the worst runs stop at their first band, long before their 12 epochs (a run that passed a
    # band may still be stopped there later, at any line, once more runs reached it)
    assert lengths[7] < 12 and lengths[6] < 12, lengths
    for rec in records.values():
        if not rec.get("stopped"):
            assert "early_terminate" not in rec and rec["result"]["done"] is True
    # spool ls and spool show say so
    a_stop = next(j for j, rec in records.items() if rec.get("stopped"))
    band = records[a_stop]["early_terminate"]["band"]
    assert f"stopped at band {band}: " in cli(sp, "ls", "--sweep", sid).stdout
    shown = cli(sp, "show", a_stop).stdout
    assert f"stopped early (hyperband): at band {band}," in shown
    # retry --failed leaves stopped runs alone
    out = cli(sp, "retry", "--failed", "--sweep", sid, "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == []
    # spool show lists them where they stopped
    view = json.loads(cli(sp, "show", sid, "--json").stdout)["hyperband"]
    listed = {j for b in view["bands"] for j in b["stopped"]}
    assert listed == {j for j in done if records[j].get("stopped")}
    df = sp.results(sweep=sid)
    assert df["stopped.band"].notna().sum() == len(stopped)
    # the report's learning curves mark them
    out = cli(sp, "report", "--sweep", sid, "-o", str(tmp_path / "report"))
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "report" / "sweeps" / f"{sid}.html").read_text()
    assert "where hyperband stopped a run" in page and 'id="chart-data-learning_curves"' in page
    curves = json.loads(page.split('id="chart-data-learning_curves">', 1)[1].split("</script>", 1)[0])
    assert sorted(curves["ids"][k] for k in curves["stopped"]) == sorted(j for j in done if records[j].get("stopped"))


BAYES = """\
program: train.py
method: bayes
run_cap: 7
metric: {name: val_loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 3}
parameters:
  x: {distribution: int_uniform, min: 0, max: 7}
"""


def test_a_bayes_sweep_with_hyperband_ends_whole_with_its_stopped_runs_in_done(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "train.py").write_text(TRAIN.replace("range(1, a.epochs + 1)", "range(1, 9)"))
    f = tmp_path / "bayes.yaml"
    f.write_text(BAYES)
    out = cli(sp, "sweep", str(f), "--json")
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["sweep"]
    runners = [
        subprocess.Popen([str(BIN), "--spool", str(sp.root), "runner", "--exit-when-idle", "-q", "--name", n])
        for n in ("b1", "b2")
    ]
    for r in runners:
        assert r.wait(timeout=240) == 0
    assert [e.id for e in sp.layout.entries(State.FAILED)] == []
    done = sorted(e.id for e in sp.layout.entries(State.DONE))
    assert len(done) == 7  # run_cap counts the stopped runs too
    records = [json.loads((sp.root / "done" / j / "result.json").read_text()) for j in done]
    for rec in records:
        if rec.get("stopped"):
            et = rec["early_terminate"]
            assert et["value"] > et["threshold"] and rec["error"] is None
    view = json.loads(cli(sp, "show", sid, "--json").stdout)
    assert "bayes" in view and view["hyperband"]["bands"][0]["band"] == 2
    assert {r["id"] for r in view["hyperband"]["runs"]} == set(done)
