"""The report tests' spool, shared by `test_report` and `test_report_browser` (imported by name).

The spool is made the way a user makes one: `Spool.init`, a script in `scripts/`, a sweep
definition in `sweeps/<id>.yaml` with its jobs `<id>-00000...`, a few loose jobs (one carrying
XSS payloads in its params), then `spool runner --exit-when-idle` runs them all, so every job
folder (result.json, logs, metrics.jsonl, outputs/) is exactly what the runner writes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from spool.api import Spool

__all__ = [
    "SPOOL_BIN",
    "SCRIPT",
    "XSS_SCRIPT",
    "XSS_IMG",
    "XSS_ALERT_IMG",
    "write_sweep",
    "run_runner",
    "make_spool",
    "pc_position",
]

#: the `spool` console script installed beside this interpreter (the project's venv).
SPOOL_BIN = Path(sys.executable).with_name("spool")

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror="window.__xss=1">'
XSS_ALERT_IMG = '"><img src=x onerror=alert(1)>'

SCRIPT = r"""
import argparse, json, math, os, sys
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--hidden", type=int, default=32)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--label", default="")
p.add_argument("--note", default="")
p.add_argument("--status", type=int, default=0)
a = p.parse_args()
print("training with", a.label, a.note, flush=True)
print("warning: stderr says", a.label, file=sys.stderr, flush=True)
if a.lr >= 1.0 and a.hidden >= 64:
    print("Traceback (most recent call last):\nRuntimeError: loss diverged " + a.label, file=sys.stderr)
    sys.exit(3)
base = 0.6 + 0.08 * math.log10(a.lr * 1000) + a.hidden / 640 + 0.01 * a.seed
for epoch in range(1, 9):
    loss = 1.5 / epoch * (1.1 - base)
    print(json.dumps({"epoch": epoch, "loss": round(loss, 5), "accuracy": round(base * (1 - 0.5 / epoch), 5)}))
os.makedirs("sub", exist_ok=True)
open("model.txt", "w").write("weights")
open("sub/curve.csv", "w").write("epoch,loss\n1,0.5\n")
res = {"accuracy": round(base, 5), "loss": round(loss, 5), "note": a.label + a.note}
if a.status:
    res.update({"status": a.status, "message": "server said " + a.label})
print(json.dumps(res), flush=True)
"""


def write_sweep(sp: Spool, sid: str, points: list[dict], metric: dict | None, parameters: dict) -> list[str]:
    doc = {
        "id": sid,
        "name": f"{sid} sweep",
        "script": "train_fake.py",
        "created": "2026-01-01T00:00:00+00:00",
        "method": "grid",
        "parameters": parameters,
        "seeds": 3,
        "count": len(points),
        "metric": metric,
        "template": {},
    }
    sp.layout.sweeps.mkdir(exist_ok=True)
    (sp.layout.sweeps / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (sp.layout.sweeps / f"{sid}.points.json").write_text(json.dumps(points))
    ids = []
    for i, point in enumerate(points):
        ids.append(sp.submit("train_fake.py", point, job_id=f"{sid}-{i:05d}", sweep=sid))
    return ids


def run_runner(sp: Spool, name: str = "r1", slots: int = 2) -> None:
    proc = subprocess.run(
        [
            str(SPOOL_BIN),
            "--spool",
            str(sp.root),
            "runner",
            "--exit-when-idle",
            "--slots",
            str(slots),
            "--name",
            name,
            "-q",
            "--scan-interval",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr


def make_spool(root: Path) -> Spool:
    """A real spool run by a real runner: sweep `grid` (24 jobs, 3 failing), sweep `xss`, two loose jobs."""
    sp = Spool.init(root)
    (sp.scripts_dir / "train_fake.py").write_text(SCRIPT)
    points = [
        {"lr": lr, "hidden": h, "seed": s}
        for lr in (0.001, 0.01, 0.1, 1.0)
        for h in (16, 64)
        for s in range(3)
    ]
    write_sweep(
        sp,
        "grid",
        points,
        {"name": "accuracy", "goal": "maximize"},
        {"lr": {"values": [0.001, 0.01, 0.1, 1.0]}, "hidden": {"values": [16, 64]}},
    )
    xss_points = [
        {"lr": 0.01, "hidden": 16, "seed": 0, "label": XSS_SCRIPT, "note": XSS_IMG},
        {"lr": 0.1, "hidden": 16, "seed": 0, "label": XSS_ALERT_IMG, "note": "plain"},
        {"lr": 0.1, "hidden": 16, "seed": 1, "label": XSS_SCRIPT, "note": XSS_IMG, "status": 500},
    ]
    write_sweep(sp, "xss", xss_points, None, {"label": {"values": [XSS_SCRIPT, XSS_ALERT_IMG]}})
    sp.submit(
        "train_fake.py",
        {"lr": 0.05, "hidden": 32, "label": XSS_SCRIPT, "note": XSS_IMG},
        job_id="loose-xss",
        name=XSS_IMG,
    )
    sp.submit("train_fake.py", {"lr": 0.02, "hidden": 8}, job_id="loose-plain")
    run_runner(sp)
    return sp


def pc_position(axis: dict[str, Any], i: int) -> float:
    """Run i's place on a parallel-coordinates axis (0 bottom, 1 top; a missing value -0.05),
    computed from the page's JSON as static/parallel.js does."""
    if axis["kind"] == "cat":
        return float(axis["x"][i] / max(len(axis["cats"]) - 1, 1))
    v = axis["v"][i]
    if v is None:
        return -0.05
    t = math.log10(v) if axis["log"] else v
    return float((t - axis["lo"]) / ((axis["hi"] - axis["lo"]) or 1))
