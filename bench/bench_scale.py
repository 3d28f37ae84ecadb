"""Benchmark: the size of the folder. 100,000 pending jobs for the CLI, 10,000 for the runner.

- `spool status` and `spool ls --state pending --json` over 100,000 pending jobs, whole command
  (interpreter start included), median of `--repeat` runs. Goal: status <= 0.5 s.
- the CLI imports neither pandas, matplotlib nor torch for submit/status/ls/show (each verb is
  run in a fresh interpreter that reports `sys.modules` when it is done).
- the runner over 10,000 pending jobs it cannot run (they require a tag it lacks): the first
  scan (reads and validates every file), a full rescan (after the folder changed), an unchanged
  scan. Goal: <= 50 ms per scan.
- a real idle runner process over those 10,000 jobs: its CPU time (all threads, from
  /proc/<pid>/stat) over `--idle` seconds, with file events and with polling only.
  Goal: <= 1% of one core.

    .venv/bin/python bench/bench_scale.py [--pending 100000] [--unrunnable 10000] [--idle 20]
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
from _common import (
    PY,
    SPOOL,
    load_note,
    make_spool,
    median,
    proc_cpu,
    table,
    verdict,
    wait_until,
    write_json,
)

HEAVY = ("pandas", "matplotlib", "torch")
PROBE = (
    "import sys, json\n"
    "from spool.cli.main import main\n"
    "sys.argv = ['spool'] + sys.argv[1:]\n"
    "try:\n"
    "    code = main()\n"
    "finally:\n"
    "    sys.stdout.flush()\n"
    f"    heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
    "    sys.stderr.write('\\nHEAVY ' + json.dumps(heavy) + '\\n')\n"
)


def whole(cmd: list[str], repeat: int) -> tuple[float, int]:
    times = []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
        size = len(p.stdout)
    return median(times), size


def heavy_imports(root: Path, job_id: str) -> dict[str, list[str]]:
    out = {}
    verbs = {
        "submit": ["submit", "noop.py", "-p", "x=1"],
        "status": ["status"],
        "ls": ["ls", "--state", "done"],
        "show": ["show", job_id],
    }
    for verb, args in verbs.items():
        p = subprocess.run(
            [PY, "-c", PROBE, "--spool", str(root), *args], capture_output=True, text=True, timeout=120
        )
        line = [ln for ln in p.stderr.splitlines() if ln.startswith("HEAVY ")]
        out[verb] = json.loads(line[-1][6:]) if line else ["(did not run: " + p.stderr.strip()[-200:] + ")"]
    return out


def runner_scans(root: Path, repeat: int) -> dict[str, float]:
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from runner.machine.capabilities import detect
    from spool.api import Spool

    sp = Spool(root)
    r = Runner(sp, RunnerOptions(name="scanbench", nice=0), caps=detect(PY, [], probe_torch=False))
    pending = root / "pending"

    def timed() -> float:
        t = time.perf_counter()
        r._take_work(time.monotonic())
        return time.perf_counter() - t

    first = timed()
    assert not r.slots, "the bench's jobs must be ones this runner cannot run"
    full, same = [], []
    for i in range(repeat):
        marker = pending / f".bench-{i}"
        marker.write_text("")  # a change of the folder: the next scan reads it in full
        marker.unlink()
        time.sleep(1.1)  # a folder stamp younger than a second is never trusted (see Scanner)
        full.append(timed())
        same.append(timed())
    return {
        "first scan (reads 10k files)": first,
        "full rescan (folder changed)": median(full),
        "unchanged folder": median(same),
    }


def idle_cpu(root: Path, seconds: float, *flags: str) -> tuple[float, float]:
    name = "idle" + "".join(f.strip("-")[:2] for f in flags)
    proc = subprocess.Popen(
        [SPOOL, "--spool", str(root), "runner", "-q", "--nice", "0", "--name", name, *flags]
    )
    try:
        beat = root / "runners" / f"{name}.json"

        def idle() -> bool:
            try:
                return json.loads(beat.read_text()).get("status") == "idle"
            except (OSError, ValueError):
                return False

        if not wait_until(idle, 180):
            raise RuntimeError("the runner did not become idle")
        time.sleep(3)  # past its first scans
        c0, t0 = proc_cpu(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = proc_cpu(proc.pid), time.monotonic()
        return (c1 - c0) / (t1 - t0), c1 - c0
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pending", type=int, default=100_000, help="pending jobs for the CLI (default 100,000)")
    ap.add_argument("--unrunnable", type=int, default=10_000, help="jobs the runner cannot run (10,000)")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured (default 20)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    args = ap.parse_args(argv)
    goals: list[tuple[str, str, bool | None]] = []
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        big = Path(tmp) / "big"
        t = time.perf_counter()
        make_spool(big, args.pending)
        print(f"(made {args.pending} pending jobs in {time.perf_counter() - t:.1f} s)", file=sys.stderr)
        status, _ = whole([SPOOL, "--spool", str(big), "status"], args.repeat)
        ls, size = whole(
            [SPOOL, "--spool", str(big), "ls", "--state", "pending", "--json"], max(1, args.repeat // 2)
        )
        bare, _ = whole([PY, "-c", "pass"], args.repeat)
        rows = [
            [f"spool status ({args.pending:,} pending)", f"{status:.3f}"],
            [f"spool ls --state pending --json ({size / 1e6:.1f} MB out)", f"{ls:.3f}"],
            ["floor: the interpreter starting and stopping", f"{bare:.3f}"],
        ]
        print(f"Scale: whole commands, median seconds ({load_note()})")
        print(table(rows, ["command", "seconds"]))
        goals.append(("spool status <= 0.5 s", f"{status:.3f} s", status <= 0.5))
        goals.append(("spool ls --state pending --json", f"{ls:.3f} s", None))
        heavy = heavy_imports(big, "bench-000000")
        clean = all(not v for v in heavy.values())
        goals.append(
            (
                "no pandas/matplotlib/torch in submit/status/ls/show",
                ", ".join(f"{k}: {v if v else '-'}" for k, v in heavy.items()),
                clean,
            )
        )
        out.update(status=status, ls=ls, floor=bare, heavy=heavy)

        small = Path(tmp) / "unrunnable"
        make_spool(small, args.unrunnable, job={"script": "noop.py", "requires": {"tags": ["bench-never"]}})
        scans = runner_scans(small, args.repeat)
        print()
        print(f"Runner over {args.unrunnable:,} pending jobs it cannot run: one scan (take_work), ms")
        print(table([[k, f"{1000 * v:.2f}"] for k, v in scans.items()], ["scan", "ms"]))
        worst = max(scans["full rescan (folder changed)"], scans["unchanged folder"])
        goals.append(
            ("runner scan of 10k unrunnable <= 50 ms", f"{1000 * worst:.1f} ms (full rescan)", worst <= 0.05)
        )
        cpu_ev, _ = idle_cpu(small, args.idle)
        cpu_poll, _ = idle_cpu(small, args.idle, "--no-events")
        print()
        print(f"Idle runner over {args.unrunnable:,} unrunnable jobs, CPU over {args.idle:g} s")
        print(
            table(
                [["file events + scans", f"{100 * cpu_ev:.3f}%"], ["polling only", f"{100 * cpu_poll:.3f}%"]],
                ["mode", "CPU (% of one core)"],
            )
        )
        goals.append(
            (
                "idle runner <= 1% of one core",
                f"{100 * max(cpu_ev, cpu_poll):.3f}%",
                max(cpu_ev, cpu_poll) <= 0.01,
            )
        )
        out.update(scans=scans, idle_cpu_events=cpu_ev, idle_cpu_polling=cpu_poll)
    print()
    print(
        table(
            [[g, v, "info" if ok is None else verdict(ok)] for g, v, ok in goals],
            ["goal", "measured", "verdict"],
        )
    )
    out["goals"] = goals
    write_json(args.json, out)
    return 0 if all(ok is not False for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
