"""The per-job pages: params, result, run metadata, provenance, learning curves, log tails and file links."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from report import charts
from report.data import flatten, fmt, fmt_duration, fmt_time
from report.render import Renderer, href, log_tail
from spool.jobs import view
from spool.layout import Entry
from spool.states import State

__all__ = ["MAX_OUTPUT_FILES", "job_page", "job_curves"]

MAX_OUTPUT_FILES = 200


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def job_curves(mdf: pd.DataFrame | None, max_curves: int = 4) -> list[Any]:
    """A job's learning curves as inline SVG: each numeric key logged on at least two lines.

    Plain lists, no pandas per value: thousands of job pages must stay cheap.
    """
    if mdf is None or mdf.empty:
        return []
    cols = {str(c): mdf[c].tolist() for c in mdf.columns}
    xkey = "epoch" if any(_num(v) for v in cols.get("epoch", [])) else "step"
    xs = cols.get(xkey) or list(range(len(mdf)))
    xlabel = "epoch" if xkey == "epoch" else "step (metrics line)"
    out = []
    for key, values in cols.items():
        if key in ("id", "step", "epoch", "status"):
            continue
        pts = [(x, y) for x, y in zip(xs, values, strict=False) if _num(x) and _num(y)]
        if len(pts) < 2:
            continue
        out.append(charts.svg_curve([p[0] for p in pts], [p[1] for p in pts], title=key, xlabel=xlabel))
        if len(out) >= max_curves:
            break
    return out


def job_page(renderer: Renderer, jid: str, state: str, sweep: Any, mdf: pd.DataFrame | None) -> None:
    """Write `jobs/<jid>.html` from the job's folder (FileNotFoundError if it moved on since the scan)."""
    layout = renderer.spool.layout
    folder = layout.state_dir(State(state)) / jid
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    v = view(Entry(jid, State(state), folder))
    rec: dict[str, Any] = v.result or {}
    job: dict[str, Any] = rec["job"] if isinstance(rec.get("job"), dict) else (v.job or {})
    params: dict[str, Any] = {}
    flatten(job.get("params") or {}, "", params)
    result: dict[str, Any] = {}
    if isinstance(rec.get("result"), dict):
        flatten(rec["result"], "", result)
    elif rec.get("result") is not None:
        result["(value)"] = rec.get("result")
    meta: list[tuple[str, str]] = []
    for k in (
        "script",
        "contract",
        "sweep",
        "name",
        "args",
        "rev",
        "priority",
        "timeout",
        "retries",
        "requires",
        "env",
    ):
        if job.get(k) not in (None, "", [], {}):
            meta.append((k, fmt(job.get(k))))
    for k in ("host", "runner", "device", "python", "python_version", "started", "ended"):
        if rec.get(k) not in (None, ""):
            meta.append((k, fmt_time(rec.get(k)) if k in ("started", "ended") else fmt(rec.get(k))))
    if rec.get("duration") is not None:
        meta.append(("duration", f"{fmt_duration(rec['duration'])} ({fmt(rec['duration'])} s)"))
    for k in ("attempt", "exit_code", "metrics_count", "logs_truncated"):
        if rec.get(k) is not None:
            meta.append((k, fmt(rec.get(k))))
    prov: dict[str, Any] = rec["provenance"] if isinstance(rec.get("provenance"), dict) else {}
    git: dict[str, Any] = prov["git"] if isinstance(prov.get("git"), dict) else {}
    if git.get("commit"):
        meta.append(("commit", fmt(git.get("commit")) + (" (dirty)" if git.get("dirty") else "")))
    provenance: dict[str, Any] = {}
    flatten(prov, "", provenance)
    error: dict[str, Any] | None = rec["error"] if isinstance(rec.get("error"), dict) else None
    if v.result is None and state == "failed":
        error = {"kind": "unknown", "message": "no result.json in the job folder"}
    curves = job_curves(mdf)
    pages = renderer.out / "jobs"
    files = []
    for name in ("job.json", "result.json", "stdout.log", "stderr.log", "metrics.jsonl"):
        p = folder / name
        try:
            size = p.stat().st_size
        except OSError:
            continue
        files.append({"name": name, "href": href(p, pages), "size": size})
    outputs: list[dict[str, Any]] = []
    more_outputs = 0
    odir = folder / "outputs"
    if odir.is_dir():
        for dirpath, dirnames, filenames in os.walk(odir):
            dirnames.sort()
            for fn in sorted(filenames):
                if len(outputs) >= MAX_OUTPUT_FILES:
                    more_outputs += 1
                    continue
                p = Path(dirpath) / fn
                try:
                    size = p.stat().st_size
                except OSError:
                    continue
                outputs.append({"name": p.relative_to(odir).as_posix(), "href": href(p, pages), "size": size})
    sweep_id = None if sweep is None or (isinstance(sweep, float) and sweep != sweep) else str(sweep)
    err_tail = (error or {}).get("stderr_tail")
    stderr = log_tail(folder / "stderr.log")
    renderer.render(
        "job.html.j2",
        pages / f"{jid}.html",
        root="../",
        title=f"job {jid}",
        jid=jid,
        state=state,
        sweep=sweep_id,
        params=[(k, fmt(x)) for k, x in params.items()],
        result=[(k, fmt(x)) for k, x in result.items()],
        error=error,
        meta=meta,
        provenance=[(k, fmt(x)) for k, x in provenance.items()],
        curves=curves,
        stdout=log_tail(folder / "stdout.log"),
        stderr=stderr if stderr is not None else err_tail,
        files=files,
        outputs=outputs,
        more_outputs=more_outputs,
        folder=href(folder, pages) + "/",
    )
