"""Run every benchmark (`make bench`): dispatch (on the temp folder, then on tmpfs), latency,
scale, overhead, interrupt, warm, results, report, hyperband, bayes.

Each runs as its own process, one after the other (they would skew each other if run at once);
its tables are printed as they come, then a summary of every goal's verdict. Exit status 1
when any goal failed. `--quick` runs small sizes (a smoke test of the benchmarks themselves,
not figures to quote); `--only NAME ...` runs some; `--out FILE` also writes everything printed
to FILE (markdown-friendly).

    .venv/bin/python bench/run_all.py [--quick] [--only dispatch warm] [--out bench.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, full-size args, quick args)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "dispatch": ("bench_dispatch.py", [], ["--n", "60", "--repeat", "1"]),
    # the same on tmpfs (what /tmp is on Fedora, Arch and Debian 13): a file create costs
    # ~0.005 ms there, against up to 0.9 ms on an ext4 folder whose block group is full
    "dispatch-tmpfs": (
        "bench_dispatch.py",
        ["--dir", "/dev/shm"],
        ["--n", "60", "--repeat", "1", "--dir", "/dev/shm"],
    ),
    "latency": ("bench_latency.py", [], ["--jobs", "10"]),
    "scale": (
        "bench_scale.py",
        [],
        ["--pending", "10000", "--unrunnable", "2000", "--idle", "5", "--repeat", "2"],
    ),
    "overhead": ("bench_overhead.py", [], ["--epochs", "1", "--repeat", "1"]),
    "interrupt": ("bench_interrupt.py", [], ["--epochs", "5"]),
    "warm": ("bench_warm.py", [], ["--jobs", "8", "--repeat", "1"]),
    "results": ("bench_results.py", [], ["--n", "1000", "--repeat", "1"]),
    "report": ("bench_report.py", [], ["--sizes", "100", "1000"]),
    "start": ("bench_start.py", [], ["--rounds", "1"]),
    "hyperband": (
        "bench_hyperband.py",
        [],
        ["--bad", "3", "--points", "9", "--epochs", "9", "--others", "2000"],
    ),
    "bayes": ("bench_bayes.py", [], ["--seeds", "2", "--runs", "12", "--results", "100", "--repeat", "2"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: checks the benchmarks run")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHES), metavar="NAME")
    ap.add_argument("--out", metavar="FILE", help="also write the whole output here")
    args = ap.parse_args(argv)
    names = args.only or list(BENCHES)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    say(f"# housespool benchmarks ({when}, {'quick' if args.quick else 'full'})")
    summary: list[tuple[str, str, str, str]] = []
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for name in names:
            script, full, quick = BENCHES[name]
            path = HERE / script
            if name == "dispatch-tmpfs" and not Path("/dev/shm").is_dir():
                say(f"\n## {name}\n\n(skipped: no /dev/shm on this system)")
                continue
            figures = Path(tmp) / f"{name}.json"
            extra = quick if args.quick else full
            say(f"\n## {name} ({script} {' '.join(extra)})\n")
            t = time.perf_counter()
            cmd = [sys.executable, str(path), *extra]
            if name not in ("results", "report"):  # ours take --json FILE for the summary
                cmd += ["--json", str(figures)]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            for line in p.stdout.rstrip("\n").splitlines():
                say(line)
            codes[name] = p.returncode
            say(f"\n({name}: exit {p.returncode}, {time.perf_counter() - t:.0f} s)")
            if figures.exists():
                for goal, measured, ok in json.loads(figures.read_text()).get("goals", []):
                    if ok is not None:
                        summary.append((name, goal.strip(), str(measured), "PASS" if ok else "FAIL"))
            else:
                summary.append(
                    (name, "(its own goals)", "see above", "PASS" if p.returncode == 0 else "FAIL")
                )
    say("\n## summary\n")
    width = max([len(f"{n}: {g}") for n, g, _, _ in summary] + [10])
    for n, g, m, v in summary:
        say(f"{v}  {(n + ': ' + g).ljust(width)}  {m}")
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
