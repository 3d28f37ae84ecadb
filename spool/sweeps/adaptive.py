"""Proposing an adaptive sweep's next points from what the folder holds; any process may call it.

`propose_next` is the one step every proposer runs (`spool sweep` when it creates the sweep,
`spool wait`, every runner with room for work): it finishes slots whose job was never
published, then, while the sweep is open and has fewer pending points than asked for, computes
the next slot's point from the folder (the definition, the sample seed, the slot number, the
results and metrics of every slot's job) and takes the slot by an exclusive create. Losing the
slot to another proposer is normal: it looks again. There is no controller and no lock, so a
proposer killed or paused at any instant loses nothing (docs/sweeps.md, "The folder is the only
state").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spool.errors import InvalidJob
from spool.jobs import publish_job
from spool.layout import Layout
from spool.model import job_from_dict
from spool.protocol import FsOps, json_lines, publish_bytes
from spool.states import State
from spool.sweeps.bayes import BayesSettings, RunView, propose, target_reached
from spool.sweeps.definition import read_sweep_files
from spool.sweeps.encoding import Space
from spool.sweeps.expand import Dimension
from spool.sweeps.histories import Histories
from spool.sweeps.slots import live_count, read_slots, slot_record, stop_path, take_slot
from spool.untrusted import read_file

if TYPE_CHECKING:
    from spool.api import Spool

__all__ = ["AdaptiveSweep", "propose_next", "sweep_runs", "open_sweeps", "is_adaptive"]

_DEFAULT_FS = FsOps()
_TRIES = 20  # slots lost to other proposers before this call gives way (each loss is progress)
_values_cache: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {}


def is_adaptive(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("adaptive"), dict)


@dataclass
class AdaptiveSweep:
    """An adaptive sweep's definition as kept in `sweeps/<id>.yaml` (`adaptive:` block)."""

    id: str
    doc: dict[str, Any]

    @property
    def block(self) -> dict[str, Any]:
        return self.doc["adaptive"]

    @property
    def settings(self) -> BayesSettings:
        m = self.block["metric"]
        return BayesSettings(
            metric=m["name"],
            goal=m.get("goal", "minimize"),
            impute=m.get("impute", "worst"),
            impute_while_running=m.get("impute_while_running"),
            target=m.get("target"),
        )

    @property
    def space(self) -> Space:
        dims = []
        for spec in self.block["space"]:
            spec = dict(spec)
            spec["values"] = tuple(spec.get("values") or ())
            if spec.get("probabilities") is not None:
                spec["probabilities"] = tuple(spec["probabilities"])
            dims.append(Dimension(**spec))
        return Space(dims)

    @property
    def run_cap(self) -> int | None:
        return self.block.get("run_cap")

    @property
    def seed(self) -> int:
        return int(self.block.get("sample_seed", 0))

    def job_id(self, slot: int) -> str:
        return f"{self.id}-{slot:05d}"

    def job_dict(self, point: dict[str, Any]) -> dict[str, Any]:
        template = dict(self.doc.get("template") or {})
        params = {**template.pop("params", {}), **point}
        return {**template, "script": self.doc["script"], "params": params, "sweep": self.id}


def _stamp(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


_histories: dict[str, Histories] = {}
_docs: dict[str, tuple[int, dict[str, Any] | None]] = {}  # definitions by file stamp


def _histories_of(layout: Layout, sweep: AdaptiveSweep) -> Histories:
    """One incremental reader per sweep and process: a runner reads a finished job's metrics once."""
    key = f"{layout.root}\0{sweep.id}\0{sweep.settings.metric}"
    hist = _histories.get(key)
    if hist is None:
        hist = _histories[key] = Histories(layout, sweep.id, sweep.settings.metric)
    return hist


_coords_cache: dict[str, tuple[float, ...] | None] = {}


def _coords(
    layout: Layout, sweep: AdaptiveSweep, space: Space, slot: int, point: dict[str, Any]
) -> tuple[float, ...] | None:
    """A slot's point encoded once per process (a slot and its sweep's space never change)."""
    key = f"{layout.root}\0{sweep.id}\0{slot}"
    if key not in _coords_cache:
        coords = space.encode(point)
        _coords_cache[key] = None if coords is None else tuple(coords)
    return _coords_cache[key]


def sweep_runs(layout: Layout, sweep: AdaptiveSweep, slots: dict[int, dict[str, Any]]) -> list[RunView]:
    """Every slot's run as the folder shows it now, in slot order. pending/ is listed before
    the other folders, so a job claimed meanwhile is seen where it went."""
    prefix = sweep.id + "-"
    space = sweep.space
    pending = {job_id for job_id, _ in layout.ids(State.PENDING) if job_id.startswith(prefix)}
    started = _histories_of(layout, sweep).read()
    runs: list[RunView] = []
    for n in sorted(slots):
        point = slots[n].get("point")
        if not isinstance(point, dict):
            continue
        job_id = sweep.job_id(n)
        coords = _coords(layout, sweep, space, n, point)
        hist = started.get(job_id)
        if hist is not None:
            runs.append(RunView(job_id, n, hist.state.value, point, tuple(hist.values), coords))
        else:
            runs.append(RunView(job_id, n, "pending" if job_id in pending else "missing", point, (), coords))
    return runs


def _publish(spool: Spool, sweep: AdaptiveSweep, slot: int, point: dict[str, Any], fs: FsOps) -> bool:
    job = job_from_dict(sweep.job_dict(point), env_allow=spool.settings.env_allow)
    raw = json.dumps(job.to_file_dict(), indent=1).encode() + b"\n"
    try:
        publish_job(spool.layout, raw, sweep.job_id(slot), fs=fs)
    except InvalidJob:
        return False  # published meanwhile by another proposer: never a duplicate
    return True


def closed_reason(layout: Layout, sweep: AdaptiveSweep, n_slots: int, runs: list[RunView]) -> str | None:
    """Why no more points are proposed, or None while the sweep is open."""
    if stop_path(layout, sweep.id).exists():
        return "stopped"
    if sweep.run_cap is not None and n_slots >= sweep.run_cap:
        return "run_cap"
    if target_reached(sweep.settings, runs):
        return "target"
    return None


def _definition(spool: Spool, sweep_id: str) -> dict[str, Any]:
    """The sweep's definition, parsed once per change of its file (YAML parsing is slow)."""
    key = f"{spool.layout.root}\0{sweep_id}"
    stamp = _stamp(spool.layout.sweeps / f"{sweep_id}.yaml")
    hit = _docs.get(key)
    if hit is None or hit[0] != stamp or hit[1] is None:
        doc = read_sweep_files(spool.layout.sweeps, sweep_id)[0]
        _docs[key] = (stamp, doc if is_adaptive(doc) else None)
        return doc
    return hit[1]


def propose_next(
    spool: Spool, sweep_id: str, *, want: int | None = None, limit: int | None = None, fs: FsOps = _DEFAULT_FS
) -> list[str]:
    """Finish unpublished slots, then propose until the sweep has `want` pending points (the
    sweep's `queue` by default) or `limit` new ones; returns the job ids this call published."""
    sweep = AdaptiveSweep(sweep_id, _definition(spool, sweep_id))
    queue = want if want is not None else int(sweep.block.get("queue", 1))
    space, settings = sweep.space, sweep.settings
    added: list[str] = []
    made = 0
    for _ in range(_TRIES):
        slots = read_slots(spool.layout, sweep_id)
        runs = sweep_runs(spool.layout, sweep, slots)
        for run in runs:  # slots taken whose job was never published (a proposer died between)
            if run.state == "missing" and _publish(spool, sweep, run.slot, run.point, fs):
                added.append(run.job_id)
        live = live_count(spool.layout, slots, spool.settings.settle_seconds)
        reason = closed_reason(spool.layout, sweep, live, runs)
        if reason is not None:
            if reason == "target":  # remembered, so later looks need not read every run
                publish_bytes(stop_path(spool.layout, sweep_id), json_lines({"reason": "target"}))
            break
        waiting = sum(1 for r in runs if r.state in ("pending", "missing"))
        if waiting >= queue or (limit is not None and made >= limit):
            break
        slot = next(i for i in range(len(slots) + 1) if i not in slots)
        prop = propose(space, settings, runs, sample_seed=sweep.seed, slot=slot)
        record = slot_record(slot, prop.point, prop, sweep.seed)
        if not take_slot(spool.layout, sweep_id, slot, record, fs=fs):
            continue  # another proposer took this slot: look again with its point in view
        made += 1
        if _publish(spool, sweep, slot, prop.point, fs):
            added.append(sweep.job_id(slot))
        if limit is not None and made >= limit:
            break
    return added


_closed: set[str] = set()
_SETTLE_MAX = 0.0  # the cheap look counts every unreadable slot as void; propose_next judges


def open_sweeps(layout: Layout) -> list[tuple[str, dict[str, Any]]]:
    """(id, definition) of the adaptive sweeps still open to proposals: a cheap look for a
    runner's idle moments (a definition is read again only when its file changes; a closed
    sweep never opens again)."""
    import yaml

    out: list[tuple[str, dict[str, Any]]] = []
    try:
        names = sorted(os.listdir(layout.sweeps))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".yaml") or name.startswith("."):
            continue
        sid = name[:-5]
        key = f"{layout.root}\0{sid}"
        if key in _closed:
            continue
        stamp = _stamp(layout.sweeps / name)
        hit = _docs.get(key)
        if hit is None or hit[0] != stamp:
            try:
                doc = yaml.safe_load(read_file(layout.sweeps / name))
            except (OSError, yaml.YAMLError):
                continue
            hit = (stamp, doc if isinstance(doc, dict) and is_adaptive(doc) else None)
            _docs[key] = hit
        doc = hit[1]
        if doc is None:
            continue
        cap = doc["adaptive"].get("run_cap")
        full = cap is not None and len(read_slots(layout, sid)) >= cap  # void slots: see below
        if full and live_count(layout, read_slots(layout, sid), _SETTLE_MAX) < cap:
            full = False
        if stop_path(layout, sid).exists() or full:
            _closed.add(key)
            continue
        out.append((sid, doc))
    return out
