"""Benchmark: overhead on real work. The torch MLP example, fixed epochs, direct vs the runner.

Direct: `python scripts/train_mlp.py --epochs E --device cpu`, whole process wall time.
Through the runner: the same job in a spool, one `spool runner --exit-when-idle --nice 0` per
round; its time is the job's `duration` in result.json (claim to result published: the spawn,
the log and metrics pumping, the result) -- the runner's own start (its capability probe) is a
one-off per runner, not a cost on each job. Rounds alternate direct and runner runs. The
script's own `seconds` (its compute, after `import torch`) is compared too.

Goal (issue 9): through the runner <= 1% slower.

    .venv/bin/python bench/bench_overhead.py [--epochs 8] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, SCRIPTS, SPOOL, load_note, median, report_goals, table


def direct(args: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    p = subprocess.run([PY, str(SCRIPTS / "train_mlp.py"), *args], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    return wall, float(json.loads(p.stdout.strip().splitlines()[-1])["seconds"])


def through_runner(work: Path, i: int, params: dict[str, object]) -> tuple[float, float]:
    from spool.api import Spool

    sp = Spool.init(work / f"spool-{i}")
    (sp.scripts_dir / "train_mlp.py").write_bytes((SCRIPTS / "train_mlp.py").read_bytes())
    jid = sp.submit("train_mlp.py", params)
    subprocess.run(
        [SPOOL, "--spool", str(sp.root), "runner", "--exit-when-idle", "-q", "--nice", "0"], check=True
    )
    rec = json.loads((sp.root / "done" / jid / "result.json").read_text())
    return float(rec["duration"]), float(rec["result"]["seconds"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "digits"])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    args = ap.parse_args(argv)
    params: dict[str, object] = {"epochs": args.epochs, "data": args.data, "device": "cpu"}
    flags = [f"--{k}={v}" for k, v in params.items()]
    d_wall, d_sec, r_wall, r_sec = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        direct(["--epochs", "1", "--data", args.data, "--device", "cpu"])  # warm the page cache
        for i in range(args.repeat):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for which in order:
                if which == 0:
                    w, s = direct(flags)
                    d_wall.append(w)
                    d_sec.append(s)
                else:
                    w, s = through_runner(Path(tmp), i, params)
                    r_wall.append(w)
                    r_sec.append(s)
                print(f"  round {i + 1}: {'direct' if which == 0 else 'runner'} {w:.2f} s", file=sys.stderr)
    rows = [
        ["direct (whole process)", f"{median(d_wall):.3f}", f"{median(d_sec):.3f}"],
        ["through the runner (job duration)", f"{median(r_wall):.3f}", f"{median(r_sec):.3f}"],
    ]
    print(
        f"Overhead: train_mlp.py {' '.join(flags)}, median of {args.repeat} alternating rounds"
        f" ({load_note()})"
    )
    print(table(rows, ["run", "wall s", "script's own seconds"]))
    ratio = median(r_wall) / median(d_wall)
    compute = median(r_sec) / median(d_sec)
    goals = [
        ("through the runner <= 1% slower (wall)", f"{100 * (ratio - 1):+.2f}%", ratio <= 1.01),
        ("  the script's own compute, runner vs direct", f"{100 * (compute - 1):+.2f}%", None),
    ]
    return report_goals(
        goals, args.json, {"direct": d_wall, "runner": r_wall, "direct_s": d_sec, "runner_s": r_sec}
    )


if __name__ == "__main__":
    sys.exit(main())
