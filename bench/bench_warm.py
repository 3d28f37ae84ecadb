"""Benchmark: warm mode. A pandas-importing job, cold vs `spool runner --warm pandas`.

The same `--jobs` jobs (a script that imports pandas, builds a small frame and prints one JSON
result) run by a cold runner and by a warm one, 1 slot, rounds alternating. Per job: the
median `duration` in result.json (claim to result published), and the throughput of the whole
run (jobs / (last end - first start)). The warm runner's first job waits for its server's
imports and is left out. Also shown: the bare floor of a cold job, `python -c "import pandas"`.

Goal (issue 9): a pandas-importing job >= 10x faster per job warm than cold.

    .venv/bin/python bench/bench_warm.py [--jobs 30] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, SPOOL, load_note, median, report_goals, table

SCRIPT = """\
import json, sys
import pandas as pd
df = pd.DataFrame({"x": range(100)})
print(json.dumps({"sum": int(df.x.sum()), "arg": sys.argv[1:]}))
"""


def run(work: Path, tag: str, jobs: int, *flags: str) -> tuple[list[float], float, list[dict]]:
    from spool.api import Spool

    sp = Spool.init(work / f"spool-{tag}-{time.monotonic_ns()}")
    (sp.scripts_dir / "pd_job.py").write_text(SCRIPT)
    ids = [sp.submit("pd_job.py", {"i": i}, job_id=f"warm-{i:04d}") for i in range(jobs + 1)]
    subprocess.run(
        [SPOOL, "--spool", str(sp.root), "runner", "--exit-when-idle", "-q", "--nice", "0", *flags],
        check=True,
    )
    recs = [json.loads((sp.root / "done" / j / "result.json").read_text()) for j in ids]
    recs = recs[1:]  # the first job of a warm runner waits for the server's imports
    durations = [float(r["duration"]) for r in recs]
    start = min(datetime.fromisoformat(r["started"]).timestamp() for r in recs)
    end = max(datetime.fromisoformat(r["ended"]).timestamp() for r in recs)
    return durations, jobs / (end - start), recs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    args = ap.parse_args(argv)
    cold: list[float] = []
    warm: list[float] = []
    cold_tp: list[float] = []
    warm_tp: list[float] = []
    floor = []
    used = True
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        work = Path(tmp)
        for r in range(args.repeat):
            for which in ("cold", "warm") if r % 2 == 0 else ("warm", "cold"):
                if which == "cold":
                    d, tp, _ = run(work, "cold", args.jobs)
                    cold += d
                    cold_tp.append(tp)
                else:
                    d, tp, recs = run(work, "warm", args.jobs, "--warm", "pandas")
                    warm += d
                    warm_tp.append(tp)
                    used &= all(rec.get("warm", {}).get("used") for rec in recs)
                print(f"  round {r + 1}: {which}: median {1000 * median(d):.1f} ms/job", file=sys.stderr)
            t = time.perf_counter()
            subprocess.run([PY, "-c", "import pandas"], check=True)
            floor.append(time.perf_counter() - t)
    rows = [
        ["cold runner", f"{1000 * median(cold):.1f}", f"{median(cold_tp):.1f}"],
        ["--warm pandas", f"{1000 * median(warm):.1f}", f"{median(warm_tp):.1f}"],
        ["floor: python -c 'import pandas'", f"{1000 * median(floor):.1f}", ""],
    ]
    print(f"Warm mode: {args.jobs} pandas jobs per run, {args.repeat} runs each, 1 slot ({load_note()})")
    print(table(rows, ["runner", "ms per job (median duration)", "jobs/s"]))
    ratio = median(cold) / median(warm)
    tp_ratio = median(warm_tp) / median(cold_tp)
    goals = [
        ("pandas job >= 10x faster per job warm", f"{ratio:.1f}x", ratio >= 10 and used),
        ("  throughput, warm vs cold", f"{tp_ratio:.1f}x", None),
        ("  every warm job ran warm", str(used), None),
    ]
    return report_goals(
        goals, args.json, {"cold": cold, "warm": warm, "cold_tp": cold_tp, "warm_tp": warm_tp}
    )


if __name__ == "__main__":
    sys.exit(main())
