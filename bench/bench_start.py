"""How soon a fresh `spool runner` takes its first job (issue 20: within 1 s, the probe off the path).

Each round, interleaved: a runner on a spool holding one tiny job, (a) with an empty probe cache
(the torch/GPU probe runs on a thread while the job runs) and (b) with the cache filled by (a);
the time is from launching the process to the job's `started` (wall clock, same machine).
Baselines measured in the same rounds: (c) the full probe alone (`detect`: what used to sit on
the start path) and (d) a bare `spool status` process (the interpreter's start and imports: the
floor any verb pays). Goals: (a) and (b) at most 1 s above (d).

    .venv/bin/python bench/bench_start.py [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import PY, SPOOL, load_note, median, table, verdict

from spool import Spool


def _first_job(root: Path, cache: Path) -> float:
    sp = Spool(root)
    job = sp.submit("s.py")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    t0 = time.time()
    subprocess.run([SPOOL, "--spool", str(root), "runner", "--exit-when-idle", "-q", "--nice", "0"],
                   env=env, check=True, capture_output=True, timeout=300)
    started = json.loads((root / "done" / job / "result.json").read_bytes())["started"]
    return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() - t0


def _probe() -> float:
    t = time.perf_counter()
    code = "import sys; from runner.machine.capabilities import detect; detect(sys.executable, [])"
    subprocess.run([PY, "-c", code], check=True, capture_output=True, timeout=300)
    return time.perf_counter() - t


def _status(root: Path) -> float:
    t = time.perf_counter()
    subprocess.run([SPOOL, "--spool", str(root), "status"], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    cold, warm, probe, status = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        root = Path(tmp) / "sp"
        sp = Spool.init(root)
        (sp.scripts_dir / "s.py").write_text("print('{\"ok\": 1}')\n")
        for i in range(args.rounds):
            cache = Path(tmp) / f"cache-{i}"
            cold.append(_first_job(root, cache))
            warm.append(_first_job(root, cache))
            probe.append(_probe())
            status.append(_status(root))
    floor = median(status)
    rows = [
        ["(a) runner, empty probe cache", f"{median(cold):.2f}", f"{median(cold) - floor:+.2f}"],
        ["(b) runner, probe cached", f"{median(warm):.2f}", f"{median(warm) - floor:+.2f}"],
        ["(c) the full probe alone (was on the path)", f"{median(probe):.2f}", ""],
        ["(d) `spool status` (interpreter + imports)", f"{floor:.2f}", "0"],
    ]
    print(load_note())
    print(f"{args.rounds} rounds, medians, seconds from launch to the first job's start\n")
    print(table(rows, ["what", "median s", "above (d)"]))
    above = {"a": median(cold) - floor, "b": median(warm) - floor}
    goals = [(f"({k}) first job within 1 s above the floor", f"{v:.2f} s", v <= 1) for k, v in above.items()]
    print()
    for g, m, ok in goals:
        print(f"{verdict(ok)}  {g}: {m}")
    if args.json:
        Path(args.json).write_text(json.dumps({"goals": goals}))
    return 0 if all(ok for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
