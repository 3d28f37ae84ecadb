"""The reliability suite's fixtures and its one invariant, checked over a whole spool.

`check_spool` is the promise of the issue, as code: every job submitted is exactly once in
done/ or failed/, its attempts are consistent, nothing is left in claimed/, and every byte
the user wrote is still there (job.json compared with what was submitted).

Figures (size, runs = attempts recorded, lost, doubled, time) of every scenario are printed at the end
of the run and, with HOUSESPOOL_FIGURES=path, appended to that file as JSON lines.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rkit

from spool import Spool
from spool.ids import is_valid_id
from spool.layout import RESULT_FILE
from spool.states import State

_FIGURES: list[dict[str, Any]] = []


@dataclass
class Verdict:
    """What the checker found; `problems` must be empty for the invariant to hold."""

    jobs: int = 0
    done: int = 0
    failed: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    attempts: dict[str, int] = field(default_factory=dict)  # origin name -> attempts made
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # origin name -> result.json
    folders: dict[str, Path] = field(default_factory=dict)  # origin name -> final folder
    runs: dict[str, int] = field(default_factory=dict)  # job id -> script starts (mark.py)

    @property
    def total_runs(self) -> int:
        return sum(self.runs.values())

    def summary(self) -> str:
        head = (
            f"{self.jobs} jobs: {self.done} done, {self.failed} failed {dict(self.kinds)}; "
            f"lost {len(self.lost)}, doubled {len(self.doubled)}"
        )
        more = "\n  ".join(self.problems[:30])
        extra = f" (+{len(self.problems) - 30} more)" if len(self.problems) > 30 else ""
        return head + (f"\n  {more}{extra}" if more else "")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _same(kept: bytes | None, raw: bytes) -> bool:
    if isinstance(raw, rkit.Digest):
        return kept is not None and rkit.Digest.of(kept) == raw
    return kept == raw


def check_spool(sp: Spool, submitted: dict[str, bytes], *, remain: Iterable[str] = ()) -> Verdict:
    """Check the whole spool against what was dropped into pending/ (file name -> bytes, or the
    `rkit.Digest` of a big file's bytes).

    `remain` names files that must still be in pending/ untouched (names never taken as jobs).
    """
    v = Verdict(jobs=len(submitted))
    remain = set(remain)
    pending = sp.layout.state_dir(State.PENDING)
    for name in sorted(os.listdir(pending)):
        if name not in remain:
            v.problems.append(f"left in pending/: {name!r}")
    for name in remain:
        p = pending / name
        if not p.exists():
            v.problems.append(f"{name!r} should never be taken, but left pending/")
        elif name in submitted and not _same(p.read_bytes(), submitted[name]):
            v.problems.append(f"{name!r} in pending/ was changed")
    for name in sorted(os.listdir(sp.layout.state_dir(State.CLAIMED))):
        v.problems.append(f"stray entry in claimed/: {name!r}")

    found: dict[str, list[tuple[State, Path]]] = {}
    for state in (State.DONE, State.FAILED):
        for folder in sorted(sp.layout.state_dir(state).iterdir()):
            rel = f"{state.value}/{folder.name}"
            if not folder.is_dir() or not is_valid_id(folder.name):
                v.problems.append(f"{rel}: not a job folder")
                continue
            rec = _read_json(folder / RESULT_FILE)
            if not isinstance(rec, dict):
                v.problems.append(f"{rel}: no readable result.json")
                rec = {}
            origin = rec.get("original_name") or f"{folder.name}.json"
            found.setdefault(origin, []).append((state, folder))
            v.records[origin] = rec
            v.folders[origin] = folder
            if rec and rec.get("state") != state.value:
                v.problems.append(f"{rel}: result.json says state {rec.get('state')!r}")
            if rec and rec.get("id") not in (None, folder.name):
                v.problems.append(f"{rel}: result.json says id {rec.get('id')!r}")
            if state is State.FAILED:
                err = rec.get("error") or {}
                if not err.get("kind") or not err.get("message"):
                    v.problems.append(f"{rel}: failed without a reason: {err!r}")
                v.kinds[str(err.get("kind"))] += 1
                v.failed += 1
            else:
                v.done += 1
            _check_attempts(v, folder, rel, rec, origin)

    for name, raw in submitted.items():
        where = found.get(name, [])
        if name in remain:
            continue
        if not where:
            v.lost.append(name)
            v.problems.append(f"lost: {name!r} is in neither done/ nor failed/")
            continue
        if len(where) > 1:
            v.doubled.append(name)
            v.problems.append(f"doubled: {name!r} in {[f'{s.value}/{p.name}' for s, p in where]}")
        for _state, folder in where:
            try:
                kept = (folder / "job.json").read_bytes()
            except OSError:
                kept = None
            if not _same(kept, raw):
                v.problems.append(f"{folder}: job.json is not the bytes the user wrote")
    for origin in found:
        if origin not in submitted:
            v.problems.append(f"unexpected job in the spool: {origin!r}")
    v.runs = rkit.run_markers(sp)
    return v


def _check_attempts(v: Verdict, folder: Path, rel: str, rec: dict[str, Any], origin: str) -> None:
    """attempts/1..k are contiguous, each earlier attempt is readable, result.attempt == k+1,
    and no more attempts failed than the job's retries allow."""
    attempts = folder / "attempts"
    numbers = sorted(int(p.name) for p in attempts.iterdir()) if attempts.is_dir() else []
    if numbers != list(range(1, len(numbers) + 1)):
        v.problems.append(f"{rel}: attempts are not 1..k: {numbers}")
    k = len(numbers)
    v.attempts[origin] = k + 1
    if "attempt" in rec and rec["attempt"] != k + 1:
        v.problems.append(f"{rel}: result.json attempt {rec['attempt']} but {k} earlier attempt(s) kept")
    failures = 0
    for n in numbers:
        old = attempts / str(n) / RESULT_FILE
        if old.exists():
            prev = _read_json(old)
            if not isinstance(prev, dict):
                v.problems.append(f"{rel}: attempts/{n}/result.json unreadable")
            elif prev.get("state") == "failed":
                failures += 1
    job = rec.get("job") or {}
    retries = job.get("retries", 0) if isinstance(job, dict) else 0
    if isinstance(retries, int) and failures > retries:
        v.problems.append(f"{rel}: {failures} failed attempts kept but retries is {retries}")


class Scenario:
    """Per-test helper: spools, runner processes, the invariant, and the figures."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path):
        self.request = request
        self.tmp_path = tmp_path
        self.t0 = time.monotonic()
        self.runner_sets: list[rkit.Runners] = []

    def spool(self, root: Path | None = None, **settings: Any) -> tuple[Spool, rkit.Runners]:
        sp = rkit.make_spool(root or self.tmp_path / "spool", **settings)
        runners = rkit.Runners(sp, self.tmp_path / "logs")
        self.runner_sets.append(runners)
        return sp, runners

    def check(self, sp: Spool, submitted: dict[str, bytes], *, remain: Iterable[str] = ()) -> Verdict:
        """The invariant, plus: no runner crashed. Fails the test with everything found."""
        v = check_spool(sp, submitted, remain=remain)
        crashes = [c for rs in self.runner_sets for c in rs.crashes()]
        assert not v.problems and not crashes, v.summary() + "\n" + "\n".join(crashes)
        return v

    def figures(
        self, scenario: str, size: str, v: Verdict | None, *, runs: int | None = None, **extra: Any
    ) -> None:
        row = {
            "scenario": scenario,
            "size": size,
            "full": rkit.FULL,
            "runs": runs if runs is not None else (sum(v.attempts.values()) if v else 0),
            "lost": len(v.lost) if v else 0,
            "doubled": len(v.doubled) if v else 0,
            "seconds": round(time.monotonic() - self.t0, 1),
            **extra,
        }
        _FIGURES.append(row)
        out = os.environ.get("HOUSESPOOL_FIGURES")
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")

    def teardown(self) -> None:
        for rs in self.runner_sets:
            rs.stop_all(timeout=10)
            rkit.kill_stray_scripts(rs.sp)


@pytest.fixture
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    s = Scenario(request, tmp_path)
    try:
        yield s
    finally:
        s.teardown()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    tr = terminalreporter
    tr.section("reliability figures" + (" (full size)" if rkit.FULL else " (reduced size)"))
    tr.write_line(f"{'scenario':<28} {'size':<40} {'runs':>7} {'lost':>5} {'dbl':>4} {'time':>8}")
    for r in _FIGURES:
        tr.write_line(
            f"{r['scenario']:<28} {r['size']:<40} {r['runs']:>7} {r['lost']:>5} {r['doubled']:>4} "
            f"{r['seconds']:>7.1f}s"
        )
        notes = {
            k: v
            for k, v in r.items()
            if k not in ("scenario", "size", "full", "runs", "lost", "doubled", "seconds")
        }
        if notes:
            tr.write_line(f"{'':<28} {notes}")
