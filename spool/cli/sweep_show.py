"""`spool show SWEEP`: a sweep's summary for people (`--json` prints `sweep_view` as it is)."""

from __future__ import annotations

import re
from typing import Any

from spool.cli.output import compact, print_table

__all__ = ["print_sweep"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # a sweep file's text never drives the terminal


def _text(value: Any, width: int) -> str:
    return _CONTROL.sub("?", compact(value, width))


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.6g}" if isinstance(x, float) else str(x)


def _hyperband(hb: dict[str, Any]) -> None:
    form = f"max_iter {hb['max_iter']}, s {hb['s']}" if "max_iter" in hb else f"min_iter {hb['min_iter']}"
    strict = "strict (the value at the band)" if hb.get("strict") else "not strict (the best so far)"
    print(f"  hyperband: {form}, eta {_num(hb.get('eta'))}, {strict}")
    rows = [
        [b["band"], _num(b["threshold"]), b["reached"], len(b["stopped"]), " ".join(b["stopped"])]
        for b in hb["bands"]
    ]
    print_table(rows, ["  BAND", "THRESHOLD", "REACHED", "STOPPED", "STOPPED RUNS"])
    for run in hb["runs"]:
        stop = run.get("stopped")
        if stop is not None:
            print(
                f"  {run['id']} stopped at band {_num(stop.get('band'))}: {_num(stop.get('value'))} "
                f"against threshold {_num(stop.get('threshold'))} (iteration {_num(stop.get('iteration'))})"
            )
        elif run["state"] == "claimed":
            where = f"band {run['band']}" if run.get("band") is not None else "no band yet"
            print(f"  {run['id']} running: iteration {run['iteration']}, {where}")


def _bayes(view: dict[str, Any]) -> None:
    state = "open" if view["open"] else f"closed ({view['closed_because']})"
    cap = view["run_cap"] if view["run_cap"] is not None else "none"
    queued, seed = view["queue"], view["sample_seed"]
    print(f"  bayes: {state}, run_cap {cap}, {queued} point(s) kept queued, sample seed {seed}")
    rows = [
        [
            r["slot"],
            r["state"],
            r["method"] or "-",
            r["results"],
            _num(r["predicted_mean"]),
            _num(r["predicted_std"]),
            _num(r["acquisition"]),
            _num(r["value"]),
            _num(r["best_so_far"]),
            compact(" ".join(f"{k}={v!r}" for k, v in (r["point"] or {}).items()), 80),
        ]
        for r in view["slots"]
    ]
    print_table(rows, ["  SLOT", "STATE", "HOW", "FROM", "MEAN", "SPREAD", "ACQ", "VALUE", "BEST", "POINT"])


def print_sweep(view: dict[str, Any]) -> None:
    """The summary lines, then the hyperband table when the sweep has one."""
    name = f"  {_text(view['name'], 40)}" if view.get("name") else ""
    print(f"sweep {view['id']}{name}  {_text(view.get('script'), 60)}  {_text(view.get('method'), 20)}")
    jobs = "  ".join(f"{k} {v}" for k, v in view["jobs"].items() if v)
    print(f"  jobs: {jobs or 'none'} (of {view.get('count')} points)")
    metric = view.get("metric")
    if isinstance(metric, dict):
        print(f"  metric: {_text(metric.get('name'), 60)} ({_text(metric.get('goal'), 10)})")
    if "bayes" in view:
        _bayes(view["bayes"])
    if "hyperband" in view:
        _hyperband(view["hyperband"])
