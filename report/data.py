"""What the report shows, computed from the results DataFrame: metrics, params, rankings, cells.

No HTML and no matplotlib here: the page modules (`pages`, `jobpages`, `tables`) render, `charts/` draws.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from report.sweepdefs import SweepDef, read_sweep_defs

__all__ = [
    "SweepDef",
    "MetricChoice",
    "read_sweep_defs",
    "choose_metric",
    "numeric_result_columns",
    "varying_params",
    "seed_column",
    "is_numeric",
    "is_log_spaced",
    "fmt",
    "sort_value",
    "rank",
    "config_label",
    "config_keys",
    "Column",
    "table_columns",
    "flatten",
    "fmt_time",
    "fmt_duration",
    "cell",
]

SEED_NAMES = ("param.seed", "param.random_state", "param.random_seed")
_LOSS_RE = re.compile(r"(loss|error|mse|rmse|mae|perplexity)", re.I)


def flatten(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    """Nested dicts to dotted keys (`{"a": {"b": 1}}` under `p.` gives `p.a.b`)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}{k}." if isinstance(v, dict) and v else f"{prefix}{k}", out)
    else:
        out[prefix.rstrip(".")] = obj


# -- columns -----------------------------------------------------------------------------------
def is_numeric(s: pd.Series) -> bool:
    """A real numeric column (bools are categories, not numbers) with at least one value."""
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return False
    return bool(s.notna().any())


def numeric_result_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("result.") and is_numeric(df[c])]


def _nunique(s: pd.Series, dropna: bool = True) -> int:
    try:
        return int(s.nunique(dropna=dropna))
    except TypeError:  # unhashable cells (lists)
        return len({json.dumps(v, sort_keys=True, default=str) for v in (s.dropna() if dropna else s)})


def varying_params(df: pd.DataFrame) -> list[str]:
    """`param.*` columns that differ between rows (absent in some rows counts as differing)."""
    return [c for c in df.columns if c.startswith("param.") and _nunique(df[c], dropna=False) > 1]


def seed_column(df: pd.DataFrame) -> str | None:
    for c in SEED_NAMES:
        if c in df.columns and _nunique(df[c]) > 1:
            return c
    return None


def config_keys(df: pd.DataFrame, params: list[str]) -> pd.Series:
    """One string per row naming its configuration (the params other than the seed)."""
    if not params:
        return pd.Series(["(all)"] * len(df), index=df.index, dtype=object)
    parts = [_fmt_column(df[c]) for c in params]
    keys = parts[0].copy()
    for p in parts[1:]:
        keys = keys + "\x1f" + p
    return keys


def _fmt_column(s: pd.Series) -> pd.Series:
    """`s.map(fmt)`; a numeric or bool column formats each distinct value once (a sweep's
    params take a few values over thousands of rows). Object columns cell by cell: there
    `1`, `1.0` and `True` are equal keys but not the same text."""
    if s.dtype == object:
        return s.map(fmt).astype(object)
    codes, uniques = pd.factorize(s, use_na_sentinel=False)
    labels = np.array([fmt(u) for u in uniques] + [""], dtype=object)
    return pd.Series(labels[codes], index=s.index, dtype=object)


def config_label(key: str, params: list[str]) -> str:
    if not params:
        return "(all)"
    vals = key.split("\x1f")
    return ", ".join(f"{p.removeprefix('param.')}={v}" for p, v in zip(params, vals, strict=False) if v != "")


# -- metric --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricChoice:
    """The column runs are ranked by, and which way is better."""

    column: str
    mode: str  # "max" | "min"
    source: str  # where the choice came from, for the page

    @property
    def label(self) -> str:
        return self.column.removeprefix("result.")

    @property
    def better(self) -> str:
        return "higher is better" if self.mode == "max" else "lower is better"


def default_mode(column: str) -> str:
    return "min" if _LOSS_RE.search(column.removeprefix("result.")) else "max"


def choose_metric(
    df: pd.DataFrame, sweep_def: SweepDef | None, metric: str | None, mode: str | None
) -> MetricChoice | None:
    """`--metric`/`--mode`, else the sweep file's metric, else the first numeric result column."""
    numeric = numeric_result_columns(df)
    column = None
    source = ""
    goal_mode = None
    if metric:
        column = metric if metric.startswith("result.") else f"result.{metric}"
        source = "--metric"
    elif sweep_def is not None and sweep_def.metric is not None:
        m = sweep_def.metric
        name = str(m["name"])
        column = name if name.startswith("result.") else f"result.{name}"
        goal = str(m.get("goal") or "").lower()
        goal_mode = "min" if goal.startswith("min") else ("max" if goal.startswith("max") else None)
        source = "the sweep's metric"
    if column is not None and column not in numeric:
        if metric:  # asked for by name: keep it (the page says it is missing) only if nothing else fits
            source = f"--metric (no numeric column {column!r}; using the default)"
        else:
            source = f"the sweep's metric {column!r} is missing; default"
        column, goal_mode = None, None
    if column is None:
        if not numeric:
            return None
        column = numeric[0]
        source = source or "default: the first numeric result"
    chosen_mode = mode or goal_mode or default_mode(column)
    if mode:
        source += ", --mode"
    return MetricChoice(column, chosen_mode, source)


#: the last `rank`: (frame, metric, ranked); a sweep's charts, page and summary rank the same frame
_LAST_RANK: list[tuple[pd.DataFrame, MetricChoice | None, pd.DataFrame]] = []


def rank(df: pd.DataFrame, metric: MetricChoice | None) -> pd.DataFrame:
    """Best first: done runs with a value by the metric, then the rest by id.

    The same frame (the object, held here so its id is not reused) ranked by the same metric
    again gives the frame ranked last time: frames are not changed in place, and callers must
    not change the ranked one."""
    if _LAST_RANK and _LAST_RANK[0][0] is df and _LAST_RANK[0][1] == metric:
        return _LAST_RANK[0][2]
    ranked = _rank(df, metric)
    _LAST_RANK[:] = [(df, metric, ranked)]
    return ranked


def _rank(df: pd.DataFrame, metric: MetricChoice | None) -> pd.DataFrame:
    if df.empty or metric is None or metric.column not in df.columns:
        return df.sort_values("id", kind="stable") if not df.empty else df
    # the order worked out on arrays and the frame taken once in it (sorting and concatenating
    # frames copied every column five times: 15 ms of a rebuild at 2,000 runs, measured)
    vals = pd.to_numeric(df[metric.column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = (df["state"] == "done").to_numpy(dtype=bool) & np.isfinite(vals)
    ids = df["id"].astype(str).to_numpy(dtype=str)
    good, rest = np.flatnonzero(ok), np.flatnonzero(~ok)
    key = vals[good] if metric.mode == "min" else -vals[good]
    order = np.concatenate([good[np.lexsort((ids[good], key))], rest[np.argsort(ids[rest], kind="stable")]])
    return df.iloc[order]


# -- cells ----------------------------------------------------------------------------------------
def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return isinstance(v, float) and math.isnan(v) or v is pd.NA or v is pd.NaT
    except TypeError:
        return False


def fmt(v: Any) -> str:
    """A value as people read it: 6 significant digits, JSON for lists and dicts, '' for missing."""
    if _missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f == int(f) and abs(f) < 1e15:
            return str(int(f)) if abs(f) >= 1 or f == 0 else f"{f:.6g}"
        return f"{f:.6g}"
    if isinstance(v, str):
        return v
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(timezone.utc)
            return v.strftime("%Y-%m-%d %H:%M:%S UTC")
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, np.datetime64):
        return fmt(pd.Timestamp(v))
    if isinstance(v, np.ndarray):
        v = v.tolist()
    try:
        return json.dumps(v, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(v)


def fmt_time(v: Any) -> str:
    """An ISO timestamp (string or datetime) as `YYYY-MM-DD HH:MM:SS UTC`; other text unchanged."""
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            return v
    return fmt(v)


def sort_value(v: Any) -> str:
    """The `data-v` of a cell: a number where there is one, so the table sorts numerically."""
    if _missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return repr(f) if math.isfinite(f) else ("1e999" if f > 0 else "-1e999")
    if isinstance(v, datetime):
        return v.isoformat()
    return fmt(v)


def fmt_duration(v: Any) -> str:
    if _missing(v):
        return ""
    s = float(v)
    if s < 60:
        return f"{s:.3g} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


# -- log spacing ------------------------------------------------------------------------------------
def is_log_spaced(values: Any) -> bool:
    """True for positive values spanning ≥ 100× whose spread is even in log space, not linear.

    Judged by where the median sits: halfway in log space (0.001, 0.01, 0.1, or log-uniform draws)
    rather than halfway in linear space (1..1000 evenly).
    """
    a = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    a = a[np.isfinite(a)]
    if a.size < 2 or (a <= 0).any():
        return False
    lo, hi = float(a.min()), float(a.max())
    if hi / lo < 100:
        return False
    u = np.unique(a)
    if u.size <= 2:
        return True
    med = float(np.median(u))
    p_lin = (med - lo) / (hi - lo)
    p_log = (math.log(med) - math.log(lo)) / (math.log(hi) - math.log(lo))
    if abs(p_log - 0.5) < abs(p_lin - 0.5):
        return True
    # geometric grids with few points: ratios between neighbours nearly constant
    if u.size <= 12:
        r = np.diff(np.log(u))
        d = np.diff(u)
        return bool(np.std(r) / np.mean(r) < np.std(d) / np.mean(d))
    return False


# -- tables ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    key: str  # DataFrame column, or a pseudo column ("#")
    title: str
    kind: str  # "id", "num", "text", "state", "duration", "rank"


def _has_values(s: pd.Series) -> bool:
    """Some cell is neither missing nor an empty string (columns of other sweeps' results are skipped)."""
    v = s.dropna()
    if v.empty:
        return False
    if pd.api.types.is_numeric_dtype(v):
        return True
    return bool((v.astype(str) != "").any())


def table_columns(
    df: pd.DataFrame, *, params: list[str], metric: MetricChoice | None, with_sweep: bool = False
) -> list[Column]:
    cols = [Column("#", "#", "rank"), Column("id", "job", "id")]
    if with_sweep and "sweep" in df.columns and df["sweep"].notna().any():
        cols.append(Column("sweep", "sweep", "text"))
    if "name" in df.columns and df["name"].notna().any():
        cols.append(Column("name", "name", "text"))
    if with_sweep and "script" in df.columns:
        cols.append(Column("script", "script", "text"))
    cols.append(Column("state", "state", "state"))
    for p in params:
        cols.append(Column(p, p.removeprefix("param."), "num" if is_numeric(df[p]) else "text"))
    for lab in [c for c in df.columns if str(c).startswith("label.") and _has_values(df[c])][:8]:
        cols.append(Column(lab, str(lab), "text"))  # the user's own labels, named as in `results`
    results = [c for c in df.columns if c.startswith("result.") and _has_values(df[c])]
    if metric is not None and metric.column in results:
        results.remove(metric.column)
        results.insert(0, metric.column)
    param_names = {p.removeprefix("param.") for p in params}
    for r in results[:24]:
        name = r.removeprefix("result.")
        title = f"{name} (result)" if name in param_names else name
        cols.append(Column(r, title, "num" if is_numeric(df[r]) else "text"))
    cols.append(Column("host", "host", "text"))
    cols.append(Column("duration", "duration", "duration"))
    for col, title in (("usage.max_rss_mb", "peak MB"), ("usage.gpu_mem_mb", "GPU MB")):
        if col in df.columns and _has_values(df[col]):
            cols.append(Column(col, title, "num"))
    if "attempt" in df.columns and pd.to_numeric(df["attempt"], errors="coerce").fillna(1).gt(1).any():
        cols.append(Column("attempt", "attempt", "num"))
    if "error.kind" in df.columns and df["error.kind"].notna().any():
        cols.append(Column("error.kind", "error", "text"))
    return cols


def cell(col: Column, v: Any) -> tuple[str, str, str]:
    """(text, data-v, kind) of one table cell; kind "n" cells carry a numeric sort key in data-v.

    Text cells sort by their text (the script reads textContent), so they carry no data-v.
    """
    if col.kind == "duration":
        return fmt_duration(v), sort_value(v), "n"
    text = fmt(v)
    if len(text) > 120:
        text = text[:119] + "…"
    if col.kind == "num":
        return text, sort_value(v), "n"
    if col.kind == "state":
        return text, "", "s"
    return text, "", "t"
