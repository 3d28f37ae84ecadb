"""Shared helpers for the benchmarks: tables, percentiles, fast spools, CPU time of a process.

Nothing here is a timed unit test: each `bench_*.py` prints a table of medians, the ratios
against baselines measured in the same run (interleaved), and PASS/FAIL against the goals of
issue 9. `--json FILE` writes the figures for `run_all.py`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without the editable install
    sys.path.insert(0, str(REPO))

PY = sys.executable  # the venv interpreter, by absolute path
SPOOL = str(Path(PY).parent / "spool")
SCRIPTS = REPO / "scripts"


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def load_note() -> str:
    """The machine's load, printed with every table: other work skews wall-clock figures."""
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
    except OSError:
        return ""


def make_spool(root: Path, n: int, script: str = "noop.py", *, job: dict[str, Any] | None = None) -> Any:
    """A fresh spool at `root` with `n` pending jobs (written directly: setup is not timed)."""
    from spool.api import Spool
    from spool.jobs import publish_job

    sp = Spool.init(root)
    src = SCRIPTS / script
    if src.exists():
        (sp.scripts_dir / script).write_bytes(src.read_bytes())
    raw = json.dumps(job or {"script": script}).encode()
    for i in range(n):
        publish_job(sp.layout, raw, f"bench-{i:06d}", fsync=False)
    return sp


def create_cost_ms(folder: Path, n: int = 200) -> float:
    """Median CPU milliseconds of creating one empty file in a new folder under `folder`.

    A runner creates a few inodes per job (its folder, outputs/, logs, claim and result), so
    this sets the floor of its cost per job: ~0.01-0.02 ms on a healthy local disk, but up to
    0.7 ms on ext4 where the folder's block group is full (the allocator searches further).
    """
    probe = folder / f".create-probe-{os.getpid()}"
    probe.mkdir()
    times = []
    try:
        for i in range(n):
            t = time.process_time()
            os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            times.append(time.process_time() - t)
    finally:
        for i in range(n):
            try:
                os.unlink(probe / str(i))
            except FileNotFoundError:
                pass
        probe.rmdir()
    return 1000 * median(times)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def wait_until(cond: Any, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1, default=str) + "\n")


def count_dir(path: Path) -> int:
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def report_goals(
    goals: list[tuple[str, str, bool | None]], json_path: str | None, data: dict[str, Any]
) -> int:
    """Print the goals table, keep the figures as JSON, and exit 1 if any goal failed (None = info only)."""
    print()
    print(
        table(
            [[g, v, "info" if ok is None else verdict(ok)] for g, v, ok in goals],
            ["goal", "measured", "verdict"],
        )
    )
    write_json(json_path, {**data, "goals": goals})
    return 0 if all(ok is not False for _, _, ok in goals) else 1
