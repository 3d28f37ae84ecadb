"""`spool gc`: move old finished jobs out of `done/` and `failed/`, to `archive/` (or delete them).

Only finished jobs are ever looked at: pending and running ones are not listed, so they cannot
be touched. A job's age is the time since it ended (`ended` in its result.json, else the file's
time). `keep_best` keeps the N best jobs of every sweep by a metric (the sweep's own goal when the
metric is the sweep's, else `goal`). A job some pending or running job is waiting for (`after`)
is never deleted (archived is fine: an archived done job still counts as done). The plan is made
first and is what `--dry-run` prints; `apply` carries it out with one rename per folder.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from spool.deps import ARCHIVE_DIR, sweep_members
from spool.errors import UsageError
from spool.layout import JOB_FILE, RESULT_FILE, Layout
from spool.model import MAX_JOB_BYTES
from spool.notes import NOTES_DIR
from spool.protocol import archive_job
from spool.states import State
from spool.untrusted import read_file, read_json

__all__ = ["GcPlan", "Victim", "parse_age", "plan_gc", "apply_gc"]

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s` (a bare number is days) as seconds."""
    m = _AGE.fullmatch(text.strip().lower())
    if not m:
        raise UsageError(f"--older-than expects an age like 30d, 12h, 90m or 2w, not {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


@dataclass
class Victim:
    id: str
    state: State
    folder: Path
    age: float
    bytes: int = 0


@dataclass
class GcPlan:
    """What gc would do: the folders to move, and why others that were old enough are kept."""

    victims: list[Victim] = field(default_factory=list)
    kept_best: list[str] = field(default_factory=list)
    kept_needed: list[str] = field(default_factory=list)
    active: int = 0  # pending and running jobs, never touched

    def summary(self) -> dict[str, Any]:
        by_state = {s.value: sum(1 for v in self.victims if v.state is s) for s in (State.DONE, State.FAILED)}
        return {
            "jobs": len(self.victims),
            **by_state,
            "bytes": sum(v.bytes for v in self.victims),
            "kept_best": len(self.kept_best),
            "kept_needed": len(self.kept_needed),
            "pending_or_running_untouched": self.active,
            "ids": [v.id for v in self.victims],
        }


def _ended(folder: Path) -> float | None:
    try:
        rec = read_json(folder / RESULT_FILE)
        return datetime.fromisoformat(str(rec["ended"]).replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for name in (RESULT_FILE, JOB_FILE):
        try:
            return (folder / name).stat().st_mtime
        except OSError:
            continue
    return None


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _needed(layout: Layout) -> set[str]:
    """Every job a pending or running job waits for (sweeps expanded to their jobs)."""
    out: set[str] = set()
    for state in (State.PENDING, State.CLAIMED):
        for e in layout.entries(state):
            try:
                data = read_json(e.job_file, MAX_JOB_BYTES)
            except (OSError, ValueError, RecursionError):
                continue
            after = data.get("after") if isinstance(data, dict) else None
            for dep in after if isinstance(after, list) else []:
                if not isinstance(dep, str):
                    continue
                out.add(dep)
                if (layout.sweeps / f"{dep}.yaml").is_file():
                    out.update(sweep_members(layout, dep))
    return out


def _best(layout: Layout, keep: int, metric: str, goal: str | None, sweep: str | None) -> set[str]:
    """The `keep` best done jobs of every sweep (and of the jobs outside sweeps) by `metric`."""
    from spool.results import load_results  # pandas: only when --keep-best asks for it

    df = load_results(layout, sweep=sweep, state="done")
    col = metric if metric in df.columns else f"result.{metric}"
    if df.empty or col not in df.columns:
        if df.empty:
            return set()
        raise UsageError(f"--metric: no column {metric!r} in the results of the jobs gc looks at")
    out: set[str] = set()
    for sid, group in df.groupby(df["sweep"].fillna(""), sort=False):
        direction = goal or _sweep_goal(layout, str(sid), col) or "max"
        values = [(v, i) for v, i in zip(group[col].tolist(), group["id"].tolist(), strict=True)]
        values = [(float(v), i) for v, i in values if isinstance(v, (int, float)) and not math.isnan(v)]
        values.sort(key=lambda p: p[0], reverse=direction == "max")
        out.update(i for _, i in values[:keep])
    return out


def _sweep_goal(layout: Layout, sweep: str, col: str) -> str | None:
    if not sweep:
        return None
    try:
        import yaml

        doc = yaml.safe_load(read_file(layout.sweeps / f"{sweep}.yaml")) or {}
    except (OSError, ValueError, ImportError):
        return None
    m = doc.get("metric") if isinstance(doc, dict) else None
    if isinstance(m, dict) and f"result.{m.get('name')}" in (col, f"result.{col}"):
        return "min" if str(m.get("goal", "")).startswith("min") else "max"
    return None


def plan_gc(
    layout: Layout,
    older_than: float,
    *,
    states: tuple[State, ...] = (State.DONE, State.FAILED),
    sweep: str | None = None,
    keep_best: int | None = None,
    metric: str | None = None,
    goal: str | None = None,
    deleting: bool = False,
    now: float | None = None,
) -> GcPlan:
    """What gc would move (nothing is changed here)."""
    if keep_best is not None and (keep_best < 0 or not metric):
        raise UsageError("--keep-best N needs N >= 0 and --metric M")
    now = time.time() if now is None else now
    plan = GcPlan(active=sum(1 for s in (State.PENDING, State.CLAIMED) for _ in layout.entries(s)))
    best = _best(layout, keep_best, metric or "", goal, sweep) if keep_best is not None else set()
    needed = _needed(layout) if deleting else set()
    members = set(sweep_members(layout, sweep)) if sweep else None
    for state in states:
        for e in sorted(layout.entries(state), key=lambda e: e.id):
            if members is not None and e.id not in members:
                continue
            ended = _ended(e.path)
            if ended is None or now - ended < older_than:
                continue
            if e.id in best:
                plan.kept_best.append(e.id)
            elif e.id in needed:
                plan.kept_needed.append(e.id)
            else:
                plan.victims.append(Victim(e.id, state, e.path, now - ended, _size(e.path)))
    return plan


def apply_gc(layout: Layout, plan: GcPlan, *, delete: bool = False) -> list[str]:
    """Carry the plan out: each folder (and its notes) renamed into `archive/<state>/`, or deleted."""
    done: list[str] = []
    archive = layout.root / ARCHIVE_DIR
    for v in plan.victims:
        notes = layout.root / NOTES_DIR / v.id
        if delete:
            gone = layout.root / ARCHIVE_DIR / f".deleting-{v.id}-{os.getpid()}"
            if not archive_job(v.folder, gone):  # out of done/ in one rename, then removed
                continue
            shutil.rmtree(gone, ignore_errors=True)
            shutil.rmtree(notes, ignore_errors=True)
        else:
            if not archive_job(v.folder, archive / v.state.value / v.id):
                continue
            if notes.is_dir():
                archive_job(notes, archive / NOTES_DIR / v.id)
        done.append(v.id)
    return done
