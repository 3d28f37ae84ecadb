"""The per-job pages: params, result, run metadata, provenance, learning curves, log tails and file links.

`job_page` writes one; `render_batch` writes a list of them in a worker process (see `workers`),
with each job's metrics lines handed over as plain columns (no pandas per page).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from report.attempts import timeline
from report.charts.inline_svg import svg_curve
from report.data import flatten, fmt, fmt_duration, fmt_time
from report.render import Renderer, href, log_tail
from spool.jobs import view
from spool.layout import RESULT_FILE, Entry
from spool.notes import NOTES_DIR, read_notes
from spool.states import State
from spool.untrusted import read_json

__all__ = ["MAX_OUTPUT_FILES", "Columns", "job_page", "job_curves", "render_batch"]

MAX_OUTPUT_FILES = 200
JOB_KEYS = (
    "labels",
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
    "after",
)
OWN_FILES = ("job.json", "result.json", "stdout.log", "stderr.log", "metrics.jsonl")
RUN_KEYS = ("host", "runner", "device", "python", "python_version", "started", "ended")

#: a job's metrics lines as columns: {key: [value per line]}
Columns = dict[str, list[Any]]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def job_curves(cols: Columns | None, max_curves: int = 4) -> list[Any]:
    """A job's learning curves as inline SVG: each numeric key logged on at least two lines."""
    if not cols or not cols.get("id"):
        return []
    xkey = "epoch" if any(_num(v) for v in cols.get("epoch", [])) else "step"
    xs = cols.get(xkey) or list(range(len(cols["id"])))
    xlabel = "epoch" if xkey == "epoch" else "step (metrics line)"
    out = []
    for key, values in cols.items():
        if key in ("id", "step", "epoch", "status"):
            continue
        pts = [(x, y) for x, y in zip(xs, values, strict=False) if _num(x) and _num(y)]
        if len(pts) < 2:
            continue
        out.append(svg_curve([p[0] for p in pts], [p[1] for p in pts], title=key, xlabel=xlabel))
        if len(out) >= max_curves:
            break
    return out


def _meta(job: dict[str, Any], rec: dict[str, Any]) -> list[tuple[str, str]]:
    """The page's "Run" table: the job's settings, then where and how it ran."""
    meta = [(k, fmt(job.get(k))) for k in JOB_KEYS if job.get(k) not in (None, "", [], {})]
    for k in RUN_KEYS:
        if rec.get(k) not in (None, ""):
            meta.append((k, fmt_time(rec.get(k)) if k in ("started", "ended") else fmt(rec.get(k))))
    if rec.get("duration") is not None:
        meta.append(("duration", f"{fmt_duration(rec['duration'])} ({fmt(rec['duration'])} s)"))
    for k in ("attempt", "interruptions", "exit_code", "metrics_count", "logs_truncated", "checkpoint_bytes"):
        if rec.get(k) is not None:
            meta.append((k, fmt(rec.get(k))))
    meta += usage_rows(rec.get("usage"))
    prov = rec["provenance"] if isinstance(rec.get("provenance"), dict) else {}
    git = prov["git"] if isinstance(prov.get("git"), dict) else {}
    if git.get("commit"):
        meta.append(("commit", fmt(git.get("commit")) + (" (dirty)" if git.get("dirty") else "")))
    return meta


def _files(folder: Path, pages: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The job folder's own files, its outputs (at most MAX_OUTPUT_FILES) and how many more there are.

    One listing of the folder and of `outputs/` (sizes from the listing's entries), and one
    `relpath` per page: every link is the folder's link plus quoted names."""
    base = href(folder, pages)
    sizes: dict[str, int] = {}
    try:
        with os.scandir(folder) as it:
            for de in it:
                if de.name in OWN_FILES:
                    try:
                        sizes[de.name] = de.stat(follow_symlinks=True).st_size
                    except OSError:
                        continue
    except OSError:
        pass
    files = [{"name": n, "href": f"{base}/{n}", "size": sizes[n]} for n in OWN_FILES if n in sizes]
    outputs: list[dict[str, Any]] = []
    counter = [0]
    _walk_outputs(os.path.join(folder, "outputs"), "", f"{base}/outputs/", outputs, counter)
    return files, outputs, counter[0]


def _walk_outputs(path: str, rel: str, link: str, outputs: list[dict[str, Any]], more: list[int]) -> None:
    """`os.walk`'s order (a folder's files sorted, then its subfolders sorted), from scandir entries."""
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda de: de.name)
    except OSError:
        return
    subdirs = []
    for de in entries:
        try:
            is_dir = de.is_dir()  # follows symlinks, as os.walk's listing does
        except OSError:
            continue
        if is_dir:
            if not de.is_symlink():  # os.walk does not descend into linked folders
                subdirs.append(de)
            continue
        if len(outputs) >= MAX_OUTPUT_FILES:
            more[0] += 1
            continue
        try:
            size = de.stat().st_size
        except OSError:
            continue
        outputs.append({"name": rel + de.name, "href": link + quote(de.name), "size": size})
    for de in subdirs:
        q = quote(de.name)
        _walk_outputs(de.path, f"{rel}{de.name}/", f"{link}{q}/", outputs, more)


def _flat(obj: Any) -> list[tuple[str, str]]:
    out: dict[str, Any] = {}
    flatten(obj, "", out)
    return [(k, fmt(x)) for k, x in out.items()]


def _records(jid: str, state: str, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's result record and its job: from result.json, which holds the job as run; the job
    file is read (and checked) only when the record does not (one read less per page)."""
    try:
        rec = read_json(folder / RESULT_FILE)  # the folder's text, made safe (spool.untrusted)
    except FileNotFoundError:
        if not folder.is_dir():
            raise
        rec = None
    except (OSError, ValueError, RecursionError):
        rec = None
    rec = rec if isinstance(rec, dict) else {}
    if isinstance(rec.get("job"), dict):
        return rec, rec["job"]
    v = view(Entry(jid, State(state), folder), with_result=False)
    return rec, v.job or {}


def job_page(
    renderer: Renderer,
    jid: str,
    state: str,
    sweep: str | None,
    cols: Columns | None,
    has_notes: bool = True,
) -> None:
    """Write `jobs/<jid>.html` from the job's folder (FileNotFoundError if it moved on since the scan).

    `has_notes=False` (its batch's one listing of `notes/` has no folder for it) skips the look."""
    folder = renderer.spool.layout.state_dir(State(state)) / jid
    rec, job = _records(jid, state, folder)
    res = rec.get("result")
    result = _flat(res) if isinstance(res, dict) else ([("(value)", fmt(res))] if res is not None else [])
    moved = rec["result_paths"] if isinstance(rec.get("result_paths"), dict) else {}
    if moved:  # where the files the result names are now (argv4 scripts' absolute paths)
        result = [(k, f"{moved[k]} (now)" if isinstance(moved.get(k), str) else x) for k, x in result]
    error: dict[str, Any] | None = rec["error"] if isinstance(rec.get("error"), dict) else None
    if not rec and state == "failed":
        error = {"kind": "unknown", "message": "no result.json in the job folder"}
    pages = renderer.out / "jobs"
    files, outputs, more_outputs = _files(folder, pages)
    stderr = _tail(folder, "stderr.log", files)
    notes = read_notes(renderer.spool.root, jid) if has_notes else []
    renderer.render(
        "job.html.j2",
        pages / f"{jid}.html",
        root="../",
        title=f"job {jid}",
        jid=jid,
        state=state,
        sweep=sweep,
        params=_flat(job.get("params") or {}),
        result=result,
        error=error,
        meta=_meta(job, rec),
        provenance=_flat(rec["provenance"] if isinstance(rec.get("provenance"), dict) else {}),
        curves=job_curves(cols),
        notes=[(fmt_time(n.get("at")), str(n.get("text", ""))) for n in notes],
        attempts=timeline(rec),
        stdout=_tail(folder, "stdout.log", files),
        stderr=stderr if stderr is not None else (error or {}).get("stderr_tail"),
        files=files,
        outputs=outputs,
        more_outputs=more_outputs,
        folder=href(folder, pages) + "/",
    )


def _tail(folder: Path, name: str, files: list[dict[str, Any]]) -> str | None:
    """A log's tail (`log_tail`); an empty log, as the folder's listing says, is not opened."""
    size = next((f["size"] for f in files if f["name"] == name), None)
    return "" if size == 0 else log_tail(folder / name)


def usage_rows(usage: Any) -> list[tuple[str, str]]:
    """What the run cost, as rows of the Run table."""
    if not isinstance(usage, dict):
        return []
    rows = []
    if usage.get("user_s") is not None:
        rows.append(("CPU", f"{fmt(usage['user_s'])} s user + {fmt(usage.get('sys_s'))} s system"))
    elif usage.get("cpu_s") is not None:
        rows.append(("CPU", f"{fmt(usage['cpu_s'])} s (sampled)"))
    if usage.get("max_rss_mb") is not None:
        rows.append(("peak memory", f"{fmt(usage['max_rss_mb'])} MB (RSS of its process tree)"))
    if usage.get("gpu_mem_mb") is not None:
        rows.append(("peak GPU memory", f"{fmt(usage['gpu_mem_mb'])} MB"))
    return rows


def _load_columns(renderer: Renderer, jid: str, state: str) -> Columns | None:
    """The job's metrics lines, read from its folder where the scan found it."""
    from spool.results import metrics_of

    folder = renderer.spool.layout.state_dir(State(state)) / jid
    m = metrics_of([(jid, str(folder))])
    return {str(c): m[c].tolist() for c in m.columns} if not m.empty else None


_RENDERERS: dict[tuple[str, str, str], Renderer] = {}


def render_batch(
    spool_root: str, out: str, built_at: str, items: list[tuple[str, str, str | None, Columns | None, bool]]
) -> tuple[list[str], list[str]]:
    """Write the pages of `items` (id, state, sweep, metrics columns, whether to read the metrics here).

    Returns the ids written and the ids skipped (moved on since the scan: the next build sees
    where they went). Runs in a worker: the renderer is made once per worker and build.
    """
    ctx = (spool_root, out, built_at)
    renderer = _RENDERERS.get(ctx)
    if renderer is None:
        from spool.api import Spool

        _RENDERERS.clear()
        renderer = _RENDERERS[ctx] = Renderer(Spool(spool_root), Path(out), built_at)
    written, skipped = [], []
    try:  # one listing of notes/ per batch instead of a look per job
        noted: set[str] | None = set(os.listdir(renderer.spool.root / NOTES_DIR))
    except OSError:
        noted = None if (renderer.spool.root / NOTES_DIR).exists() else set()
    for jid, state, sweep, cols, load in items:
        try:
            columns = _load_columns(renderer, jid, state) if load else cols
            job_page(renderer, jid, state, sweep, columns, noted is None or jid in noted)
        except OSError:
            skipped.append(jid)
            continue
        written.append(jid)
    return written, skipped
