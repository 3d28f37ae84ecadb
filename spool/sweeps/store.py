"""A sweep on disk: its definition in `sweeps/<id>.yaml`, its points beside it, one job per point.

The definition and points are published first, then jobs `<id>-00000`, `<id>-00001`, ...
A crash midway leaves a sweep that `resume` finishes: it adds exactly the missing ids.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from spool.deps import check_after
from spool.errors import InvalidJob, SweepError
from spool.ids import new_id
from spool.jobs import check_script, publish_job, utc_now
from spool.model import job_from_dict
from spool.protocol import publish_bytes
from spool.sweeps.definition import read_sweep_files
from spool.sweeps.expand import SweepPlan

if TYPE_CHECKING:
    from spool.api import Spool

__all__ = ["SweepRecord", "create_sweep", "resume_sweep", "load_sweep", "job_id_for"]


def job_id_for(sweep_id: str, index: int) -> str:
    return f"{sweep_id}-{index:05d}"


@dataclass
class SweepRecord:
    """A sweep's definition as kept in the spool."""

    id: str
    doc: dict[str, Any]
    points: list[dict[str, Any]]

    @property
    def job_ids(self) -> list[str]:
        return [job_id_for(self.id, i) for i in range(len(self.points))]

    def job_dict(self, index: int) -> dict[str, Any]:
        template = dict(self.doc.get("template") or {})
        params = {**template.pop("params", {}), **self.points[index]}
        return {**template, "script": self.doc["script"], "params": params, "sweep": self.id}


def create_sweep(
    spool: Spool,
    plan: SweepPlan,
    template: dict[str, Any],
    *,
    script: str | None = None,
    sweep_id: str | None = None,
    stop_after: int | None = None,
    propose: bool = True,
) -> tuple[str, list[str]]:
    """Publish the sweep's definition, then its jobs; returns (sweep id, job ids).

    `stop_after` publishes only that many jobs (tests use it to leave a half-written sweep).
    An adaptive sweep has no points yet: its first are proposed (unless not `propose`).
    """
    script = script or plan.script
    if not script:
        raise SweepError("no script: give SCRIPT, or `program:` in the sweep file", field="program")
    if not plan.points and plan.adaptive is None:
        raise SweepError("the sweep has no points")
    if plan.args and "args" not in template:
        template = {**template, "args": plan.args}
    if plan.contract and "contract" not in template:
        template = {**template, "contract": plan.contract}
    sid = sweep_id or new_id()
    doc = {
        "id": sid,
        "name": plan.name or template.get("name"),
        "description": plan.description,
        "script": script,
        "created": utc_now(),
        "method": plan.method,
        "seeds": plan.seeds,
        "count": len(plan.points),
        "metric": plan.metric,
        "template": template,
        "parameters": plan.definition.get("parameters", plan.definition),
    }
    if plan.early_terminate is not None:
        doc["early_terminate"] = plan.early_terminate
    if plan.adaptive is not None:
        doc["adaptive"] = plan.adaptive
        doc["count"] = plan.adaptive.get("run_cap")
    record = SweepRecord(sid, doc, plan.points or [_example_point(plan)])
    # validate the template once, before writing anything
    first = job_from_dict(record.job_dict(0), env_allow=spool.settings.env_allow)
    check_script(spool.scripts_dir, first)
    if first.after:
        check_after(spool.layout, first.after, sweep=sid)
    sweeps = spool.layout.sweeps
    sweeps.mkdir(exist_ok=True)
    publish_bytes(sweeps / f"{sid}.points.json", json.dumps(plan.points).encode())
    publish_bytes(sweeps / f"{sid}.yaml", yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode())
    if plan.adaptive is not None:
        from spool.sweeps.adaptive import propose_next

        return sid, propose_next(spool, sid) if propose else []
    ids = _publish_missing(spool, record, limit=stop_after)
    return sid, ids


def _example_point(plan: SweepPlan) -> dict[str, Any]:
    """A point of an adaptive sweep's space, to check its job template before anything is written."""
    import random

    from spool.sweeps.adaptive import AdaptiveSweep

    space = AdaptiveSweep("x", {"adaptive": plan.adaptive}).space
    return {d.name: d.sample(random.Random(0)) for d in space.dims}


def load_sweep(spool: Spool, sweep_id: str, *, with_slots: bool = True) -> SweepRecord:
    """A sweep's definition and points (an adaptive sweep's: those its slots hold so far)."""
    doc, points = read_sweep_files(spool.layout.sweeps, sweep_id)
    if isinstance(doc.get("adaptive"), dict) and with_slots:  # the points proposed so far, by slot
        from spool.sweeps.slots import read_slots

        slots = read_slots(spool.layout, sweep_id)
        points = [(slots.get(i) or {}).get("point") or {} for i in range(max(slots, default=-1) + 1)]
    return SweepRecord(sweep_id, doc, points)


def _publish_missing(spool: Spool, record: SweepRecord, limit: int | None = None) -> list[str]:
    added: list[str] = []
    layout = spool.layout
    for i, job_id in enumerate(record.job_ids):
        if limit is not None and len(added) >= limit:
            break
        if layout.find(job_id) is not None:  # (find looks again if a job moved meanwhile)
            continue
        job = job_from_dict(record.job_dict(i), env_allow=spool.settings.env_allow)
        raw = json.dumps(job.to_file_dict(), indent=1).encode() + b"\n"
        try:
            publish_job(layout, raw, job_id, fsync=False)
        except InvalidJob:
            continue  # appeared meanwhile (another resume): never a duplicate
        added.append(job_id)
    if added and hasattr(os, "sync"):
        os.sync()  # one flush for the whole batch instead of one fsync per job
    return added


def resume_sweep(spool: Spool, sweep_id: str) -> list[str]:
    """Add the jobs of a sweep that are missing everywhere; never duplicates. An adaptive
    sweep's missing jobs are those of slots taken but never published (and then, if it has
    no pending point, its next point is proposed)."""
    record = load_sweep(spool, sweep_id, with_slots=False)
    if isinstance(record.doc.get("adaptive"), dict):
        from spool.sweeps.adaptive import propose_next

        return propose_next(spool, sweep_id)
    return _publish_missing(spool, record)
