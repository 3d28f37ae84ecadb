"""The summary pages: each sweep's page, the page of jobs outside sweeps, and the index with its summaries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from markupsafe import Markup

from report.data import (
    Column,
    MetricChoice,
    SweepDef,
    config_keys,
    config_label,
    fmt,
    fmt_duration,
    fmt_time,
    rank,
    table_columns,
    varying_params,
)
from report.incremental import JobKey
from report.render import Renderer, log_tail, records
from report.tables import table_rows
from spool.states import State

__all__ = [
    "RECENT_FAILURES",
    "MAX_FAILURE_DETAILS",
    "summary",
    "sweep_context",
    "render_sweep",
    "all_jobs_page",
    "index_page",
]

MAX_FAILURE_DETAILS = 100
RECENT_FAILURES = 20


def summary(sub: pd.DataFrame, metric: MetricChoice | None, params: list[str] | None) -> dict[str, Any]:
    """What the index shows of a sweep (or of the loose jobs): counts, the best run, recent failures."""
    counts = Counter(sub["state"].astype(str).tolist()) if not sub.empty else Counter()
    best = None
    if metric is not None and not sub.empty:
        top = rank(sub, metric).head(1)
        if len(top) and top.iloc[0]["state"] == "done":
            row = top.iloc[0]
            best = {
                "id": row["id"],
                "value": fmt(row[metric.column]),
                "metric": metric.label,
                "mode": metric.mode,
                "config": config_label(str(config_keys(top, params or []).iloc[0]), params or []),
            }
    fails = []
    if not sub.empty and "error.kind" in sub.columns:
        cols = [c for c in ("id", "sweep", "error.kind", "error.message", "ended") if c in sub.columns]
        f = sub.loc[(sub["state"] == "failed").to_numpy(), cols]  # those columns only: not all 30
        if "ended" in f.columns:
            f = f.sort_values("ended", ascending=False, na_position="last", kind="stable")
        for r in records(f.head(RECENT_FAILURES), ["id", "sweep", "error.kind", "error.message", "ended"]):
            fails.append(
                {
                    "id": r.get("id"),
                    "sweep": fmt(r.get("sweep")),
                    "kind": fmt(r.get("error.kind")),
                    "message": fmt(r.get("error.message"))[:300],
                    "ended": fmt(r.get("ended")),
                }
            )
    return {
        "done": counts.get("done", 0),
        "failed": counts.get("failed", 0),
        "best": best,
        "failures": fails,
    }


def _failure_items(renderer: Renderer, sub: pd.DataFrame) -> tuple[list[dict[str, Any]], int]:
    if sub.empty:
        return [], 0
    f = sub[sub["state"] == "failed"]
    items = []
    for rec in records(
        f.head(MAX_FAILURE_DETAILS),
        ["id", "error.kind", "error.message", "error.stderr_tail", "host", "ended"],
    ):
        tail = rec.get("error.stderr_tail")
        if not isinstance(tail, str) or not tail:
            tail = log_tail(renderer.spool.layout.state_dir(State.FAILED) / str(rec["id"]) / "stderr.log", 20)
        items.append(
            {
                "id": rec["id"],
                "kind": fmt(rec.get("error.kind")) or "unknown",
                "message": fmt(rec.get("error.message")),
                "stderr": tail or "",
                "host": fmt(rec.get("host")),
                "ended": fmt(rec.get("ended")),
            }
        )
    return items, max(0, len(f) - len(items))


def sweep_context(
    renderer: Renderer,
    job_key: dict[str, JobKey | None],
    sid: str,
    sub: pd.DataFrame,
    sdef: SweepDef | None,
    metric: MetricChoice | None,
    params: list[str],
    seed: str | None,
    counts: dict[str, int],
) -> dict[str, Any]:
    """Everything a sweep page shows but its charts (`render_sweep` adds those): made while the
    charts are prepared in a worker, when one is free."""
    ranked = rank(sub, metric)
    shown_params = params + ([seed] if seed else [])
    columns = table_columns(ranked, params=shown_params, metric=metric)
    fixed = []
    for c in sub.columns:
        if c.startswith("param.") and c not in shown_params:
            vals = sub[c].dropna()
            if len(vals):
                fixed.append((c.removeprefix("param."), fmt(vals.iloc[0])))
    definition = []
    doc = sdef.doc if sdef else {}
    for k in ("name", "description", "script", "method", "created", "count", "seeds"):
        if doc.get(k) not in (None, ""):
            definition.append((k, fmt_time(doc.get(k)) if k == "created" else fmt(doc.get(k))))
    params_text = ""
    if isinstance(doc.get("parameters"), dict):
        import yaml

        params_text = yaml.safe_dump(doc["parameters"], sort_keys=False, allow_unicode=True, width=100)
    best = []
    if metric is not None:
        top = ranked.head(3)  # the keys of these three only: a sweep has thousands of rows
        keys = config_keys(top, params)
        for rec, key in zip(records(top, ["id", "state", metric.column]), keys, strict=True):
            if rec.get("state") == "done":
                best.append(
                    {
                        "id": rec["id"],
                        "value": fmt(rec[metric.column]),
                        "config": config_label(str(key), params),
                    }
                )
    failures, more = _failure_items(renderer, sub)
    total = (sdef.count if sdef and sdef.count else None) or sum(counts.values())
    return {
        "title": f"sweep {sid}",
        "sid": sid,
        "name": sdef.name if sdef else None,
        "definition": definition,
        "params_text": params_text,
        "fixed": fixed,
        "metric": metric,
        "counts": counts,
        "total": total,
        "best": best,
        "columns": columns,
        "rows_html": table_rows(renderer, sid, ranked, columns, job_key, "../"),
        "nrows": len(ranked),
        "failures": failures,
        "more_failures": more,
        "chart_base": f"{quote(sid)}/",
    }


def render_sweep(
    renderer: Renderer,
    page: Path,
    ctx: dict[str, Any],
    chart_info: dict[str, Any],
    live_state: dict[str, Any] | None = None,
    runs_data: Markup | None = None,
) -> None:
    """Write a sweep page: its `sweep_context`, its charts and what they found (`chart_info`)."""
    renderer.render(
        "sweep.html.j2",
        page,
        root="../",
        **ctx,
        charts=chart_info.get("charts", []),
        hosts=chart_info.get("hosts", []),
        spread=chart_info.get("spread") or {},
        fits=chart_info.get("fits", []),
        failure_kinds=chart_info.get("failure_kinds", []),
        live=live_state,
        runs_data=runs_data,
    )


def all_jobs_page(
    renderer: Renderer, job_key: dict[str, JobKey | None], loose: pd.DataFrame, page: Path
) -> None:
    d = loose.sort_values("id", ascending=False, kind="stable") if not loose.empty else loose
    params = varying_params(d) if not d.empty else []
    if len(params) > 12:
        params = params[:12]
    columns = table_columns(d, params=params, metric=None, with_sweep=False)
    if "script" in d.columns:
        columns.insert(2, Column("script", "script", "text"))
    renderer.render(
        "all_jobs.html.j2",
        page,
        root="",
        title="all jobs outside sweeps",
        columns=columns,
        rows_html=table_rows(renderer, "__loose__", d, columns, job_key, ""),
        nrows=len(d),
        count=len(d),
    )


def index_page(
    renderer: Renderer,
    scope: str | None,
    status: dict[str, Any],
    defs: dict[str, SweepDef],
    summaries: dict[str, Any],
    live_state: dict[str, Any] | None = None,
) -> None:
    from spool.heartbeats import runner_rows

    sweeps = []
    for sid in sorted(k for k in summaries if k != "__loose__"):
        s = summaries[sid]
        d = defs.get(sid)
        prog = s.get("progress") or {}
        total = s.get("total") or sum(prog.values()) or 1
        sweeps.append(
            {
                "id": sid,
                "name": d.name if d else None,
                "script": fmt((d.doc if d else {}).get("script")),
                "created": fmt_time((d.doc if d else {}).get("created")),
                "progress": prog,
                "total": total,
                "finished": prog.get("done", 0) + prog.get("failed", 0),
                "best": s.get("best"),
            }
        )
    failures = [f for s in summaries.values() for f in s.get("failures", [])]
    failures.sort(key=lambda f: (f.get("ended") or "", f.get("id") or ""), reverse=True)
    runners = []
    for r in runner_rows(renderer.spool.layout.runners):
        caps = r.get("capabilities") or {}
        dev = "gpu" if caps.get("gpu") else ("mps" if caps.get("mps") else "cpu")
        mem = caps.get("memory_gb")
        machine = f"{caps.get('cpu_count', '?')} cpu" + (f", {float(mem):.0f} GB" if mem else "") + f", {dev}"
        live = "alive" if r.get("alive") else ("stopped" if r.get("status") == "stopped" else "gone")
        runners.append(
            {
                "name": fmt(r.get("name")),
                "host": fmt(r.get("host")),
                "live": live,
                "status": fmt(r.get("status")),
                "last_seen": fmt_time(r.get("last_seen")),
                "age": fmt_duration(r.get("age")),
                "jobs": ", ".join(map(str, r.get("jobs") or [])),
                "machine": machine,
            }
        )
    loose = summaries.get("__loose__") or {"done": 0, "failed": 0}
    counts = {s.value: status.get(s.value, 0) for s in State}
    renderer.render(
        "index.html.j2",
        renderer.out / "index.html",
        root="",
        title="housespool report",
        counts=counts,
        total=status.get("total", sum(counts.values())),
        sweeps=sweeps,
        runners=runners,
        failures=failures[:RECENT_FAILURES],
        loose=loose,
        scope=scope,
        live=live_state,
    )
