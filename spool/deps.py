"""Dependencies between jobs (`after: [ids]`): what a dependency's state is, and the checks at submit.

A dependency is a job id or a sweep id. A job is met once it is in `done/` (or was archived from
there by `spool gc`); a sweep once every one of its jobs is. A dependency in `failed/` fails the
job that waits on it (kind `dependency`); one still pending or running keeps it waiting.
At submit an id that names neither a job nor a sweep is refused, and so is an `after` that would
wait on the job itself through any chain of pending jobs (a cycle would wait forever).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from enum import Enum

from spool.errors import InvalidJob
from spool.ids import is_valid_id
from spool.layout import JOB_FILE, Layout
from spool.model import MAX_JOB_BYTES
from spool.states import State
from spool.untrusted import read_json

__all__ = ["Dep", "dep_state", "sweep_members", "check_after", "ARCHIVE_DIR", "first_blocking"]

ARCHIVE_DIR = "archive"  #: where `spool gc` moves old job folders: archive/<state>/<id>/
_MAX_WALK = 100_000


class Dep(str, Enum):
    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"
    UNKNOWN = "unknown"


def _is_sweep(layout: Layout, dep: str) -> bool:
    return is_valid_id(dep) and (layout.sweeps / f"{dep}.yaml").is_file()


def sweep_members(layout: Layout, sweep: str) -> list[str]:
    """A sweep's job ids: one per point of its definition, and any other `<sweep>-NNNNN` job found."""
    ids: set[str] = set()
    try:
        points = read_json(layout.sweeps / f"{sweep}.points.json")
        ids.update(f"{sweep}-{i:05d}" for i in range(len(points)))
    except (OSError, ValueError, TypeError):
        pass
    member = re.compile(re.escape(sweep) + r"-\d{5}")
    for state in State:
        ids.update(e.id for e in layout.entries(state) if member.fullmatch(e.id))
    return sorted(ids)


def _job_state(layout: Layout, job_id: str) -> Dep:
    entry = layout.find(job_id)
    if entry is not None:
        if entry.state is State.DONE:
            return Dep.DONE
        return Dep.FAILED if entry.state is State.FAILED else Dep.WAITING
    for state, dep in ((State.DONE, Dep.DONE), (State.FAILED, Dep.FAILED)):
        if (layout.root / ARCHIVE_DIR / state.value / job_id / JOB_FILE).exists():
            return dep
    return Dep.UNKNOWN


def dep_state(layout: Layout, dep: str) -> tuple[Dep, str]:
    """(state, the job that decides it): a sweep is failed by its first failed job, waiting while
    one of its jobs is (or is missing: a sweep still being published), done when all are done."""
    if _is_sweep(layout, dep):
        waiting: str | None = None
        members = sweep_members(layout, dep)
        for job_id in members:
            st = _job_state(layout, job_id)
            if st is Dep.FAILED:
                return Dep.FAILED, job_id
            if st is not Dep.DONE and waiting is None:
                waiting = job_id
        if waiting is not None or not members:
            return Dep.WAITING, waiting or dep
        return Dep.DONE, dep
    return _job_state(layout, dep), dep


def first_blocking(layout: Layout, after: Iterable[str]) -> tuple[Dep, str, str] | None:
    """The first dependency not done, as (state, dependency, deciding job); None when all are met.
    A failed or unknown one is reported before one that is only waiting."""
    waiting: tuple[Dep, str, str] | None = None
    for dep in after:
        st, who = dep_state(layout, dep)
        if st in (Dep.FAILED, Dep.UNKNOWN):
            return st, dep, who
        if st is Dep.WAITING and waiting is None:
            waiting = (st, dep, who)
    return waiting


def _after_of(layout: Layout, job_id: str) -> list[str]:
    """The `after` of a job still waiting to run (pending or claimed); [] for any other."""
    entry = layout.find(job_id)
    if entry is None or entry.state not in (State.PENDING, State.CLAIMED):
        return []
    try:
        data = read_json(entry.job_file, MAX_JOB_BYTES)
    except (OSError, ValueError, RecursionError):
        return []
    after = data.get("after") if isinstance(data, dict) else None
    return [a for a in after if isinstance(a, str)] if isinstance(after, list) else []


def check_after(
    layout: Layout, after: list[str], *, job_id: str | None = None, sweep: str | None = None
) -> None:
    """Refuse unknown dependencies, and a chain of pending jobs leading back to `job_id`/`sweep`."""
    own = {x for x in (job_id, sweep) if x}
    for dep in after:
        if dep in own:
            raise InvalidJob(f"a job cannot wait for itself ({dep!r})", field="after")
        if not _is_sweep(layout, dep) and _job_state(layout, dep) is Dep.UNKNOWN:
            raise InvalidJob(f"no job or sweep {dep!r} in {layout.root}", field="after")
    if not own:
        return  # a fresh id: no existing job can name it, so no cycle can close
    seen: set[str] = set()
    stack = list(after)
    while stack and len(seen) < _MAX_WALK:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        nexts = sweep_members(layout, dep) if _is_sweep(layout, dep) else _after_of(layout, dep)
        for n in nexts:
            if n in own or (sweep and n.startswith(f"{sweep}-")):
                raise InvalidJob(f"waiting for {dep!r} would wait for itself (a cycle)", field="after")
            stack.append(n)


def archive_path(layout: Layout, state: State, job_id: str) -> str:
    return os.path.join(layout.root, ARCHIVE_DIR, state.value, job_id)
