"""`spool results`: finished jobs as a table, CSV or JSON (pandas is imported only when it runs)."""

from __future__ import annotations

import argparse
import fnmatch
import math
import sys
from typing import TYPE_CHECKING, Any

from spool.cli.output import compact, print_table
from spool.errors import UsageError
from spool.where import resolve_column

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register", "resolve_column", "default_columns"]


def _select(spec: str, columns: list[str]) -> list[str]:
    """`--cols a,b,param.*`: names (full or short) and glob patterns, in the order given."""
    chosen: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if any(ch in item for ch in "*?["):
            matched = [c for c in columns if fnmatch.fnmatchcase(c, item)]
            if not matched:
                raise UsageError(f"no column matches {item!r} for --cols; available: {', '.join(columns)}")
        else:
            matched = [resolve_column(item, columns, "--cols")]
        chosen += [c for c in matched if c not in chosen]
    if not chosen:
        raise UsageError("--cols names no columns")
    return chosen


def default_columns(df: pd.DataFrame) -> list[str]:
    """For people: id, state, params, results, host, duration (and the error when some job failed)."""
    cols = [str(c) for c in df.columns]
    out = ["id", "state"]
    out += [c for c in cols if c.startswith("param.")]
    out += [c for c in cols if c.startswith("label.")]
    out += [c for c in cols if c.startswith("result.")]
    out += ["host", "duration"]
    out += [c for c in ("usage.max_rss_mb", "usage.user_s") if c in cols]
    if (df["state"] == "failed").any():
        out += ["error.kind", "error.message"]
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):  # a Timestamp; NaT is not a value
        import pandas as pd

        return "" if value is pd.NaT else value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, int):
        return str(value)
    try:
        if value != value:  # pandas NA / NaN-likes
            return ""
    except (TypeError, ValueError):
        pass
    return compact(value, 200)


def _sorted(df: pd.DataFrame, col: str, desc: bool) -> pd.DataFrame:
    try:
        return df.sort_values(col, ascending=not desc, na_position="last", kind="stable")
    except TypeError:  # mixed types in one column: compare their text
        return df.sort_values(
            col,
            ascending=not desc,
            na_position="last",
            kind="stable",
            key=lambda s: s.map(lambda v: "" if v is None else str(v)),
        )


def cmd_results(args: argparse.Namespace) -> int:
    from spool.api import Spool

    if args.failed and args.all:
        raise UsageError("give --failed or --all, not both")
    if args.csv and args.json:
        raise UsageError("give --csv or --json, not both")
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    state = None if args.all else "failed" if args.failed else "done"
    df = Spool(args.spool).results(sweep=args.sweep, state=state, where=args.where)
    columns = [str(c) for c in df.columns]
    if args.sort:
        df = _sorted(df, resolve_column(args.sort, columns, "--sort"), args.desc)
    elif args.desc:
        df = df.iloc[::-1]
    if args.cols:
        cols = _select(args.cols, columns)
    elif args.csv or args.json:
        cols = columns
    else:
        cols = default_columns(df)
    if args.limit is not None:
        df = df.head(args.limit)
    df = df[cols]
    if args.csv:
        from spool.csvsafe import to_csv

        sys.stdout.write(to_csv(df))
        return 0
    if args.json:
        sys.stdout.write(
            df.to_json(orient="records", date_format="iso", date_unit="us", double_precision=15, indent=2)
            + "\n"
        )
        return 0
    if df.empty:
        what = {"done": "finished", "failed": "failed", None: "finished or failed"}[state]
        print(f"no {what} jobs" + (f" in sweep {args.sweep}" if args.sweep else ""))
        return 0
    cells = [[_cell(v) for v in df[c].tolist()] for c in cols]
    headers = [_short(c) if _unique_short(c, cols) else c for c in cols]
    print_table([list(r) for r in zip(*cells, strict=True)], headers)
    return 0


def _short(col: str) -> str:
    return col.removeprefix("result.").removeprefix("param.")


def _unique_short(col: str, cols: list[str]) -> bool:
    """Headers drop `param.`/`result.` where the short name stays unambiguous."""
    short = _short(col)
    return short != col and sum(1 for c in cols if c == short or _short(c) == short) == 1


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "results",
        help="finished jobs as a table (params and results as columns), CSV or JSON",
        description="One row per finished job. Columns: id, sweep, name, script, state, host, device, "
        "duration, attempt, started, ended, exit_code, error.kind, error.message, param.*, "
        "label.*, result.*, usage.*, git.*. Column names may be given short (val_acc for result.val_acc).",
    )
    common(p)
    p.add_argument("--sweep", metavar="ID", help="only the jobs of this sweep")
    p.add_argument("--failed", action="store_true", help="failed jobs instead of done ones")
    p.add_argument("--all", action="store_true", help="done and failed jobs")
    p.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="only rows where EXPR holds, e.g. 'param.lr < 0.01', 'label.group == a', "
        "'model in [rf, svm] and accuracy >= 0.9'; repeatable (all must hold)",
    )
    p.add_argument("--sort", metavar="COL", help="sort by this column (missing values last)")
    p.add_argument("--desc", action="store_true", help="descending order")
    p.add_argument(
        "--cols", metavar="C1,C2,...", help="these columns: names, short names or globs ('param.*')"
    )
    p.add_argument("--limit", type=int, metavar="N", help="at most N rows (after sorting)")
    p.add_argument("--csv", action="store_true", help="CSV on stdout (every column unless --cols)")
    p.set_defaults(func=cmd_results)
