"""`build_report`: the spool as a static HTML folder that opens from disk (no server, no network).

Layout of the output folder::

    index.html           the spool at a glance
    all-jobs.html        jobs outside any sweep
    sweeps/<id>.html     one page per sweep; its matplotlib chart (failures: SVG) in
                         sweeps/<id>/; the others are drawn by the browser from data in the
                         page (static/charts.js, parallel.js, curves.js, spread.js)
    jobs/<id>.html       one page per finished job
    static/              report.css and the scripts (copied from the package)
    manifest.json        what each page was built from (for incremental rebuilds and live pages)

A build runs in named steps (`_Builder.run`): scan the finished jobs' keys, group them, plan
what changed (`incremental`), read the results of what must be redone, redo those sweeps
(`sweepbuild`, `sweepcharts`, `pages`), the loose jobs' page and the job pages (`jobpages`), the index, and
write the manifest last. Charts and job pages are handed to the build's workers (`workers`),
so they are made on the other cores while the sweep pages are written: a sweep's job pages as
soon as its metrics lines are read, the other jobs' pages before the first sweep.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from report import carry, jobpages, live, manifest
from report.carry import Carry
from report.data import SweepDef, read_sweep_defs
from report.incremental import (
    FORMAT,
    LOOSE,
    MANIFEST,
    JobKey,
    Plan,
    assign_groups,
    code_hash,
    finished,
    groups_from_df,
    load_manifest,
    plan,
    sweep_of,
)
from report.metrics_cache import MetricsIndex
from report.pages import all_jobs_page, index_page, summary
from report.render import Renderer, copy_static
from report.rowcache import cached_results
from report.scan import ids_by_state, scan_keys
from report.stats import BuildStats
from report.sweepbuild import SweepSteps
from report.workers import Workers, get_workers
from spool.api import Spool
from spool.errors import NotFound, UsageError
from spool.states import State

__all__ = ["build_report", "build", "BuildStats", "MANIFEST"]

#: job pages per piece of work handed to a worker (small enough to spread, big enough to be cheap)
BATCH = 64


class _Builder(SweepSteps):
    """One build: what changed since the manifest, then only those pages and charts (a sweep's
    own steps in `report.sweepbuild`)."""

    def __init__(
        self,
        spool: Spool,
        out: Path,
        sweep: str | None,
        metric: str | None,
        mode: str | None,
        processes: int | None,
    ):
        if mode not in (None, "max", "min"):
            raise UsageError(f"--mode must be max or min, not {mode!r}")
        self.spool = spool
        self.out = out
        self.scope = sweep
        self.metric_arg = metric
        self.mode_arg = mode
        self.stats = BuildStats()
        self.job_key: dict[str, JobKey | None] = {}
        self.pages = Renderer(spool, out)
        self.built_at = self.pages.built_at
        self.workers: Workers = get_workers(processes)
        self.stats.processes = self.workers.processes
        self.pending: list[tuple[str, Future[Any]]] = []  #: (what, future) handed to the workers
        self.defs: dict[str, SweepDef] = {}
        self.status: dict[str, Any] = {}
        self.code = self.spool_rel = ""
        self.existing: set[str] = set()  #: job pages in the output folder before this build
        self._jobs: dict[str, Any] = {}  #: the jobs' manifest entries
        self._frags: dict[str, str] = {}  #: the same as JSON (`manifest.entry_json`), for the manifest
        self.carry: Carry | None = None  #: the last build's bookkeeping, when this build took it
        self.skipped: list[str] = []  #: jobs whose pages were skipped (moved on since the scan)
        self._manifest: dict[str, Any] = {}  #: the manifest this build wrote
        self._todo: dict[str, list[str]] = {}  #: job pages still to hand to the workers, by group

    # -- the steps ----------------------------------------------------------------------------
    def run(self) -> Path:
        t0 = time.perf_counter()
        self.spool.check()  # the clear "no spool here"
        self.defs = read_sweep_defs(self.spool.layout)
        self._check_scope()
        with self.stats.phase("scan"):
            keys = scan_keys(self.spool, self.scope, self._scan_split())
            if self.scope is not None:
                keys = {j: k for j, k in keys.items() if self._in_scope(j)}
            # done/ and failed/ as the scan found them: listed once, each name checked once
            self.status = self.spool.status(ids_by_state(keys) if self.scope is None else None)
        man = self._open_output()
        p = self._assign_groups(keys, man)
        self._plan(p, man)
        with self.stats.phase("load_results"):
            self._load_frames(p, man)
        self.stats.jobs_total = len(keys)
        self.job_key = dict(keys)
        metrics_cache: dict[str, MetricsIndex] = {}
        self._plan_pages(p, man)
        redone = p.redo & set(p.sweep_ids)  # their pages go with their metrics, in `_sweep`
        for g in sorted(set(self._todo) - redone):
            self._submit_pages(p, g, None)
        sweeps, summaries = self._sweeps(p, man, metrics_cache)
        self._loose(p, man, summaries)
        jobs = self._jobs
        self._remove_gone(p)
        index_live = live.index_state(self.status, summaries)
        with self.stats.phase("index"):
            index_page(self.pages, self.scope, self.status, self.defs, summaries, index_live)
        self._wait()
        self.stats.seconds = round(time.perf_counter() - t0, 4)
        self._write_manifest(man, jobs, sweeps, p.loose_sig, summaries, index_live)
        self._keep_carry(p)
        return self.out / "index.html"

    def _scan_split(self) -> Any:
        """The workers' `submit` for the scan to take half of a big folder's stats there (their
        CPU counted as the workers'), or None when this build has none."""
        if not self.workers.processes:
            return None

        def split(fn: Any, *args: Any) -> Future[Any]:
            fut = self.workers.submit(fn, *args)
            self.pending.append(("scan", fut))
            return fut

        return split

    def _in_scope(self, job_id: str) -> bool:
        """The sweep filter: every job when the build is not limited to one sweep."""
        return self.scope is None or sweep_of(job_id) == self.scope

    def _check_scope(self) -> None:
        if not self.scope or self.scope in self.defs:
            return
        layout = self.spool.layout
        if not any(self._in_scope(e.id) for st in State for e in layout.entries(st)):
            raise NotFound(f"no sweep {self.scope!r} in {self.spool.root}")

    def _open_output(self) -> dict[str, Any]:
        """The output folders, the static files, and the last manifest (fresh: a full build)."""
        for d in ("", "jobs", "sweeps", "static"):
            (self.out / d).mkdir(parents=True, exist_ok=True)
        self.code = code_hash()
        self.spool_rel = os.path.relpath(self.spool.root, self.out)
        man, stale = load_manifest(self.out, self.code, self.spool_rel)
        self.stats.full = stale
        copy_static(self.out)
        return man

    def _assign_groups(self, keys: dict[str, JobKey], man: dict[str, Any]) -> Plan:
        """Each job's group as recorded when its key is unchanged, else guessed from its id
        (a guess is checked against the results in `_load_frames`): from the last build's
        `Carry` when this process made the manifest, else from the manifest."""
        c = carry.take(self.out, man, frozenset(self.defs), self.scope)
        changed = c.update(keys) if c is not None else None
        if c is None or changed is None:
            return Plan(keys, *assign_groups(keys, man["jobs"], set(self.defs)))
        self.carry = c
        self.stats.carried = True
        return Plan(keys, c.group, changed, _members=c.members, group_sigs=c.sigs)

    def _plan(self, p: Plan, man: dict[str, Any]) -> None:
        members = p.members()
        p.sweep_ids = sorted((set(members) - {LOOSE}) | ({self.scope} if self.scope else set(self.defs)))
        progress = self.status.get("sweeps") or {}
        opts = (self.out, self.scope, self.metric_arg, self.mode_arg)
        found = plan(*opts, members, p.keys, p.sweep_ids, self.defs, progress, man, p.group_sigs)
        p.sigs, p.loose_sig, p.redo = found

    def _load_frames(self, p: Plan, man: dict[str, Any]) -> None:
        """The results of the groups to redo: per sweep when few, else the whole spool once."""
        layout = self.spool.layout
        full = self.stats.full or LOOSE in p.redo or len(p.redo) > max(1, len(p.sweep_ids) // 2)
        members = p.members()
        for sid in [] if full else sorted(p.redo):
            try:
                sub = finished(cached_results(layout, p.keys, sid, members.get(sid, [])))
            except NotFound:
                sub = finished(pd.DataFrame())
            if set(sub["id"].astype(str)) != set(members.get(sid, [])):
                full = True  # a job that is not where its id says: sort everything out from the results
                break
            p.frames[sid] = sub
        if not full:
            return
        df = finished(cached_results(layout, p.keys, self.scope))
        truth = groups_from_df(df, set(self.defs))
        for jid in list(p.group):
            if jid in truth and truth[jid] != p.group[jid]:
                p.set_group(jid, truth[jid])
        self._plan(p, man)
        row_group = df["id"].astype(str).map(lambda j: truth.get(j, LOOSE))
        p.frames = {g: df[(row_group == g).to_numpy()] for g in p.redo}

    def _loose(self, p: Plan, man: dict[str, Any], summaries: dict[str, Any]) -> None:
        if LOOSE in p.redo:
            loose = p.frames[LOOSE]
            with self.stats.phase("sweep_pages"):
                all_jobs_page(self.pages, self.job_key, loose, self.out / "all-jobs.html")
            self.stats.all_jobs_paged = True
            summaries[LOOSE] = summary(loose, None, None)
        if self.scope:
            p.loose_sig = str(man.get("all_jobs") or "")

    def _plan_pages(self, p: Plan, man: dict[str, Any]) -> None:
        """The jobs' manifest entries, and the pages to write (new or changed jobs, or pages gone
        missing) by group, handed to the workers by `_submit_pages` (other sweeps' entries kept
        when the build is limited to one)."""
        try:
            existing = {n[:-5] for n in os.listdir(self.out / "jobs") if n.endswith(".html")}
        except OSError:
            existing = set()
        self.existing = existing
        with self.stats.phase("job_pages"):
            kept = (lambda j: not self._in_scope(j)) if self.scope else None
            self._jobs, self._frags = manifest.job_entries(p, man["jobs"], self.carry, kept)
            # set operations, not a test per job: one new job in 10,000 is one page
            for jid in sorted((p.changed & p.keys.keys()) | (p.keys.keys() - existing)):
                self._todo.setdefault(p.group[jid], []).append(jid)

    def _submit_pages(self, p: Plan, group: str, cache: MetricsIndex | None) -> None:
        """Hand a group's pages to the workers, each with its metrics lines from `cache` when the
        build read them for its sweep's charts (None: the worker reads the job's own file).

        A sweep's pages go as soon as its metrics are read, so the workers write them while this
        process makes that sweep's charts and page and the next sweeps' (a full build of 10,000
        jobs is mostly job pages: handed over last, they ran after the sweeps, not beside them)."""
        ctx = (str(self.spool.root), str(self.out), self.built_at)
        sweep = None if group == LOOSE else group
        todo = [
            (jid, p.keys[jid][0], sweep, cache.columns(jid) if cache is not None else None, cache is None)
            for jid in self._todo.pop(group, [])
        ]
        for i in range(0, len(todo), BATCH):
            self.pending.append(
                ("jobs", self.workers.submit(jobpages.render_batch, *ctx, todo[i : i + BATCH]))
            )

    def _remove_gone(self, p: Plan) -> None:
        """Delete the pages of jobs that are no longer finished (retried) or gone, and old sweeps' files."""
        for jid in sorted(self.existing - p.keys.keys()):
            if not self._in_scope(jid):
                continue
            try:
                (self.out / "jobs" / f"{jid}.html").unlink()
                self.stats.jobs_removed.append(jid)
            except OSError:
                pass
        if not self.scope:
            self._prune_sweeps(set(p.sweep_ids))

    def _wait(self) -> None:
        """Wait for every piece handed to the workers; a job whose folder moved loses its entry."""
        for what, fut in self.pending:
            value, cpu = fut.result()
            if self.workers.processes:
                self.stats.add("workers", cpu)
            if what == "jobs":
                written, skipped = value
                self.stats.jobs_rendered.extend(written)
                for jid in skipped:  # moved on (a retry) since the scan: the next build sees where
                    self._jobs.pop(jid, None)
                    self._frags.pop(jid, None)
                    self.skipped.append(jid)
        self.stats.jobs_rendered.sort()
        self.pending = []

    def _write_manifest(
        self,
        man: dict[str, Any],
        jobs: dict[str, Any],
        sweeps: dict[str, Any],
        loose_sig: str,
        summaries: dict[str, Any],
        index_live: dict[str, Any],
    ) -> None:
        beacon = live.manifest_part(index_live, sweeps)
        doc = {
            "format": FORMAT,
            "code": self.code,
            "spool": self.spool_rel,
            "built_at": self.built_at,
            "sweeps": sweeps,
            "all_jobs": loose_sig,
            "summaries": summaries,
            "live": beacon,
            "last_build": {
                **asdict(self.stats),
                "jobs_rendered": len(self.stats.jobs_rendered),
                "jobs_removed": len(self.stats.jobs_removed),
            },
        }
        self._manifest = manifest.publish(self.out, doc, jobs, self._frags)
        live.write_beacon(self.out, beacon, self.built_at)

    def _keep_carry(self, p: Plan) -> None:
        """This build's bookkeeping for the next build of the folder in this process (`carry`);
        none after a build limited to one sweep (its keys are that sweep's only)."""
        if self.scope is not None:
            return
        c = Carry(
            self._manifest,
            frozenset(self.defs),
            dict(p.keys),
            p.group,
            p.members(),
            p.group_sigs,
            self._frags,
        )
        c.forget(self.skipped)
        carry.keep(self.out, c)


def build(
    spool: Spool,
    out: Path | str | None = None,
    sweep: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    processes: int | None = None,
) -> tuple[Path, BuildStats]:
    """Like `build_report`, and also says what was (re)built."""
    target = Path(out).expanduser().absolute() if out is not None else spool.root / "report"
    b = _Builder(spool, target, sweep, metric, mode, processes)
    with _collector_paused():
        index = b.run()
    return index, b.stats


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for one build, back on after it (as it was).

    A build makes tens of thousands of short-lived objects; each of its ~50 young collections
    promotes some, and every few rebuilds in one process (`--watch`, `serve --report`) that sets
    off a full collection, which walks every document the process keeps parsed (the manifest, the
    caches: `jsoncache`). Measured at 10,000 jobs: 0.10 s, in every other rebuild after one new
    job, of rebuilds taking 0.4-0.5 s. Off for the build, the young objects are collected once
    after it, and full collections come about fifty times less often. Memory: the cyclic garbage
    of one build waits until its end (+20 MB peak for a full build of 1,000 jobs in-process)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def build_report(
    spool: Spool,
    out: Path | None = None,
    sweep: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    processes: int | None = None,
) -> Path:
    """Write (or bring up to date) the static report of `spool`; returns the path of index.html.

    `out` defaults to `<spool>/report`. `sweep` limits the build to one sweep (its page, its jobs and
    the index). `metric` (a result field, with or without `result.`) and `mode` (`max`/`min`) choose
    how runs are ranked; by default the sweep file's metric, else the first numeric result field,
    maximised unless its name says loss/error. `processes`: worker processes for charts and job
    pages (default: one per core on Linux; 0: everything in this process).
    """
    return build(spool, out, sweep, metric, mode, processes)[0]
