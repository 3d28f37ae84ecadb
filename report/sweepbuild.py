"""One sweep's part of a build (`SweepSteps`, mixed into `report.build`'s builder): its metrics
lines read once and shared with its job pages, the charts of its metric prepared in a free
worker while the page's table and the other charts are made here, the chart files that changed
handed to the workers, and the page written when its jobs or progress changed."""

from __future__ import annotations

import shutil
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pandas as pd

from report import live
from report.compare import runs_json
from report.data import SweepDef, choose_metric, seed_column, varying_params
from report.incremental import LOOSE, JobKey, Plan, SweepEntry
from report.metrics_cache import MetricsIndex, sweep_metrics
from report.pages import render_sweep, summary, sweep_context
from report.render import Renderer
from report.stats import BuildStats
from report.sweepcharts import chart_frame, curve_frame, for_page, prepared_charts, redraw
from report.workers import Workers
from spool.api import Spool
from spool.errors import UsageError

__all__ = ["SweepSteps"]


class SweepSteps:
    """The builder's sweep steps; the builder (`report.build`) sets these attributes."""

    spool: Spool
    out: Path
    scope: str | None
    metric_arg: str | None
    mode_arg: str | None
    stats: BuildStats
    job_key: dict[str, JobKey | None]
    pages: Renderer
    workers: Workers
    pending: list[tuple[str, Future[Any]]]
    defs: dict[str, SweepDef]

    def _submit_pages(self, p: Plan, group: str, cache: MetricsIndex | None) -> None:
        raise NotImplementedError  # the builder's: a group's job pages handed to the workers

    def _sweeps(
        self, p: Plan, man: dict[str, Any], metrics_cache: dict[str, MetricsIndex]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every sweep's manifest entry and index summary, redoing the sweeps in `p.redo`."""
        summaries: dict[str, Any] = dict(man.get("summaries") or {})
        sweeps: dict[str, Any] = dict(man["sweeps"]) if self.scope else {}
        for sid in p.sweep_ids:
            if sid in p.redo:
                entry, summaries[sid] = self._sweep(
                    sid, p, SweepEntry.from_json(man["sweeps"].get(sid)), metrics_cache
                )
                sweeps[sid] = entry.to_json()
            else:
                sweeps[sid] = man["sweeps"][sid]
        if not self.scope:
            for sid in list(summaries):
                if sid != LOOSE and sid not in p.sweep_ids:
                    del summaries[sid]
        return sweeps, summaries

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

    def _metric(self, sid: str, sub: pd.DataFrame, sdef: SweepDef | None) -> Any:
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
        return metric

    def _sweep(
        self, sid: str, p: Plan, old: SweepEntry | None, metrics_cache: dict[str, MetricsIndex]
    ) -> tuple[SweepEntry, dict[str, Any]]:
        """Redo what changed in one sweep: its charts whose data changed, its page when its jobs or
        progress changed. Returns its manifest entry and its index summary."""
        sub, sdef = p.frames[sid], self.defs.get(sid)
        sig, page_sig, counts = p.sigs[sid]
        metric = self._metric(sid, sub, sdef)
        seed = seed_column(sub)
        params = [c for c in varying_params(sub) if c != seed]
        with self.stats.phase("sweep_charts"):
            # metrics lines of every run of the sweep, shared with its job pages
            ids = sub["id"].astype(str).tolist()
            mdf = sweep_metrics(self.spool.layout, self.out, sid, ids, self.job_key) if ids else None
            metrics_cache[sid] = MetricsIndex(mdf)
        self._submit_pages(p, sid, metrics_cache[sid])
        with self.stats.phase("sweep_charts"):
            frame = chart_frame(sub, metric, params, seed)
            lines = curve_frame(mdf, metric)
            args = (self.spool.layout, sid, frame, metric, params, seed, lines, sdef.doc if sdef else {})
            charts_f, remote = self._charts_future(args)
        page = self.out / "sweeps" / f"{sid}.html"
        total = (sdef.count if sdef and sdef.count else None) or sum(counts.values())
        # a page whose jobs or progress changed: its table is made while the charts are
        early = old is None or old.page != page_sig or not page.exists()
        what = (sid, sub, sdef, metric, params, seed, counts)
        parts = self._page_parts(what, metrics_cache.get(sid)) if early else None
        summed = {**summary(sub, metric, params), "progress": counts, "total": total}  # for the index
        entry = SweepEntry(sig, page_sig)
        with self.stats.phase("sweep_charts"):
            charts, drawn = self._charts(sid, args, charts_f, remote, old, entry)
        if old is None or old.sig != sig or drawn:
            self.stats.sweeps_charted.append(sid)
        if early or drawn:
            parts = parts or self._page_parts(what, metrics_cache.get(sid))
            with self.stats.phase("sweep_pages"):
                state = live.page_state(f"sweep:{sid}", page_sig, live.sweep_unfinished(counts, total))
                chart_info = {"charts": for_page(charts, entry.charts), **entry.info}
                render_sweep(self.pages, page, parts[0], chart_info, state, parts[1])
            self.stats.sweeps_paged.append(sid)
        return entry, summed

    def _charts_future(self, args: tuple[Any, ...]) -> tuple[Future[Any], bool]:
        """A sweep's charts of its metric (`sweepcharts.PARTS`) prepared in a worker when one is
        free, and whether it was: after a few new jobs the sweep page's table and the other
        charts are made here meanwhile. In a full build the workers are busy with job pages,
        and this process prepares them."""
        busy = sum(not f.done() for _, f in self.pending)
        if self.workers.processes and busy < self.workers.processes:
            return self.workers.submit(prepared_charts, ("metric",), *args), True
        fut: Future[Any] = Future()
        fut.set_result((prepared_charts(("metric",), *args), 0.0))
        return fut, False

    def _charts(
        self,
        sid: str,
        args: tuple[Any, ...],
        fut: Future[Any],
        remote: bool,
        old: SweepEntry | None,
        entry: SweepEntry,
    ) -> tuple[list[Any], list[str]]:
        """The sweep's charts of its runs made here, those of its metric taken from `fut`, both
        into `entry`, and the charts whose files must be drawn handed to the workers; the
        charts in page order, and the files being drawn."""
        own, own_info = prepared_charts(("runs",), *args)
        (charts, info), cpu = fut.result()
        if remote:
            self.stats.add("workers", cpu)
        charts, entry.info = charts + own, {**info, **own_info}
        chart_dir = self.out / "sweeps" / sid
        before = old.charts if old else []
        entry.charts, futures, drawn = redraw(charts, before, chart_dir, self.workers.submit)
        self.pending.extend(("chart", f) for f in futures)
        self.stats.charts_drawn.extend(f"{sid}/{name}" for name in drawn)
        return charts, drawn

    def _page_parts(self, what: tuple[Any, ...], metrics: MetricsIndex | None) -> tuple[dict[str, Any], Any]:
        """The sweep page but its charts (`pages.sweep_context` of `what`: the sweep's id, rows,
        definition, metric, parameters, seed column and progress), and its runs' compare data."""
        sid, sub, _, _, params, seed, _ = what
        with self.stats.phase("sweep_pages"):
            shown = params + ([seed] if seed else [])
            runs = runs_json(self.out, sid, sub, shown, metrics, self.job_key)
            ctx = sweep_context(self.pages, self.job_key, *what)
        return ctx, runs
