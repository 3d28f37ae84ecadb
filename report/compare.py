"""The data the sweep page's compare view reads: each run's parameters, results and metrics lines.

Embedded in the page as `<script type="application/json" id="runs-data">` (data, never run:
the page's Content-Security-Policy allows only `static/report.js`), so ticking runs in the
table compares them in the browser, offline, with nothing fetched. Each run keeps at most
`MAX_KEYS` numeric metrics keys and `MAX_POINTS` lines of each (evenly thinned beyond). Cached per job
key like the table rows (`tables`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from report.charts.spec import script_escape
from report.data import fmt
from report.incremental import JobKey, sig_hash
from report.jsoncache import keep_entries, read_json
from report.metrics_cache import MetricsIndex

__all__ = ["MAX_KEYS", "MAX_POINTS", "runs_json"]

MAX_KEYS = 6
MAX_POINTS = 400  #: lines per run and key kept (evenly thinned beyond)
_SKIP = {"id", "step", "epoch", "status"}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _curves(cols: dict[str, list[Any]] | None) -> dict[str, Any]:
    if not cols or not cols.get("id"):
        return {}
    xkey = "epoch" if any(_num(v) for v in cols.get("epoch", [])) else "step"
    xs = cols.get(xkey) or list(range(len(cols["id"])))
    curves: dict[str, Any] = {}
    for key, values in cols.items():
        if key in _SKIP:
            continue
        pts = [(x, y) for x, y in zip(xs, values, strict=False) if _num(x) and _num(y)]
        if len(pts) < 2:
            continue
        if len(pts) > MAX_POINTS:
            step = len(pts) / MAX_POINTS
            pts = [pts[int(i * step)] for i in range(MAX_POINTS)] + [pts[-1]]
        curves[key] = [[p[0] for p in pts], [p[1] for p in pts]]
        if len(curves) >= MAX_KEYS:
            break
    return {"x": "epoch" if xkey == "epoch" else "step", "curves": curves} if curves else {}


def _run(rec: dict[Any, Any], params: list[str], results: list[str], metrics: MetricsIndex | None) -> str:
    jid = str(rec["id"])
    run = {
        "id": jid,
        "state": fmt(rec.get("state")),
        "params": {p.removeprefix("param."): fmt(rec.get(p)) for p in params},
        "result": {r.removeprefix("result."): fmt(rec.get(r)) for r in results if fmt(rec.get(r)) != ""},
    }
    run.update(_curves(metrics.columns(jid) if metrics is not None else None))
    return script_escape(json.dumps(run, separators=(",", ":"), allow_nan=False))


def runs_json(
    out: Path,
    sid: str,
    sub: pd.DataFrame,
    params: list[str],
    metrics: MetricsIndex | None,
    job_key: dict[str, JobKey | None],
) -> Markup:
    """The runs of a sweep for the compare view, as JSON safe to place inside a `<script>` element.

    Each run's JSON is kept in `.cache/runs-<sweep>.json` under its job's key (and the sweep's
    columns), so a rebuild after one new job encodes one run, not the whole sweep; the file is
    rewritten when that pays (`jsoncache.worth_rewriting`).
    """
    # this sweep's own result columns: a frame of the whole spool (a full build) also has other
    # sweeps' columns, empty here, and they would change the cache's column hash
    results = [c for c in sub.columns if c.startswith("result.") and sub[c].notna().any()][:24]
    cols = ["id", "state", *params, *results]
    path = out / ".cache" / f"runs-{sid}.json"
    col_sig = sig_hash(cols, MAX_KEYS, MAX_POINTS)
    try:
        doc = read_json(path)
        cached: dict[str, Any] = doc["runs"] if doc.get("cols") == col_sig else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        cached = {}
    ids = sub["id"].astype(str).tolist()
    parts: list[str | None] = []
    missing = []
    for i, jid in enumerate(ids):
        k, hit = job_key.get(jid), cached.get(jid)
        if k is not None and isinstance(hit, list) and len(hit) == 2 and hit[0] == list(k):
            parts.append(str(hit[1]))
        else:
            parts.append(None)
            missing.append(i)
    if missing:
        recs = sub.iloc[missing][[c for c in cols if c in sub.columns]].to_dict("records")
        for i, rec in zip(missing, recs, strict=True):
            parts[i] = _run(rec, params, results, metrics)
    def entries() -> dict[str, Any]:
        keyed = zip(ids, parts, strict=True)
        return {jid: [list(k), text] for jid, text in keyed if (k := job_key.get(jid)) is not None}

    keep_entries(path, col_sig, "runs", entries, len(missing), bool(cached) or not ids)
    return Markup('{"runs":[' + ",".join(t or "{}" for t in parts) + "]}")
