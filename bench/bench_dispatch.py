"""Benchmark: dispatch throughput, 500 noop Python jobs, against what a user would pick instead.

Contenders, each run as one whole command, interleaved round-robin (`--repeat` rounds, the
order rotated every round so drift in the machine's load spreads over all of them):

- `loop`: a bare `subprocess.run` loop in one Python process (the floor for 1 slot);
- `xargs -P2`, GNU `parallel -j1`/`-j2`, task-spooler `tsp` with 1 and 2 slots (skipped with a
  note where absent; tsp's time includes enqueueing its 500 jobs, one `tsp` call each);
- `spool runner --exit-when-idle --nice 0` with 1 and 2 slots on a local spool holding the 500
  jobs, and the same runner on an empty spool (`startup`: its capability probe, which imports
  torch in the job interpreter to see whether a GPU works, and its shutdown).

Every job is `scripts/noop.py` run by the venv interpreter by absolute path. Goals (issue 9):
1 slot >= 0.90x the bare loop, 2 slots >= 0.90x `xargs -P2`, both ahead of parallel and tsp.
The goals are judged on the runner's dispatch time (whole command minus the same runner's
start and stop on an empty spool, measured in the same round: a runner is a long-lived process
and its start, mostly the capability probe that imports torch to see whether a GPU works, is
paid once, not per job); the whole-command ratios are printed beside them. The peers' figures
are whole commands (their own start included).

The spools live in a new folder under `--dir` (default: the system's temporary folder). The
header prints what one file create costs there (CPU, median of 200): a runner creates seven
inodes per job, so on a disk where that costs 0.5 ms (ext4 with a full block group) the
runner's own floor is 3-4 ms per job, against 0.1 ms where it costs 0.02 ms. It also prints
how long the job interpreter takes to start alone, while one job folder's file work is done
beside it, and while as much CPU is spent in user space beside it. On this VM either kind of
work done by the spawning process delays the start by a good part of its CPU time (the new
process shares the spawner's core at first), so a runner's CPU per job is paid even with a
spare core, and on ext4 here its file creates are most of that CPU.

    .venv/bin/python bench/bench_dispatch.py [--n 500] [--repeat 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PY,
    SCRIPTS,
    SPOOL,
    count_dir,
    create_cost_ms,
    load_note,
    make_spool,
    median,
    table,
    verdict,
    write_json,
)

from spool.protocol import sync_folder  # noqa: E402

NOOP = str(SCRIPTS / "noop.py")


def run_loop(work: Path, n: int) -> float:
    code = (
        "import subprocess, sys\n"
        f"for i in range({n}):\n"
        f"    subprocess.run([{PY!r}, {NOOP!r}, str(i)], capture_output=True)\n"
    )
    t = time.perf_counter()
    subprocess.run([PY, "-c", code], check=True)
    return time.perf_counter() - t


def _ids(work: Path, n: int) -> Path:
    path = work / "ids.txt"
    path.write_text("".join(f"job-{i:06d}\n" for i in range(n)))
    return path


def run_xargs(work: Path, n: int, p: int) -> float:
    ids = _ids(work, n)
    with open(ids, "rb") as fin, open(work / "xargs.out", "wb") as fout:
        t = time.perf_counter()
        subprocess.run(["xargs", f"-P{p}", "-n1", PY, NOOP], stdin=fin, stdout=fout, check=True)
        return time.perf_counter() - t


def run_parallel(work: Path, n: int, j: int) -> float:
    ids = _ids(work, n)
    with open(work / "parallel.out", "wb") as fout:
        t = time.perf_counter()
        subprocess.run(
            ["parallel", "--will-cite", f"-j{j}", PY, NOOP, "{}", "::::", str(ids)],
            stdout=fout,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - t


def run_tsp(work: Path, n: int, slots: int) -> float:
    tmp = work / f"tsp-{slots}"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ, TS_SOCKET=str(tmp / "socket"), TMPDIR=str(tmp), TS_SLOTS=str(slots))
    env["TS_MAXFINISHED"] = str(n + 10)
    try:
        t = time.perf_counter()
        for i in range(n):
            subprocess.run(["tsp", PY, NOOP, str(i)], env=env, stdout=subprocess.DEVNULL, check=True)
        while True:
            listing = subprocess.run(["tsp", "-l"], env=env, capture_output=True, text=True).stdout
            if " queued " not in listing and " running " not in listing:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - t
        finished = listing.count(" finished ")
        if finished != n:
            raise RuntimeError(f"tsp finished {finished} of {n} jobs")
        return elapsed
    finally:
        subprocess.run(["tsp", "-K"], env=env, capture_output=True)


def run_spool(work: Path, n: int, slots: int, create_after: list[float] | None = None) -> float:
    """The runner over `n` jobs; `create_after` gets what one file create costs in its spool
    just after the run (ms of CPU)."""
    root = work / f"spool-{slots}-{time.monotonic_ns()}"
    make_spool(root, n)
    t = time.perf_counter()
    cmd = [SPOOL, "--spool", str(root), "runner", "--exit-when-idle", "-q", "--nice", "0"]
    subprocess.run([*cmd, "--slots", str(slots)], check=True)
    elapsed = time.perf_counter() - t
    done = count_dir(root / "done")
    if done != n:
        raise RuntimeError(f"the runner finished {done} of {n} jobs")
    if n and create_after is not None:
        create_after.append(create_cost_ms(root / "runners", 100))
    shutil.rmtree(root, ignore_errors=True)
    return elapsed


def _job_folder_work(root: Path, i: int, durable: bool = False) -> None:
    """The file work a runner does per job (a kit: folder, outputs/, three logs; claim.json and
    result.json written and renamed; the folder renamed twice), without the runner. `durable`:
    with the fsyncs the runner makes (claim.json, result.json, and the folder before its last
    move, issue 18)."""
    kit = root / f"kit{i}"
    (kit / "outputs").mkdir(parents=True)
    for name in ("stdout.log", "stderr.log", "metrics.jsonl"):
        os.close(os.open(kit / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    folder = root / f"claimed{i}"
    kit.rename(folder)
    for name in ("claim.json", "result.json"):
        fd = os.open(folder / f".{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"{}" * 200)
        if durable:
            os.fsync(fd)
        os.close(fd)
        os.rename(folder / f".{name}.tmp", folder / name)
    if durable:
        sync_folder(folder)
    folder.rename(root / f"done{i}")


def durability_cost(work: Path, n: int = 100) -> dict[str, float]:
    """Median wall ms of one job folder's file work without and with the runner's fsyncs,
    interleaved (the fsyncs' cost per job is the difference)."""
    root = work / "durable"
    root.mkdir()
    ms: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * n):
        durable = bool(i % 2)
        t = time.perf_counter()
        _job_folder_work(root, i, durable)
        ms[durable].append(1000 * (time.perf_counter() - t))
    shutil.rmtree(root, ignore_errors=True)
    return {"plain_ms": median(ms[False]), "fsynced_ms": median(ms[True])}


def start_beside_file_work(work: Path, n: int = 150) -> dict[str, float]:
    """Median ms from spawning the job interpreter to its first instruction: alone; while this
    process does one job folder's file work (as a runner does beside a starting script); and
    while it spins in user space for as long as that work took. Plus the work's CPU ms. The
    difference from `alone` is what the spawner's work costs the script's start: not free
    just because the machine has another core."""
    code = "import time; print(time.monotonic())"
    root = work / "beside"
    root.mkdir()
    starts: dict[str, list[float]] = {"alone": [], "beside_file_work": [], "beside_spin": []}
    cpu = [1.0]
    for i in range(3 * n):
        mode = list(starts)[i % 3]
        t = time.monotonic()
        p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE)
        c = time.process_time()
        if mode == "beside_file_work":
            _job_folder_work(root, i)
            cpu.append(1000 * (time.process_time() - c))
        elif mode == "beside_spin":
            while 1000 * (time.process_time() - c) < cpu[-1]:
                pass
        out, _ = p.communicate()
        starts[mode].append(1000 * (float(out) - t))
    shutil.rmtree(root, ignore_errors=True)
    return {**{k: median(v) for k, v in starts.items()}, "work_cpu": median(cpu[1:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="jobs per contender (default 500)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median kept)")
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    ap.add_argument("--dir", metavar="DIR", help="make the spools under DIR (default: the temp folder)")
    args = ap.parse_args(argv)
    n = args.n

    create_after: list[float] = []  # file-create cost in each runner's spool after its run
    contenders: list[tuple[str, Callable[[Path], float]]] = [
        ("loop (subprocess.run, the floor)", lambda w: run_loop(w, n)),
        ("spool runner, 1 slot", lambda w: run_spool(w, n, 1, create_after)),
        ("spool runner, empty spool (startup)", lambda w: run_spool(w, 0, 1)),
        ("xargs -P2", lambda w: run_xargs(w, n, 2)),
        ("spool runner, 2 slots", lambda w: run_spool(w, n, 2, create_after)),
    ]
    notes: list[str] = []
    if shutil.which("parallel"):
        contenders += [
            ("GNU parallel -j1", lambda w: run_parallel(w, n, 1)),
            ("GNU parallel -j2", lambda w: run_parallel(w, n, 2)),
        ]
    else:
        notes.append("GNU parallel not installed (apt-get install parallel): skipped")
    if shutil.which("tsp"):
        contenders += [
            ("tsp, 1 slot", lambda w: run_tsp(w, n, 1)),
            ("tsp, 2 slots", lambda w: run_tsp(w, n, 2)),
        ]
    else:
        notes.append("task-spooler not installed (apt-get install task-spooler): skipped")

    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-", dir=args.dir) as tmp:
        work = Path(tmp)
        probe = make_spool(work / "probe", 0)
        create_ms = create_cost_ms(probe.layout.runners)
        shutil.rmtree(work / "probe")
        run_loop(work, 10)  # warm the page cache and the interpreter
        start = start_beside_file_work(work)
        durable = durability_cost(work)
        for r in range(args.repeat):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for name, fn in order:
                times[name].append(fn(work))
                print(f"  round {r + 1}: {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)

    med = {name: median(ts) for name, ts in times.items()}
    startup = med["spool runner, empty spool (startup)"]
    floor = med["loop (subprocess.run, the floor)"]
    rows = []
    for name, _ in contenders:
        m = med[name]
        jobs = 0 if "empty" in name else n
        net = m - startup if name.startswith("spool runner,") and jobs else m
        rows.append(
            [
                name,
                f"{m:.2f}",
                f"{net:.2f}" if name.startswith("spool runner,") and jobs else "",
                f"{1000 * net / jobs:.1f}" if jobs else "",
                f"{jobs / net:.0f}" if jobs else "",
                f"{floor / net:.2f}x" if jobs else "",
            ]
        )
    print(f"Dispatch: {n} noop jobs, median of {args.repeat} interleaved rounds ({load_note()})")
    print(
        f"Spools under {Path(tmp).parent}: one file create costs {create_ms:.3f} ms of CPU in a new "
        f"spool there, {median(create_after):.3f} ms (median) in the runners' spools after their runs"
    )
    print(
        f"A job interpreter starts in {start['alone']:.2f} ms alone, {start['beside_file_work']:.2f} ms "
        f"while one job folder's file work ({start['work_cpu']:.2f} ms of CPU) is done there beside it, "
        f"{start['beside_spin']:.2f} ms beside as much CPU spent in user space (medians)"
    )
    print(
        f"One job folder's file work takes {durable['plain_ms']:.2f} ms without fsync, "
        f"{durable['fsynced_ms']:.2f} ms with the runner's fsyncs (claim.json, result.json, the folder "
        f"before its move): {durable['fsynced_ms'] - durable['plain_ms']:.2f} ms per job (medians; "
        "the runner pays it after the script's start, off its critical path)"
    )
    print(
        table(
            rows,
            ["contender", "whole s", "dispatch s", "ms/job", "jobs/s", "speed vs loop"],
        )
    )
    for note in notes:
        print(f"note: {note}")

    def disp(slots: int) -> float:
        return med[f"spool runner, {slots} slot{'s' if slots > 1 else ''}"] - startup

    goals = []
    r1 = floor / disp(1)
    goals.append(("1 slot >= 0.90x bare loop (dispatch)", f"{r1:.2f}x", r1 >= 0.90))
    goals.append(
        ("1 slot >= 0.90x bare loop (whole command)", f"{floor / med['spool runner, 1 slot']:.2f}x", None)
    )
    xargs = med["xargs -P2"]
    r2 = xargs / disp(2)
    goals.append(("2 slots >= 0.90x xargs -P2 (dispatch)", f"{r2:.2f}x", r2 >= 0.90))
    goals.append(
        ("2 slots >= 0.90x xargs -P2 (whole command)", f"{xargs / med['spool runner, 2 slots']:.2f}x", None)
    )
    for peer in ("GNU parallel -j1", "tsp, 1 slot", "GNU parallel -j2", "tsp, 2 slots"):
        if peer in med:
            slots = 1 if peer.endswith(("j1", "1 slot")) else 2
            mine = disp(slots)
            goals.append((f"ahead of {peer} (dispatch)", f"{med[peer] / mine:.2f}x", mine < med[peer]))
            whole = med[f"spool runner, {slots} slot{'s' if slots > 1 else ''}"]
            goals.append((f"ahead of {peer} (whole command)", f"{med[peer] / whole:.2f}x", None))
    print()
    print(
        table(
            [[g, r, "info" if ok is None else verdict(ok)] for g, r, ok in goals],
            ["goal", "ratio (higher is better)", "verdict"],
        )
    )
    write_json(
        args.json,
        {
            "n": n,
            "repeat": args.repeat,
            "dir": str(Path(tmp).parent),
            "create_ms": create_ms,
            "create_ms_after_runs": create_after,
            "start_ms": start,
            "durability_ms": durable,
            "times": times,
            "medians": med,
            "goals": goals,
            "notes": notes,
        },
    )
    return 0 if all(ok is not False for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
