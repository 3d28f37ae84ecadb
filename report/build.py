"""`build_report`: the spool as a static HTML folder that opens from disk (no server, no network).

Layout of the output folder::

    index.html           the spool at a glance
    all-jobs.html        jobs outside any sweep
    sweeps/<id>.html     one page per sweep; its charts in sweeps/<id>/*.png
    jobs/<id>.html       one page per finished job
    static/              report.css, report.js (copied from the package)
    manifest.json        what each page was built from (for incremental rebuilds)

This module runs a build: it asks `incremental` what changed, redoes those sweeps (`sweepcharts`,
`pages`) and job pages (`jobpages`), and writes the manifest last. See `incremental` for the rules.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from report.data import SweepDef, choose_metric, read_sweep_defs, seed_column, varying_params
from report.incremental import (
    FORMAT,
    LOOSE,
    MANIFEST,
    SWEEP_MEMBER,
    JobKey,
    code_hash,
    finished,
    groups_from_df,
    load_manifest,
    plan,
    scan_keys,
)
from report.jobpages import job_page
from report.metrics_cache import MetricsIndex
from report.pages import all_jobs_page, index_page, summary, sweep_page
from report.render import Renderer, copy_static, write_atomic
from report.sweepcharts import sweep_charts
from spool.api import Spool
from spool.errors import NotFound, SpoolError, UsageError
from spool.results import load_metrics, load_results
from spool.states import State

__all__ = ["build_report", "build", "BuildStats", "MANIFEST"]


@dataclass
class BuildStats:
    """What one build did (also kept in the manifest as `last_build`)."""

    seconds: float = 0.0
    full: bool = False
    jobs_total: int = 0
    jobs_rendered: list[str] = field(default_factory=list)
    jobs_removed: list[str] = field(default_factory=list)
    sweeps_charted: list[str] = field(default_factory=list)
    sweeps_paged: list[str] = field(default_factory=list)
    all_jobs_paged: bool = False
    #: CPU seconds of this process per phase (scan, results, charts, sweep pages, job pages, index)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.process_time()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.process_time() - t, 4)


class _Builder:
    """One build: what changed since the manifest, then only those pages and charts."""

    def __init__(self, spool: Spool, out: Path, sweep: str | None, metric: str | None, mode: str | None):
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

    def run(self) -> Path:
        t0 = time.perf_counter()
        spool, out, layout = self.spool, self.out, self.spool.layout
        status = spool.status()  # also raises the clear "no spool here"
        defs = read_sweep_defs(layout)
        known = set(defs)
        if (
            self.scope
            and self.scope not in defs
            and not any(e.id.startswith(f"{self.scope}-") for st in State for e in layout.entries(st))
        ):
            raise NotFound(f"no sweep {self.scope!r} in {spool.root}")
        with self.stats.phase("scan"):
            keys = scan_keys(spool, self.scope)  # stat before read: see `report.incremental`
        if self.scope:
            keys = {
                j: k for j, k in keys.items() if (m := SWEEP_MEMBER.fullmatch(j)) and m.group(1) == self.scope
            }

        out.mkdir(parents=True, exist_ok=True)
        for d in ("jobs", "sweeps", "static"):
            (out / d).mkdir(exist_ok=True)
        code = code_hash()
        spool_rel = os.path.relpath(spool.root, out)
        man, stale = load_manifest(out, code, spool_rel)
        if stale:
            self.stats.full = True
        copy_static(out)
        old_jobs: dict[str, Any] = man["jobs"]

        # each job's group: as recorded when its key is unchanged, else guessed from its id
        # (a guess is checked against the results below)
        group: dict[str, str] = {}
        changed: set[str] = set()
        for jid, k in keys.items():
            old = old_jobs.get(jid)
            if (
                isinstance(old, list)
                and len(old) == 4
                and old[:3] == list(k)
                and (old[3] in known or old[3] == LOOSE)
            ):
                group[jid] = old[3]
            else:
                m = SWEEP_MEMBER.fullmatch(jid)
                group[jid] = m.group(1) if m and m.group(1) in known else LOOSE
                changed.add(jid)

        def by_group() -> dict[str, list[str]]:
            members: dict[str, list[str]] = {}
            for jid in sorted(group):
                members.setdefault(group[jid], []).append(jid)
            return members

        members = by_group()
        sweep_ids = sorted((set(members) - {LOOSE}) | ({self.scope} if self.scope else known))
        progress = status.get("sweeps") or {}
        opts = (out, self.scope, self.metric_arg, self.mode_arg)
        sigs, loose_sig, redo = plan(*opts, members, keys, sweep_ids, defs, progress, man)

        # read the results of the groups to redo: per sweep when few, else the whole spool once
        frames: dict[str, pd.DataFrame] = {}
        full = self.stats.full or LOOSE in redo or len(redo) > max(1, len(sweep_ids) // 2)
        with self.stats.phase("load_results"):
            if not full:
                for sid in sorted(redo):
                    try:
                        sub = finished(load_results(layout, sweep=sid, state=None))
                    except NotFound:
                        sub = finished(pd.DataFrame())
                    if set(sub["id"].astype(str)) != set(members.get(sid, [])):
                        full = (
                            True  # a job that is not where its id says: sort everything out from the results
                        )
                        break
                    frames[sid] = sub
            if full:
                df = finished(load_results(layout, sweep=self.scope, state=None))
                truth = groups_from_df(df, known)
                for jid in list(group):
                    if jid in truth and truth[jid] != group[jid]:
                        group[jid] = truth[jid]
                members = by_group()
                sweep_ids = sorted((set(members) - {LOOSE}) | ({self.scope} if self.scope else known))
                sigs, loose_sig, redo = plan(*opts, members, keys, sweep_ids, defs, progress, man)
                row_group = df["id"].astype(str).map(lambda j: truth.get(j, LOOSE))
                frames = {g: df[(row_group == g).to_numpy()] for g in redo}
        self.stats.jobs_total = len(keys)
        self.job_key = {j: k for j, k in keys.items()}

        # sweeps
        metrics_cache: dict[str, MetricsIndex] = {}
        summaries: dict[str, Any] = dict(man.get("summaries") or {})
        new_sweeps: dict[str, Any] = dict(man["sweeps"]) if self.scope else {}
        for sid in sweep_ids:
            sig, page_sig, counts = sigs[sid]
            if sid in redo:
                entry, sweep_summary = self._sweep(
                    sid,
                    frames[sid],
                    defs.get(sid),
                    counts,
                    sig,
                    page_sig,
                    man["sweeps"].get(sid),
                    metrics_cache,
                )
                new_sweeps[sid] = entry
                summaries[sid] = sweep_summary
            else:
                new_sweeps[sid] = man["sweeps"][sid]
        if not self.scope:
            for sid in list(summaries):
                if sid != LOOSE and sid not in sweep_ids:
                    del summaries[sid]

        # jobs outside any sweep
        if LOOSE in redo:
            loose = frames[LOOSE]
            all_jobs_page(self.pages, self.job_key, loose, out / "all-jobs.html")
            self.stats.all_jobs_paged = True
            summaries[LOOSE] = summary(loose, None, None)
        if self.scope:
            loose_sig = str(man.get("all_jobs") or "")

        # job pages: only new or changed jobs, or pages that went missing
        try:
            existing = {n[:-5] for n in os.listdir(out / "jobs") if n.endswith(".html")}
        except OSError:
            existing = set()
        new_jobs: dict[str, Any] = {}
        if self.scope:  # keep other sweeps' entries
            new_jobs = {
                j: v
                for j, v in old_jobs.items()
                if not ((m := SWEEP_MEMBER.fullmatch(j)) and m.group(1) == self.scope)
            }
        for jid in sorted(keys):
            k = keys[jid]
            g = group[jid]
            if jid not in changed and jid in existing:
                new_jobs[jid] = [*k, g]
                continue
            mdf = None
            if g in metrics_cache:
                mdf = metrics_cache[g].get(jid)
            else:
                try:
                    one = load_metrics(layout, jid)
                except SpoolError:  # a job without metrics still gets its page
                    one = None
                mdf = one if one is not None and not one.empty else None
            with self.stats.phase("job_pages"):
                try:
                    job_page(self.pages, jid, k[0], None if g == LOOSE else g, mdf)
                except OSError:  # moved on (a retry) since the scan: the next build sees where it went
                    continue
            self.stats.jobs_rendered.append(jid)
            new_jobs[jid] = [*k, g]
        # pages of jobs that are no longer finished (retried) or gone
        for jid in sorted(existing - set(keys)):
            if self.scope and not ((m := SWEEP_MEMBER.fullmatch(jid)) and m.group(1) == self.scope):
                continue
            try:
                (out / "jobs" / f"{jid}.html").unlink()
                self.stats.jobs_removed.append(jid)
            except OSError:
                pass
        if not self.scope:
            self._prune_sweeps(set(sweep_ids))

        with self.stats.phase("index"):
            index_page(self.pages, self.scope, status, defs, summaries)
        self.stats.seconds = round(time.perf_counter() - t0, 4)
        manifest = {
            "format": FORMAT,
            "code": code,
            "spool": spool_rel,
            "built_at": self.built_at,
            "jobs": new_jobs,
            "sweeps": new_sweeps,
            "all_jobs": loose_sig,
            "summaries": summaries,
            "last_build": {
                **asdict(self.stats),
                "jobs_rendered": len(self.stats.jobs_rendered),
                "jobs_removed": len(self.stats.jobs_removed),
            },
        }
        write_atomic(out / MANIFEST, json.dumps(manifest, separators=(",", ":"), default=str))
        return out / "index.html"

    def _prune_sweeps(self, keep: set[str]) -> None:
        d = self.out / "sweeps"
        for p in d.iterdir():
            name = p.name[:-5] if p.name.endswith(".html") else p.name
            if name in keep:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    def _sweep(
        self,
        sid: str,
        sub: pd.DataFrame,
        sdef: SweepDef | None,
        counts: dict[str, int],
        sig: str,
        page_sig: str,
        old: dict[str, Any] | None,
        metrics_cache: dict[str, MetricsIndex],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Redo what changed in one sweep: its charts when its jobs (or metric) changed, its page
        when those or its progress changed. Returns its manifest entry and its index summary."""
        out = self.out
        old = old if isinstance(old, dict) else {}
        in_scope = self.scope is None or self.scope == sid
        metric = choose_metric(
            sub, sdef, self.metric_arg if in_scope else None, self.mode_arg if in_scope else None
        )
        if (
            self.scope == sid
            and self.metric_arg
            and metric is not None
            and metric.source.startswith("--metric (")
        ):
            raise UsageError(f"sweep {sid} has no numeric result {self.metric_arg!r}")
        varying = varying_params(sub)
        seed = seed_column(sub)
        params = [p for p in varying if p != seed]
        chart_dir = out / "sweeps" / sid
        chart_info = old.get("chart_info") if isinstance(old.get("chart_info"), dict) else None
        files_ok = chart_info is not None and all(
            (chart_dir / f).exists() for f in chart_info.get("files", [])
        )
        if old.get("sig") != sig or not files_ok:
            with self.stats.phase("sweep_charts"):
                chart_info = sweep_charts(
                    self.spool.layout,
                    self.out,
                    sid,
                    sub,
                    metric,
                    params,
                    seed,
                    chart_dir,
                    metrics_cache,
                    self.job_key,
                )
            self.stats.sweeps_charted.append(sid)
        assert chart_info is not None
        page = out / "sweeps" / f"{sid}.html"
        if old.get("page") != page_sig or not page.exists() or sid in self.stats.sweeps_charted:
            with self.stats.phase("sweep_pages"):
                sweep_page(
                    self.pages, self.job_key, sid, sub, sdef, metric, params, seed, counts, chart_info, page
                )
            self.stats.sweeps_paged.append(sid)
        index_summary = summary(sub, metric, params)
        index_summary["progress"] = counts
        index_summary["total"] = (sdef.count if sdef and sdef.count else None) or sum(counts.values())
        return {"sig": sig, "page": page_sig, "chart_info": chart_info}, index_summary


def build(
    spool: Spool,
    out: Path | str | None = None,
    sweep: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
) -> tuple[Path, BuildStats]:
    """Like `build_report`, and also says what was (re)built."""
    target = Path(out).expanduser().absolute() if out is not None else spool.root / "report"
    b = _Builder(spool, target, sweep, metric, mode)
    index = b.run()
    return index, b.stats


def build_report(
    spool: Spool,
    out: Path | None = None,
    sweep: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
) -> Path:
    """Write (or bring up to date) the static report of `spool`; returns the path of index.html.

    `out` defaults to `<spool>/report`. `sweep` limits the build to one sweep (its page, its jobs and
    the index). `metric` (a result field, with or without `result.`) and `mode` (`max`/`min`) choose
    how runs are ranked; by default the sweep file's metric, else the first numeric result field,
    maximised unless its name says loss/error.
    """
    return build(spool, out, sweep, metric, mode)[0]
