"""Benchmark: `Spool(path).results()` against the bare floor of reading the same files.

The floor is what no loader can beat: one `os.scandir` per state folder, `json.load` of each
`result.json`, and one `pd.DataFrame` of the raw (nested) dicts. housespool must stay within
1.5x of it while flattening params and results, typing the columns and handling failed jobs.

    .venv/bin/python bench/bench_results.py            # 10,000 finished jobs
    .venv/bin/python bench/bench_results.py --n 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

try:
    from spool.api import Spool
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from spool.api import Spool

import pandas as pd

GOAL = 1.5
HOSTS = ["desktop", "macbook-2013", "macbook-2015", "laptop"]
DEVICES = {"desktop": "cuda", "macbook-2013": "cpu", "macbook-2015": "cpu", "laptop": "mps"}
FAIL_KINDS = ["exit", "no_result", "timeout", "status", "cancelled", "lost_lease"]


def _dump(obj: Any) -> bytes:
    """Exactly what `spool.protocol.publish_json` writes."""
    return json.dumps(obj, indent=1, default=str).encode() + b"\n"


def _full_job(script: str, params: dict[str, Any], sweep: str, index: int) -> dict[str, Any]:
    """The validated job as the runner embeds it (`Job.model_dump(mode="json")`: every field)."""
    return {
        "script": script,
        "params": params,
        "contract": "flags",
        "requires": None,
        "timeout": None,
        "retries": 0,
        "priority": 0,
        "sweep": sweep,
        "name": f"mlp-{index}",
        "rev": None,
        "env": {},
        "args": [],
        "inputs": [],
        "warm": None,
    }


def make_spool(root: Path, n: int, seed: int = 0) -> dict[str, int]:
    """A spool with `n` finished jobs (about 2% failed), written in the exact on-disk format."""
    rng = random.Random(seed)
    sp = Spool.init(root)
    (sp.scripts_dir / "train_mlp.py").write_text("print('{}')\n")
    sweep = "20261125T030000-000000-bench"
    (sp.layout.sweeps / f"{sweep}.yaml").write_text(f"id: {sweep}\nscript: train_mlp.py\n")
    t0 = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    counts = {"done": 0, "failed": 0}
    for i in range(n):
        job_id = f"{sweep}-{i:05d}"
        params = {
            "lr": round(10 ** rng.uniform(-4, -1), 6),
            "hidden": rng.choice([32, 64, 128, 256]),
            "dropout": rng.choice([0.0, 0.1, 0.3]),
            "optimizer": rng.choice(["adam", "sgd"]),
            "seed": i % 5,
        }
        job = _full_job("train_mlp.py", params, sweep, i)
        host = rng.choice(HOSTS)
        duration = round(rng.uniform(5, 600), 6)
        started = t0 + timedelta(seconds=i * 7.3)
        ended = started + timedelta(seconds=duration)
        failed = rng.random() < 0.02
        state = "failed" if failed else "done"
        folder = sp.layout.root / state / job_id
        folder.mkdir()
        (folder / "job.json").write_bytes(
            json.dumps(
                {"script": "train_mlp.py", "params": params, "sweep": sweep, "name": f"mlp-{i}"}, indent=1
            ).encode()
        )
        steps = 8
        curve = [{"epoch": e, "loss": round(2.0 / (e + 1) + rng.random() * 0.1, 5)} for e in range(steps)]
        result = {
            "val_acc": round(rng.uniform(0.5, 0.99), 6),
            "val_loss": round(rng.uniform(0.05, 1.5), 6),
            "epochs": steps,
            "test": {"acc": round(rng.uniform(0.5, 0.99), 6), "f1": round(rng.random(), 6)},
        }
        error = None
        exit_code: int | None = 0
        if failed:
            kind = rng.choice(FAIL_KINDS)
            error = {
                "kind": kind,
                "message": f"{kind}: the script went wrong at epoch {rng.randint(0, 7)}",
                "stderr_tail": "Traceback (most recent call last):\n  ...\nRuntimeError: boom\n",
            }
            result = None if kind != "status" else {"status": 500, "message": "bad data"}
            exit_code = {"exit": 1, "timeout": -15, "status": 0, "no_result": 0}.get(kind)
        (folder / "metrics.jsonl").write_bytes(b"".join(json.dumps(c).encode() + b"\n" for c in curve))
        rec = {
            "format": 1,
            "id": job_id,
            "state": state,
            "job": job,
            "result": result,
            "error": error,
            "runner": f"{host}.{1000 + i % 7}",
            "host": host,
            "python": "/home/me/.venvs/ml/bin/python",
            "python_version": "3.11.7",
            "device": DEVICES[host],
            "started": started.isoformat(),
            "ended": ended.isoformat(),
            "duration": duration,
            "exit_code": exit_code,
            "attempt": 1,
            "metrics_count": steps,
            "provenance": {
                "git": {"commit": "3f2a9c1" + f"{i % 16:x}" * 33, "branch": "main", "dirty": i % 10 == 0}
            },
        }
        (folder / "result.json").write_bytes(_dump(rec))
        counts[state] += 1
    return counts


def floor(root: Path) -> pd.DataFrame:
    """The bare floor: scandir + json.load per result.json + one DataFrame of the raw dicts."""
    records = []
    for state in ("done", "failed"):
        with os.scandir(root / state) as it:
            for de in it:
                with open(os.path.join(de.path, "result.json")) as f:
                    records.append(json.load(f))
    return pd.DataFrame(records)


def housespool(root: Path) -> pd.DataFrame:
    return Spool(root).results(state=None)


def time_interleaved(fns: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="finished jobs (default 10,000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each, interleaved (median kept)")
    ap.add_argument("--keep", metavar="DIR", help="build the spool here and keep it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "spool-dir"
        t = time.perf_counter()
        counts = make_spool(root, args.n)
        print(
            f"made {args.n} jobs ({counts['done']} done, {counts['failed']} failed) in "
            f"{time.perf_counter() - t:.1f}s at {root}"
        )

        a, b = floor(root), housespool(root)  # warm the page cache and check both read everything
        assert len(a) == len(b) == args.n, (len(a), len(b))
        dotted = ", ".join(str(c) for c in b.columns if "." in str(c))
        print(f"housespool: {b.shape[1]} columns, e.g. {dotted[:100]}...")

        times = time_interleaved(
            {"floor": lambda: floor(root), "housespool": lambda: housespool(root)}, args.repeat
        )
        f_med, h_med = statistics.median(times["floor"]), statistics.median(times["housespool"])
        ratio = h_med / f_med
        verdict = "PASS" if ratio <= GOAL else "FAIL"

        env = dict(os.environ, SPOOL_DIR=str(root))
        spool_exe = Path(sys.executable).with_name("spool")
        cmd = [str(spool_exe)] if spool_exe.exists() else [sys.executable, "-m", "spool.cli.main"]
        cli = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(
                [*cmd, "results", "--all", "--csv"], env=env, check=True, stdout=subprocess.DEVNULL
            )
            cli.append(time.perf_counter() - t)

        print()
        print(f"results of {args.n:,} finished jobs (median of {args.repeat}, interleaved)")
        print(f"{'floor s':>9}  {'housespool s':>12}  {'ratio':>6}  {'goal':>7}  verdict")
        print(f"{f_med:9.3f}  {h_med:12.3f}  {ratio:5.2f}x  {'<= ' + str(GOAL) + 'x':>7}  {verdict}")
        print(
            f"reference: `spool results --all --csv > /dev/null` (a process, pandas import included): "
            f"{statistics.median(cli):.3f}s (median of 3)"
        )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
