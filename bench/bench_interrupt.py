"""Benchmark: interrupted work. train_mlp for N epochs, its runner killed once at 60 %.

Resume: a runner runs the job; when the 60 % epoch's record appears it is SIGKILLed (its
script dies with it); a second runner takes the job over once the lease (4 s here) runs out
and runs it to the end. *Epoch-time spent* is the epochs trained in all attempts (each
epoch's record, in `attempts/<n>/metrics.jsonl` and the last attempt's) plus the fraction of
the epoch in flight at the kill; divided by N. The baseline, in the same run, is the same job
without a checkpoint folder (`--checkpoint_dir=`): it starts again from epoch 1.

Stop notice: a runner is sent SIGTERM twice (the second is the stop) while it runs a script
that saves on SIGTERM and exits, and one that ignores SIGTERM (`stop_grace` 2 s): the time
from the runner's second SIGTERM to the script's handler and to the job back in `pending/`.

Goal (issue 17): epoch-time spent / N <= 1.1 with the checkpoint (about 1.6 without).

    .venv/bin/python bench/bench_interrupt.py [--epochs 10] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SCRIPTS, SPOOL, load_note, median, report_goals, table

LEASE = 4
CUT = 0.6

#: a script that saves (here: notes the time) on the stop notice and exits, or ignores it
STOPPABLE = """\
import json, os, signal, sys, time
mark = os.path.join(os.environ["SPOOL_OUTPUT_DIR"], "started")
def on_term(*_):
    open(os.path.join(os.environ["SPOOL_OUTPUT_DIR"], "term"), "w").write(repr(time.time()))
    if "--ignore=True" in sys.argv[1:]:
        return
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
open(mark, "w").write(repr(time.time()))
while True:
    time.sleep(0.01)
"""


def _spool(root: Path) -> Any:
    from spool.api import Spool

    sp = Spool.init(root)
    toml = sp.root / "spool.toml"
    toml.write_text(toml.read_text().replace("lease_seconds = 60", f"lease_seconds = {LEASE}"))
    (sp.scripts_dir / "train_mlp.py").write_bytes((SCRIPTS / "train_mlp.py").read_bytes())
    (sp.scripts_dir / "stoppable.py").write_text(STOPPABLE)
    return Spool(sp.root)


def _runner(sp: Any, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [SPOOL, "--spool", str(sp.root), "runner", "-q", "--nice", "0", "--scan-interval", "0.2", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _epochs(path: Path) -> int:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    return sum(1 for ln in lines if '"epoch"' in ln)


def interrupted_run(work: Path, epochs: int, checkpoint: bool) -> dict[str, float]:
    """One job killed at CUT of its epochs and finished by a second runner: its figures."""
    sp = _spool(work)
    params: dict[str, Any] = {"epochs": epochs, "data": "synthetic", "hidden": 128, "batch_size": 16}
    if not checkpoint:
        params["checkpoint_dir"] = ""
    jid = sp.submit({"script": "train_mlp.py", "params": params, "retries": 1})
    first = _runner(sp)
    cut = max(1, int(round(CUT * epochs)))
    seen: list[float] = []  # when each epoch record appeared (polled every 5 ms)
    metrics: Path | None = None
    while len(seen) < cut:
        if metrics is None:
            found = list((sp.root / "claimed").glob("*/metrics.jsonl"))
            metrics = found[0] if found else None
        n = _epochs(metrics) if metrics else 0
        seen += [time.perf_counter()] * (n - len(seen))
        if first.poll() is not None:
            raise RuntimeError("the first runner ended before the cut")
        time.sleep(0.005)
    # the first epoch's time includes the script's start (import torch): judge epochs by the rest
    per_epoch = (seen[-1] - seen[0]) / max(1, len(seen) - 1)
    time.sleep(per_epoch * 0.5)  # kill halfway through the next epoch
    killed_at = time.perf_counter()
    first.send_signal(signal.SIGKILL)
    first.wait()
    in_flight = (killed_at - seen[-1]) / per_epoch
    second = _runner(sp, "--exit-when-idle")
    second.wait(timeout=600)
    view = sp.get(jid)
    assert view.state.value == "done", (view.state, view.result)
    done_epochs = _epochs(view.path / "metrics.jsonl")
    earlier = sum(_epochs(p / "metrics.jsonl") for p in (view.path / "attempts").iterdir())
    spent = earlier + in_flight + done_epochs
    return {"spent": spent, "ratio": spent / epochs, "per_epoch_s": per_epoch, "in_flight": in_flight}


def stop_notice(work: Path, ignore: bool, grace: float) -> dict[str, float]:
    """SIGTERM to a runner running `stoppable.py`: seconds to the script's end and to pending/."""
    sp = _spool(work)
    job = {"script": "stoppable.py", "params": {"ignore": ignore}, "stop_grace": grace}
    jid = sp.submit(job)
    runner = _runner(sp)
    while not list((sp.root / "claimed").glob("*/outputs/started")):
        time.sleep(0.005)
    runner.send_signal(signal.SIGTERM)  # the first: finish what runs, take nothing new
    time.sleep(0.5)
    sent = time.time()
    runner.send_signal(signal.SIGTERM)  # the second: the stop notice
    pending = sp.root / "pending" / jid
    while not pending.is_dir():
        time.sleep(0.002)
    back = time.time() - sent
    runner.wait(timeout=60)
    rec = json.loads((pending / "result.json").read_text())
    term = (
        float((pending / "outputs" / "term").read_text()) - sent
        if (pending / "outputs" / "term").exists()
        else -1
    )
    assert rec["state"] == "interrupted", rec
    return {"notice_s": term, "back_s": back, "script_s": float(rec.get("duration") or 0.0)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--grace", type=float, default=2.0, help="stop_grace of the script that ignores SIGTERM")
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    args = ap.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"resume": [], "baseline": []}
    stops: dict[str, list[dict[str, float]]] = {"saves and exits": [], "ignores SIGTERM": []}
    with tempfile.TemporaryDirectory(prefix="bench-interrupt-") as tmp:
        for i in range(args.repeat):
            for name, ckpt in (("resume", True), ("baseline", False)):
                runs[name].append(interrupted_run(Path(tmp) / f"{name}-{i}", args.epochs, ckpt))
                print(f"  round {i + 1} {name}: {runs[name][-1]}", file=sys.stderr)
            for name, ignore in (("saves and exits", False), ("ignores SIGTERM", True)):
                stops[name].append(stop_notice(Path(tmp) / f"stop-{i}-{ignore}", ignore, args.grace))
    print(
        f"Interrupted once at {CUT:.0%}: train_mlp.py, {args.epochs} epochs, lease {LEASE} s ({load_note()})"
    )
    rows = [
        [
            name,
            f"{median([r['per_epoch_s'] for r in rs]):.2f}",
            f"{median([r['in_flight'] for r in rs]):.2f}",
            f"{median([r['spent'] for r in rs]):.2f}",
            f"{median([r['ratio'] for r in rs]):.3f}",
        ]
        for name, rs in runs.items()
    ]
    print(table(rows, ["run", "s per epoch", "epoch in flight at the kill", "epochs spent", "spent / N"]))
    print()
    print(f"Stop notice: the runner's second SIGTERM; stop_grace {args.grace:g} s for the script ignoring it")
    srows = [
        [
            name,
            f"{1000 * median([s['notice_s'] for s in ss]):.0f}",
            f"{1000 * median([s['back_s'] for s in ss]):.0f}",
        ]
        for name, ss in stops.items()
    ]
    print(table(srows, ["script", "SIGTERM to the script's handler, ms", "SIGTERM to back in pending/, ms"]))
    ratio = median([r["ratio"] for r in runs["resume"]])
    base = median([r["ratio"] for r in runs["baseline"]])
    ignored_back = median([s["back_s"] for s in stops["ignores SIGTERM"]])
    goals = [
        ("epoch-time spent / N <= 1.1 (resumed from the checkpoint)", f"{ratio:.3f}", ratio <= 1.1),
        ("  the same without a checkpoint (baseline)", f"{base:.3f}", None),
        (
            f"  a script ignoring the notice is back in pending/ after its {args.grace:g} s grace",
            f"{ignored_back:.2f} s",
            args.grace <= ignored_back < args.grace + 5,
        ),
    ]
    return report_goals(goals, args.json, {"runs": runs, "stops": stops, "pid": os.getpid()})


if __name__ == "__main__":
    sys.exit(main())
