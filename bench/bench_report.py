"""Benchmark of `spool report`: the three goals of a report that keeps up with a running sweep.

Generates realistic spools (each folder as a runner leaves it: job.json, result.json, stdout.log,
stderr.log, metrics.jsonl with ~10 lines, outputs/; 5 sweeps with their sweeps/<id>.yaml, ~3%
failures of several kinds, four hosts, 5% loose jobs) of SMALL and LARGE jobs and prints, with
PASS/FAIL:

    full build of 1,000 jobs in 5 sweeps          goal <= 3 s
    incremental rebuild after one new job lands   goal <= 0.3 s   (median of --repeat, LARGE spool)
    full build of 10,000 jobs                     goal <= 15 s

and, without goals, the ratio large/small, a rebuild with nothing changed, and the pieces of the
build's CPU time. Each figure is wall time (the goal) and CPU time of the build's process plus
its worker processes (on a busy machine wall time is mostly other processes' noise; CPU is the
build's own cost). All builds run in this one process after a warm-up build of a tiny spool, so
imports, font caches and the worker pool's start count in none of the figures; the pool's start
is printed on its own. `--processes N` sets the workers (default: one per core; 0: none).

    python bench/bench_report.py [--sizes 1000 10000] [--processes N] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

HOSTS = [
    ("desktop-1060", "cuda", 2, 1.0),
    ("mbp-2015", "cpu", 1, 2.6),
    ("mbp-2017", "cpu", 1, 2.1),
    ("laptop", "cpu", 1, 1.6),
]
SWEEPS = 5
LOOSE_SHARE = 0.05
T0 = datetime(2026, 3, 1, 20, 0, tzinfo=timezone.utc)


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


class SpoolMaker:
    """Writes job folders the way the runner does, with a per-host clock for start/end times."""

    def __init__(self, root: Path, seed: int = 0):
        from spool.api import Spool

        self.sp = Spool.init(root)
        self.root = root
        self.rng = random.Random(seed)
        self.clock = {(h, s): T0 for h, _, slots, _ in HOSTS for s in range(slots)}

    def _slot(self) -> tuple[str, str, float, tuple[str, int]]:
        key = min(self.clock, key=lambda k: self.clock[k])
        host, device, _, speed = next(h for h in HOSTS if h[0] == key[0])
        return host, device, speed, key

    def sweep_def(self, sid: str, count: int, metric: dict[str, str] | None) -> None:
        doc = {
            "id": sid,
            "name": f"mlp {sid[-1]}",
            "description": None,
            "script": "train_mlp.py",
            "created": T0.isoformat(),
            "method": "grid",
            "seeds": 3,
            "count": count,
            "metric": metric,
            "template": {"params": {"epochs": 10, "dataset": "iris_small.csv"}},
            "parameters": {
                "lr": {"values": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]},
                "hidden": {"values": [16, 32, 64, 128, 256]},
                "dropout": {"min": 0.0, "max": 0.5},
                "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
            },
        }
        self.sp.layout.sweeps.mkdir(exist_ok=True)
        (self.sp.layout.sweeps / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def job(self, job_id: str, sweep: str | None, index: int) -> None:
        rng = self.rng
        lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
        point = index // 3
        params: dict[str, Any] = {
            "lr": lrs[point % 7],
            "hidden": [16, 32, 64, 128, 256][(point // 7) % 5],
            "dropout": round(((point * 7919) % 11) / 20, 2),
            "optimizer": ["adam", "sgd", "rmsprop"][(point // 35) % 3],
            "seed": index % 3,
            "epochs": 10,
            "dataset": "iris_small.csv",
        }
        host, device, speed, key = self._slot()
        started = self.clock[key] + timedelta(seconds=rng.uniform(0.2, 2.0))
        duration = speed * rng.uniform(20, 40) * (1 + params["hidden"] / 256)
        ended = started + timedelta(seconds=duration)
        self.clock[key] = ended
        quality = (
            0.93
            - 0.03 * abs(math.log10(params["lr"]) + 2.3)
            + 0.01 * math.log2(params["hidden"] / 16)
            - 0.08 * params["dropout"] ** 2
            - (0.02 if params["optimizer"] == "sgd" else 0)
            + rng.gauss(0, 0.01)
        )
        failed_kind = None
        r = rng.random()
        if r < 0.015:
            failed_kind = "exit"
        elif r < 0.022:
            failed_kind = "timeout"
        elif r < 0.03:
            failed_kind = "no_result"
        state = "failed" if failed_kind else "done"
        folder = self.sp.layout.state_dir(self.sp_state(state)) / job_id
        (folder / "outputs").mkdir(parents=True)
        job = {"script": "train_mlp.py", "params": params}
        if sweep:
            job["sweep"] = sweep
        (folder / "job.json").write_text(json.dumps(job, indent=1) + "\n")
        lines = []
        epochs = 10 if not failed_kind else rng.randint(1, 9)
        for e in range(1, epochs + 1):
            loss = (1 - quality) * 3 / math.sqrt(e) + rng.gauss(0, 0.005)
            lines.append({"epoch": e, "loss": round(loss, 5), "accuracy": round(quality * (1 - 0.4 / e), 5)})
        result = None
        if not failed_kind:
            result = {
                "accuracy": round(quality, 5),
                "loss": lines[-1]["loss"],
                "f1": round(quality - 0.01, 5),
                "params_m": round(params["hidden"] * 0.0042, 4),
            }
            lines.append(result)
        (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (folder / "stdout.log").write_text(
            "".join(json.dumps(x) + "\n" for x in lines) + f"saved model to {folder.name}/outputs/model.pt\n"
        )
        stderr = (
            ""
            if not failed_kind
            else (
                'Traceback (most recent call last):\n  File "train_mlp.py", line 88, in <module>\n'
                "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
            )
        )
        (folder / "stderr.log").write_text(stderr)
        (folder / "outputs" / "model.pt").write_bytes(b"\0" * 64)
        error = None
        if failed_kind:
            msg = {
                "exit": "the script exited with status 1",
                "timeout": "stopped after the 120 s timeout",
                "no_result": "the script printed no JSON object on stdout",
            }[failed_kind]
            error = {"kind": failed_kind, "message": msg, "stderr_tail": stderr}
        full_job = {
            "script": "train_mlp.py",
            "params": params,
            "contract": "flags",
            "requires": None,
            "timeout": None,
            "retries": 0,
            "priority": 0,
            "sweep": sweep,
            "name": None,
            "rev": None,
            "env": {},
            "args": [],
        }
        rec = {
            "format": 1,
            "id": job_id,
            "state": state,
            "job": full_job,
            "result": result,
            "error": error,
            "runner": f"{host}.4242",
            "host": host,
            "python": "/usr/bin/python3",
            "python_version": "3.11.7",
            "device": device,
            "started": started.isoformat(),
            "ended": ended.isoformat(),
            "duration": round(duration, 6),
            "exit_code": 1 if failed_kind == "exit" else (0 if not failed_kind else None),
            "attempt": 1,
            "metrics_count": len(lines),
            "provenance": {},
        }
        _dump(folder / "result.json", rec)

    @staticmethod
    def sp_state(state: str) -> Any:
        from spool.states import State

        return State(state)


def make_spool(root: Path, n: int, seed: int = 0) -> dict[str, Any]:
    m = SpoolMaker(root, seed)
    loose = max(1, int(n * LOOSE_SHARE))
    per = (n - loose) // SWEEPS
    sizes = [per] * SWEEPS
    sizes[-1] += n - loose - per * SWEEPS
    sids = []
    for k, size in enumerate(sizes):
        sid = f"sw{k}"
        metric = {"name": "accuracy", "goal": "maximize"} if k % 2 == 0 else None
        m.sweep_def(sid, size + 1, metric)  # one point still to come (the incremental step adds it)
        for i in range(size):
            m.job(f"{sid}-{i:05d}", sid, i)
        sids.append((sid, size))
    for i in range(loose):
        m.job(f"20260301T2000{i // 100:02d}-{i % 100:06d}-ab12", None, i)
    # two runner heartbeats
    for host, _, slots, _ in HOSTS[:2]:
        _dump(
            m.sp.layout.runners / f"{host}.4242.json",
            {
                "name": f"{host}.4242",
                "host": host,
                "status": "idle",
                "jobs": [],
                "last_seen": T0.isoformat(),
                "slots": slots,
                "heartbeat_seconds": 5,
                "capabilities": {"cpu_count": 8, "memory_gb": 16, "gpu": host.startswith("desktop")},
            },
        )
    return {"maker": m, "sweeps": sids}


GOALS = {"full_1000": 3.0, "incremental": 0.3, "full_10000": 15.0}


def timed_build(root: Path, processes: int | None) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process and the build's workers, BuildStats)."""
    from report.build import build

    t, c = time.perf_counter(), time.process_time()
    _, stats = build(make_sp(root), processes=processes)
    wall, own = time.perf_counter() - t, time.process_time() - c
    return wall, own + stats.timings.get("workers", 0.0), stats


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def _incremental(base: Path, large: dict[str, Any], repeat: int, processes: int | None) -> list[Any]:
    """One more finished job lands in a sweep of the large spool, then a rebuild; `repeat` times."""
    info = large["info"]
    root = base / f"spool-{large['jobs']}"
    incs = []
    for k in range(repeat):
        at = -1 - (k % len(info["sweeps"]))
        sid, size = info["sweeps"][at]
        job_id = f"{sid}-{size:05d}"
        info["maker"].job(job_id, sid, size)
        info["sweeps"][at] = (sid, size + 1)
        wall, cpu, stats = timed_build(root, processes)
        what = (stats.full, stats.jobs_rendered[:3], stats.sweeps_charted)
        assert stats.jobs_rendered == [job_id] and stats.sweeps_charted == [sid], what
        incs.append((wall, cpu, stats))
        print(
            f"incremental rebuild after {job_id}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
            f"charts drawn {len(stats.charts_drawn)}",
            file=sys.stderr,
        )
    return incs


def _table(r: dict[str, Any], small_n: int, large_n: int) -> None:
    def row(label: str, m: dict[str, Any], goal: float | None = None, key: str = "") -> None:
        ok = r["pass"].get(key)
        verdict = "" if goal is None or ok is None else f"<= {goal:g} s   {'PASS' if ok else 'FAIL'}"
        print(f"{label:<46} {m['wall_s']:>8.2f}s {m['cpu_s']:>8.2f}s   {verdict}")

    print(f"{'measure':<46} {'wall':>9} {'CPU':>9}   goal (wall)")
    goal_of = {1000: "full_1000", 10000: "full_10000"}  # the full-build goals, by size
    small, large = goal_of.get(small_n, ""), goal_of.get(large_n, "")
    row(f"full build, {small_n:,} jobs", r["full_small"], GOALS.get(small), small)
    row(
        f"incremental rebuild, +1 job in {large_n:,} (median of {r['incremental']['repeats']})",
        r["incremental"],
        GOALS["incremental"],
        "incremental",
    )
    row(f"full build, {large_n:,} jobs", r["full_large"], GOALS.get(large), large)
    row("rebuild with nothing changed", r["no_change_rebuild"])
    print(f"{'ratio large / small':<46} {r['ratio_wall']:>8.2f}x {r['ratio_cpu']:>8.2f}x")
    print(
        f"worker processes: {r['processes']} (pool start {r['pool_start_s'] * 1000:.0f} ms, once per process)"
    )
    print(
        "CPU of the large full build by phase: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in r["phases_large"].items())
    )
    if r["load_average"]:
        print("load average during the run: " + ", ".join(f"{x:.2f}" for x in r["load_average"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[1000, 10000], metavar=("SMALL", "LARGE"))
    ap.add_argument("--repeat", type=int, default=3, help="incremental rebuilds to time (median kept)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")
    ap.add_argument("--keep", metavar="DIR", help="build the spools here and keep them")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from report.workers import get_workers

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    base.mkdir(parents=True, exist_ok=True)
    small_n, large_n = args.sizes
    try:
        t = time.perf_counter()
        get_workers(args.processes).start()
        pool_start = time.perf_counter() - t
        warm = base / "warm"  # imports, font cache, first figure in every worker
        shutil.rmtree(warm, ignore_errors=True)
        make_spool(warm, 60)
        timed_build(warm, args.processes)
        full: dict[str, Any] = {}
        for n in (small_n, large_n):
            root = base / f"spool-{n}"
            shutil.rmtree(root, ignore_errors=True)
            t0 = time.perf_counter()
            info = make_spool(root, n)
            print(f"generated {n} jobs in {time.perf_counter() - t0:.1f} s: {root}", file=sys.stderr)
            wall, cpu, stats = timed_build(root, args.processes)
            assert stats.full and len(stats.jobs_rendered) == n, (stats.full, len(stats.jobs_rendered))
            full[str(n)] = {"jobs": n, "wall": wall, "cpu": cpu, "info": info, "stats": stats}
            print(f"full build of {n} jobs: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
        incs = _incremental(base, full[str(large_n)], args.repeat, args.processes)
        noop_wall, noop_cpu, noop = timed_build(base / f"spool-{large_n}", args.processes)
        s_, l_ = full[str(small_n)], full[str(large_n)]
        result: dict[str, Any] = {
            "full_small": {"jobs": small_n, "wall_s": round(s_["wall"], 3), "cpu_s": round(s_["cpu"], 3)},
            "full_large": {"jobs": large_n, "wall_s": round(l_["wall"], 3), "cpu_s": round(l_["cpu"], 3)},
            "ratio_wall": round(l_["wall"] / s_["wall"], 2),
            "ratio_cpu": round(l_["cpu"] / s_["cpu"], 2),
            "incremental": {
                "wall_s": round(_median([i[0] for i in incs]), 3),
                "cpu_s": round(_median([i[1] for i in incs]), 3),
                "repeats": len(incs),
            },
            "no_change_rebuild": {
                "wall_s": round(noop_wall, 3),
                "cpu_s": round(noop_cpu, 3),
                "jobs_rendered": len(noop.jobs_rendered),
            },
            "processes": l_["stats"].processes,
            "pool_start_s": round(pool_start, 3),
            "phases_large": l_["stats"].timings,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        }
        sizes = {small_n: result["full_small"], large_n: result["full_large"]}
        result["pass"] = {  # a goal whose size was not built is not judged (None)
            "full_1000": sizes[1000]["wall_s"] <= GOALS["full_1000"] if 1000 in sizes else None,
            "incremental": result["incremental"]["wall_s"] <= GOALS["incremental"],
            "full_10000": sizes[10000]["wall_s"] <= GOALS["full_10000"] if 10000 in sizes else None,
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            _table(result, small_n, large_n)
        return 0 if all(v is not False for v in result["pass"].values()) else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def make_sp(root: Path) -> Any:
    from spool.api import Spool

    return Spool(root)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
