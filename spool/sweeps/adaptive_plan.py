"""Checking a `method: bayes` definition (from a W&B file or from flags) into the `adaptive`
block a sweep's definition keeps: the metric with W&B's defaults, run_cap, the sample seed,
how many points to keep queued, and the space (one entry per dimension)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from spool.errors import SweepError
from spool.sweeps.encoding import Space
from spool.sweeps.expand import Dimension, SweepPlan, dims_from_flags

__all__ = ["bayes_block", "bayes_metric", "plan_bayes_from_flags"]

_IMPUTE = ("worst", "best", "latest")
_METRIC_KEYS = frozenset({"name", "goal", "target", "impute", "impute_while_running"})
_GOALS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}


def bayes_metric(metric: Any) -> dict[str, Any]:
    """The metric block, checked, with W&B's defaults (goal minimize, impute worst,
    impute_while_running false)."""
    if metric is None:
        raise SweepError("method bayes needs a metric: {name: ..., goal: minimize|maximize}", field="metric")
    if not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str) or not metric["name"]:
        raise SweepError("must be a mapping with a `name`", field="metric")
    for key in metric:
        if key not in _METRIC_KEYS:
            raise SweepError(f"unknown key {key!r} in metric", field=f"metric.{key}")
    goal = metric.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        raise SweepError(f"goal must be minimize or maximize, got {goal!r}", field="metric.goal")
    impute = metric.get("impute", "worst")
    if impute not in _IMPUTE:
        raise SweepError(f"must be one of {', '.join(_IMPUTE)}, got {impute!r}", field="metric.impute")
    running = metric.get("impute_while_running", "false")
    if running is False:
        running = "false"
    if running not in ("false", *_IMPUTE):
        raise SweepError(
            f"must be false, worst, best or latest, got {running!r}", field="metric.impute_while_running"
        )
    target = metric.get("target")
    if target is not None and (
        isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target)
    ):
        raise SweepError(f"must be a number, got {target!r}", field="metric.target")
    out: dict[str, Any] = {"name": metric["name"], "goal": goal, "impute": impute}
    out["impute_while_running"] = None if running == "false" else running
    out["target"] = target
    return out


def _dim_dict(d: Dimension) -> dict[str, Any]:
    spec = dataclasses.asdict(d)
    spec["values"] = list(d.values)
    spec["probabilities"] = list(d.probabilities) if d.probabilities is not None else None
    return spec


def bayes_block(
    dims: Sequence[Dimension],
    metric: Any,
    run_cap: int | None,
    *,
    sample_seed: int,
    seeds: int = 1,
    queue: int = 1,
) -> dict[str, Any]:
    """The `adaptive` block of a bayes sweep's definition; SweepError naming the field."""
    if seeds != 1:
        raise SweepError("--seeds does not apply to a bayes sweep (each point is chosen once)", field="seeds")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise SweepError(f"must be an integer >= 1, got {run_cap!r}", field="run_cap")
    if not isinstance(queue, int) or isinstance(queue, bool) or queue < 1:
        raise SweepError(f"must be an integer >= 1, got {queue!r}", field="queue")
    Space(dims)  # at least one searched dimension
    return {
        "method": "bayes",
        "metric": bayes_metric(metric),
        "run_cap": run_cap,
        "sample_seed": sample_seed,
        "queue": queue,
        "space": [_dim_dict(d) for d in dims],
    }


def plan_bayes_from_flags(
    script: str,
    flags: dict[str, list[str]],
    fixed: dict[str, Any],
    *,
    metric: str | None,
    goal: str,
    run_cap: int | None,
    sample_seed: int,
    seeds: int = 1,
    target: float | None = None,
) -> SweepPlan:
    """`spool sweep SCRIPT --method bayes --metric NAME --goal min|max --run-cap N` with the
    distribution flags (`--grid`/`--choice` values are categories)."""
    dims, parameters = dims_from_flags(
        flags.get("grid", []),
        flags.get("uniform", []),
        flags.get("log_uniform", []),
        flags.get("int_uniform", []),
        flags.get("choice", []),
        ranges=True,
    )
    dims += [Dimension(k, "constant", value=v) for k, v in fixed.items()]
    parameters.update({k: {"value": v} for k, v in fixed.items()})
    if metric is None:
        raise SweepError("--method bayes needs --metric NAME (and --goal min|max)", field="--metric")
    wb_metric: dict[str, Any] = {"name": metric, "goal": _GOALS.get(goal, goal)}
    if target is not None:
        wb_metric["target"] = target
    block = bayes_block(dims, wb_metric, run_cap, sample_seed=sample_seed, seeds=seeds)
    definition: dict[str, Any] = {
        "program": script,
        "method": "bayes",
        "metric": wb_metric,
        "parameters": parameters,
    }
    if run_cap is not None:
        definition["run_cap"] = run_cap
    return SweepPlan(
        script=script,
        method="bayes",
        points=[],
        metric={"name": metric, "goal": wb_metric["goal"]},
        definition=definition,
        adaptive=block,
    )
