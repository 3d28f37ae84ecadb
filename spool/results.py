"""Finished jobs as pandas DataFrames: `load_results` (one row a job) and `load_metrics` (one row a line).

pandas is imported here and nowhere else in `spool`, so `submit`, `status`, `ls` and `show`
never pay for it.

`load_results` columns, in this order:

- `id, sweep, name, script, state, host, device, duration, attempt, interruptions, hosts,
  started, ended, exit_code, error.kind, error.message` — always present, even in an empty
  frame (`interruptions`: times the job's machine or runner went away, not spending a retry;
  `hosts`: the machines its attempts ran on, comma-separated, in order);
- `param.*` — the job's params, nested objects flattened with dots (`param.opt.lr`);
- `label.*` — the job's labels (`spool submit --label group=a`);
- `result.*` — the result object flattened the same way (`result.val.acc`); lists stay lists.
  A path the script returned inside its job folder (an argv4 script's `writePath` output) is
  given where the file is now, under this machine's spool folder;
- `usage.*` — what the run cost: `wall_s`, `user_s`, `sys_s`, `max_rss_mb`, `gpu_mem_mb`;
- `git.commit, git.branch, git.dirty` — when some result.json records `provenance.git`;
- `stopped.band, stopped.threshold, stopped.value, stopped.iteration, ...` — when some job of
  a hyperband sweep was stopped early (NaN in the rows of jobs that ran to their end).

`state` is the folder the job is in (the folder is the truth), as a category of
`done`/`failed`. `started`/`ended` are tz-aware (UTC) datetimes; `duration`, `attempt` and
`exit_code` are numeric (float when some jobs lack them). A failed folder without a readable
result.json still gives a row, from its job.json, with `error.kind` `unknown`.

Pending and claimed jobs are left out: they have no result yet, and `spool ls` / `Spool.jobs()`
list them. Rows are sorted by id.

Speed: one `scandir` per state, one read of result.json per job (it embeds the validated job,
so job.json is read only for a failed folder without one), one `json.loads`, a hand-written
flatten into flat dicts and one DataFrame built from them. No per-row pandas work.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from spool.errors import NotFound, UsageError
from spool.ids import is_valid_id
from spool.layout import JOB_FILE, RESULT_FILE, Layout, is_ignored_name, relocated
from spool.states import State
from spool.untrusted import loads, read_file
from spool.where import Filter

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "load_results",
    "load_metrics",
    "metrics_of",
    "result_rows",
    "results_frame",
    "FIXED_COLUMNS",
    "METRICS_FILE",
]

METRICS_FILE = "metrics.jsonl"

#: the columns every results frame has, in order; `param.*`, `result.*` and `git.*` follow.
FIXED_COLUMNS = (
    "id",
    "sweep",
    "name",
    "script",
    "state",
    "host",
    "device",
    "duration",
    "attempt",
    "interruptions",
    "hosts",
    "started",
    "ended",
    "exit_code",
    "error.kind",
    "error.message",
)
_NUMERIC = ("duration", "attempt", "interruptions", "exit_code")
_TIMES = ("started", "ended")
_GIT_KEYS = ("commit", "branch", "dirty")
_STATES = {None: (State.DONE, State.FAILED), "done": (State.DONE,), "failed": (State.FAILED,)}


def _read(path: str) -> bytes | None:
    """A whole regular file (see `spool.untrusted.read_file`); None if it cannot be read."""
    try:
        return read_file(path)
    except OSError:
        return None


def _load_dict(path: str) -> dict[str, Any] | None:
    raw = _read(path)
    if raw is None:
        return None
    try:
        obj = loads(raw)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _flatten_into(row: dict[str, Any], prefix: str, obj: dict[str, Any]) -> None:
    """`row[prefix + "a.b"] = obj["a"]["b"]`; lists and scalars are leaves, empty objects vanish."""
    for key, value in obj.items():
        if type(value) is dict:
            _flatten_into(row, f"{prefix}{key}.", value)
        else:
            row[prefix + key] = value


def _job_from_file(folder: str) -> dict[str, Any] | None:
    """The validated job of a folder without a usable result.json (None if there is no job.json)."""
    raw = _read(os.path.join(folder, JOB_FILE))
    if raw is None:
        return None
    from spool.errors import SpoolError
    from spool.model import parse_job

    try:
        return parse_job(raw, env_allow=None).model_dump(mode="json")
    except SpoolError:
        try:
            data = loads(raw)
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}


def _scan(
    layout: Layout, states: tuple[State, ...], member: re.Pattern[str] | None
) -> list[tuple[str, str, str]]:
    """`(id, state, folder)` of every job folder in `states`, by one scandir each, sorted by id."""
    found: list[tuple[str, str, str]] = []
    for state in states:
        try:
            it = os.scandir(layout.state_dir(state))
        except FileNotFoundError:
            continue
        with it:
            for de in it:
                name = de.name
                if is_ignored_name(name) or not is_valid_id(name):
                    continue
                if member is not None and not member.match(name):
                    continue
                try:
                    if not de.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                found.append((name, state.value, de.path))
    found.sort()
    return found


def _sweep_pattern(sweep: str) -> re.Pattern[str]:
    return re.compile(re.escape(sweep) + r"-\d{5}\Z")


def _sweep_exists(layout: Layout, sweep: str) -> bool:
    return is_valid_id(sweep) and (layout.sweeps / f"{sweep}.yaml").is_file()


def _ordered_columns(fixed: tuple[str, ...], seen: dict[str, None], groups: tuple[str, ...]) -> list[str]:
    """The fixed columns, then the other keys grouped by prefix (first-seen order within a group)."""
    cols = list(fixed)
    fixed_set = set(fixed)
    rest = [k for k in seen if k not in fixed_set]
    for prefix in groups:
        cols += [k for k in rest if k.startswith(prefix)]
    placed = set(cols)
    cols += [k for k in rest if k not in placed]
    return cols


def _hosts(rec: dict[str, Any]) -> str | None:
    hosts = rec.get("hosts")
    if type(hosts) is list and hosts:
        return ", ".join(str(h) for h in hosts)
    host = rec.get("host")
    return str(host) if host is not None else None


def _rows(
    found: list[tuple[str, str, str]], sweep: str | None, root: str = ""
) -> tuple[list[dict[str, Any]], dict[str, None]]:
    rows: list[dict[str, Any]] = []
    seen: dict[str, None] = dict.fromkeys(FIXED_COLUMNS)
    last_keys: Any = None
    for job_id, state, folder in found:
        rec = _load_dict(os.path.join(folder, RESULT_FILE))
        if rec is None:
            job = _job_from_file(folder)
            if job is None:
                continue  # no job.json either: the folder moved on (a retry) or is not a job
            if state == "failed":
                error: Any = {"kind": "unknown", "message": "no readable result.json"}
            else:
                error = None
            rec = {"job": job, "error": error}
        job = rec.get("job")
        if type(job) is not dict:
            job = {}
        if sweep is not None and job.get("sweep") != sweep:
            continue
        err = rec.get("error")
        if type(err) is not dict:
            err = {}
        row: dict[str, Any] = {
            "id": job_id,
            "sweep": job.get("sweep"),
            "name": job.get("name"),
            "script": job.get("script"),
            "state": state,
            "host": rec.get("host"),
            "device": rec.get("device"),
            "duration": rec.get("duration"),
            "attempt": rec.get("attempt"),
            "interruptions": rec.get("interruptions", 0),
            "hosts": _hosts(rec),
            "started": rec.get("started"),
            "ended": rec.get("ended"),
            "exit_code": rec.get("exit_code"),
            "error.kind": err.get("kind"),
            "error.message": err.get("message"),
        }
        params = job.get("params")
        if type(params) is dict and params:
            _flatten_into(row, "param.", params)
        labels = job.get("labels")
        if type(labels) is dict and labels:
            _flatten_into(row, "label.", labels)
        result = rec.get("result")
        if type(result) is dict:
            _flatten_into(row, "result.", result)
            moved = rec.get("result_paths")
            if type(moved) is dict:
                for key, rel in moved.items():
                    if "result." + key in row and type(rel) is str:
                        row["result." + key] = relocated(root, folder, rel)
        elif result is not None:
            row["result.value"] = result
        stop = rec.get("early_terminate")
        if rec.get("stopped") is True and type(stop) is dict:  # stopped early (hyperband)
            _flatten_into(row, "stopped.", stop)
        usage = rec.get("usage")
        if type(usage) is dict:
            _flatten_into(row, "usage.", usage)
        prov = rec.get("provenance")
        if type(prov) is dict:
            git = prov.get("git")
            if type(git) is dict:
                for key in _GIT_KEYS:
                    row["git." + key] = git.get(key)
        keys = row.keys()
        if keys != last_keys:  # most jobs of a sweep have the same keys: skip the per-key walk
            for key in keys:
                if key not in seen:
                    seen[key] = None
            last_keys = keys
        rows.append(row)
    return rows, seen


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    # pandas < 2 has no format="ISO8601" (it would coerce every value to NaT): infer there instead
    iso: dict[str, Any] = {"format": "ISO8601"} if int(pd.__version__.split(".")[0]) >= 2 else {}
    for col in _TIMES:
        df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", **iso)
    for col in _NUMERIC:
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["state"] = pd.Categorical(df["state"], categories=["done", "failed"])
    return df


def load_results(
    layout: Layout,
    sweep: str | None = None,
    state: str | None = "done",
    where: str | list[str] | None = None,
) -> pd.DataFrame:
    """One row per finished job (`state`: "done", "failed", or None for both), sorted by id.

    `sweep` keeps the jobs named `<sweep>-<5 digits>` whose job says `"sweep": sweep`; a sweep
    with no definition in `sweeps/` and no such jobs is `NotFound`. `where` keeps the rows that
    match every expression (`spool.where`); its columns are checked against the rows found.
    """

    key = state.value if isinstance(state, State) else state
    if key not in _STATES:
        raise UsageError(f"state must be 'done', 'failed' or None (both), not {state!r}")
    member = _sweep_pattern(sweep) if sweep is not None else None
    filt = Filter(where)  # parsed before any file is read: a typo costs nothing
    found = _scan(layout, _STATES[key], member)
    rows, seen = _rows(found, sweep, str(layout.root))
    if sweep is not None and not rows and not _sweep_exists(layout, sweep):
        raise NotFound(f"no sweep {sweep!r} in {layout.root}")
    if filt and rows:
        rows = [rows[i] for i in filt.rows(rows, list(seen))]
    return _frame(rows, seen)


def _frame(rows: list[dict[str, Any]], seen: dict[str, None]) -> pd.DataFrame:
    import pandas as pd

    columns = _ordered_columns(
        FIXED_COLUMNS, seen, ("param.", "label.", "result.", "usage.", "git.", "stopped.")
    )
    df = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame({c: [] for c in columns}, dtype=object)
    return _typed(df)


def result_rows(
    layout: Layout, found: list[tuple[str, str, str]], sweep: str | None = None
) -> dict[str, dict[str, Any]]:
    """The row of each `(id, state, folder)` that has one, by id, as `load_results` makes it
    (`sweep`: only jobs whose job says so), for a reader that keeps rows between reads."""
    rows, _ = _rows(found, sweep, str(layout.root))
    return {row["id"]: row for row in rows}


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows from `result_rows` (sorted by id) as the frame `load_results` gives for them."""
    seen: dict[str, None] = dict.fromkeys(FIXED_COLUMNS)
    last_keys: Any = None
    for row in rows:
        keys = row.keys()
        if keys != last_keys:
            for key in keys:
                if key not in seen:
                    seen[key] = None
            last_keys = keys
    return _frame(rows, seen)


def _metric_rows(job_id: str, folder: str, rows: list[dict[str, Any]], seen: dict[str, None]) -> None:
    raw = _read(os.path.join(folder, METRICS_FILE))
    if not raw:
        return
    for step, line in enumerate(raw.splitlines()):
        try:
            rec = loads(line)
        except (ValueError, RecursionError):
            continue  # blank, or a line still being written
        if type(rec) is not dict:
            continue
        flat: dict[str, Any] = {}
        _flatten_into(flat, "", rec)
        row: dict[str, Any] = {"id": job_id, "step": step}
        for key, value in flat.items():
            row[f"metric.{key}" if key in ("id", "step") else key] = value
        for key in row:
            if key not in seen:
                seen[key] = None
        rows.append(row)


def load_metrics(layout: Layout, job_or_sweep: str) -> pd.DataFrame:
    """Every metrics.jsonl line of a job, or of every job of a sweep: one row a line.

    Columns: `id`, `step` (the 0-based line index in the job's metrics.jsonl), then the
    record's keys flattened with dots. A record's own `id` or `step` key is kept as
    `metric.id` / `metric.step`. Only the current attempt's file is read (earlier attempts
    stay in `attempts/<n>/`); a running job gives the lines written so far, a pending one none.
    """

    entry = layout.find(job_or_sweep)
    targets: list[tuple[str, str]] = []
    if entry is not None:
        if entry.is_folder:
            targets.append((entry.id, str(entry.path)))
    else:
        member = _sweep_pattern(job_or_sweep)
        states = (State.CLAIMED, State.DONE, State.FAILED)
        candidates: list[tuple[str, str]] = []
        for st in states:
            for e in layout.entries(st):
                if member.match(e.id):
                    candidates.append((e.id, str(e.path)))
        for job_id, folder in sorted(candidates):
            job = _load_dict(os.path.join(folder, JOB_FILE))
            if job is not None and job.get("sweep") == job_or_sweep:
                targets.append((job_id, folder))
        if not targets and not _sweep_exists(layout, job_or_sweep):
            raise NotFound(f"no job or sweep {job_or_sweep!r} in {layout.root}")
    return metrics_of(targets)


def metrics_of(targets: list[tuple[str, str]]) -> pd.DataFrame:
    """The metrics lines of these `(job id, job folder)`s, in that order, as `load_metrics`
    gives them (for a reader that knows its jobs' folders already: no look-up, no job.json)."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    seen: dict[str, None] = dict.fromkeys(("id", "step"))
    for job_id, folder in targets:
        _metric_rows(job_id, folder, rows, seen)
    if not rows:
        return pd.DataFrame({"id": pd.Series([], dtype=object), "step": pd.Series([], dtype="int64")})
    return pd.DataFrame(rows, columns=list(seen))
