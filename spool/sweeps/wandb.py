"""Read a sweep written in the W&B dialect (YAML 1.2 or JSON text) into a `SweepPlan`.

Accepted: `program`, `method` (grid, random, bayes: `spool.sweeps.adaptive_plan`), `parameters`
(nested blocks become dotted names), `run_cap`, `command` (`spool.sweeps.command`), `metric`,
`early_terminate` (hyperband, `spool.sweeps.hyperband`), `controller` (ignored, with a note: the
folder is the sweep's only state), and `name`, `description`, `project`, `entity` (kept, not
used). Any other key is an error naming it and the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from spool.errors import SweepError
from spool.sweeps.adaptive_plan import bayes_block
from spool.sweeps.command import parse_command
from spool.sweeps.expand import Dimension, SweepPlan, expand_points
from spool.sweeps.hyperband import parse_early_terminate
from spool.sweeps.yaml12 import load_yaml12

__all__ = ["plan_from_wandb"]

_TOP_LEVEL = frozenset(
    {
        "program",
        "method",
        "parameters",
        "run_cap",
        "command",
        "metric",
        "name",
        "description",
        "project",
        "entity",
        "early_terminate",
        "controller",
    }
)
CONTROLLER_NOTE = (
    "controller: ignored: housespool has no controller process, the spool folder is the "
    "sweep's only state and every runner serves it"
)
_PARAM_KEYS = frozenset(
    {"value", "values", "probabilities", "distribution", "min", "max", "q", "mu", "sigma"}
)
_RANGE = frozenset({"min", "max"})
_KEYS_FOR: dict[str, frozenset[str]] = {
    "constant": frozenset({"value"}),
    "categorical": frozenset({"values", "probabilities"}),
    **{d: _RANGE for d in ("int_uniform", "uniform", "log_uniform", "log_uniform_values")},
    **{d: _RANGE | {"q"} for d in ("q_uniform", "q_log_uniform", "q_log_uniform_values")},
    "normal": frozenset({"mu", "sigma"}),
    "log_normal": frozenset({"mu", "sigma"}),
    "q_normal": frozenset({"mu", "sigma", "q"}),
    "q_log_normal": frozenset({"mu", "sigma", "q"}),
}
_REQUIRED: dict[str, frozenset[str]] = {
    "constant": frozenset({"value"}),
    "categorical": frozenset({"values"}),
}
_METRIC_IGNORED = frozenset({"target", "impute", "impute_while_running"})


def _load(text: str, filename: str) -> dict[str, Any]:
    if filename.endswith(".py"):
        raise SweepError("Python sweep configs are not read: write the sweep as YAML or JSON", file=filename)
    data: Any = None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if data is None:
        try:
            data = load_yaml12(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or type(err).__name__
            raise SweepError(f"not valid YAML or JSON: {problem}{where}", file=filename)
    if not isinstance(data, dict):
        raise SweepError("a sweep file must hold a mapping of keys", file=filename)
    return data


def _dimension(name: str, spec: Mapping[str, Any]) -> Dimension:
    if "value" in spec and "values" in spec:
        raise SweepError("give either `value` or `values`, not both", field=name)
    dist = spec.get("distribution")
    if dist is None:
        if "value" in spec:
            dist = "constant"
        elif "values" in spec:
            dist = "categorical"
        elif "min" in spec and "max" in spec:
            ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in _RANGE)
            dist = "int_uniform" if ints else "uniform"
        else:
            raise SweepError(
                "cannot tell the distribution: give value, values, min and max, or distribution", field=name
            )
    if dist == "categorical_w_probabilities":
        dist = "categorical"
    if not isinstance(dist, str) or dist not in _KEYS_FOR:
        known = ", ".join(sorted(_KEYS_FOR))
        raise SweepError(f"unknown distribution {dist!r} (supported: {known})", field=name)
    allowed = _KEYS_FOR[dist]
    for key in spec:
        if key != "distribution" and key not in allowed:
            raise SweepError(f"key {key!r} does not apply to distribution {dist!r}", field=name)
    required = _REQUIRED.get(dist, _RANGE if "min" in allowed else frozenset())
    missing = sorted(required - set(spec))
    if missing:
        raise SweepError(f"distribution {dist!r} needs {missing[0]!r}", field=name)
    for key in ("values", "probabilities"):
        if key in spec and not isinstance(spec[key], list):
            raise SweepError(f"`{key}` must be a list", field=name)
    probabilities = spec.get("probabilities")
    return Dimension(
        name,
        dist,
        value=spec.get("value"),
        values=tuple(spec.get("values", ())),
        probabilities=tuple(probabilities) if probabilities is not None else None,
        low=spec.get("min"),
        high=spec.get("max"),
        q=spec.get("q", 1),
        mu=spec.get("mu", 0.0),
        sigma=spec.get("sigma", 1.0),
    )


def _dimensions(spec: Any, prefix: str = "") -> list[Dimension]:
    """Dimensions of a `parameters` block; nested blocks become dotted names."""
    where = prefix[:-1] or "parameters"
    if not isinstance(spec, Mapping) or not spec:
        raise SweepError("`parameters` must be a non-empty mapping (the space is empty)", field=where)
    dims: list[Dimension] = []
    for raw, param in spec.items():
        if not isinstance(raw, str) or not raw:
            raise SweepError(f"parameter names must be strings, got {raw!r}", field=where)
        name = prefix + raw
        if not isinstance(param, Mapping):
            raise SweepError("must be a mapping such as {value: ...} or {values: [...]}", field=name)
        for key in param:
            if key != "parameters" and key not in _PARAM_KEYS:
                raise SweepError(f"unknown parameter key {key!r}", field=name)
        if "parameters" in param:
            if len(param) > 1:
                raise SweepError("a nested `parameters` block cannot have other keys beside it", field=name)
            dims.extend(_dimensions(param["parameters"], name + "."))
        else:
            dims.append(_dimension(name, param))
    return dims


def _metric(metric: Any) -> dict[str, str] | None:
    if metric is None:
        return None
    if not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str):
        raise SweepError("must be a mapping with a `name`", field="metric")
    for key in metric:
        if key not in ("name", "goal") and key not in _METRIC_IGNORED:
            raise SweepError(f"unknown key {key!r} in metric", field=f"metric.{key}")
    goal = metric.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        raise SweepError(f"goal must be minimize or maximize, got {goal!r}", field="metric.goal")
    return {"name": metric["name"], "goal": goal}


def _script(program: str | None, named: str | None) -> str | None:
    """The script: `program`, or the one the command names (they must agree when both are given)."""
    if named is not None and program is not None and named != program:
        raise SweepError(f"names the script {named!r} but program is {program!r}", field="command")
    return program if program is not None else named


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SweepError(f"must be a string, got {value!r}", field=key)
    return value


def _plan(
    data: dict[str, Any], random_n: int | None, sample_seed: int, seeds: int, max_points: int | None
) -> SweepPlan:
    for key in data:
        if key not in _TOP_LEVEL:
            raise SweepError(f"unknown top-level key {key!r}", field=str(key))
    method = data.get("method")
    if method not in ("grid", "random", "bayes"):
        raise SweepError(f"must be grid, random or bayes, got {method!r}", field="method")
    if "parameters" not in data:
        raise SweepError("no `parameters`: the space is empty", field="parameters")
    dims = _dimensions(data["parameters"])
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise SweepError(f"must be an integer >= 1, got {run_cap!r}", field="run_cap")
    command = parse_command(data.get("command"))
    metric = _metric(data.get("metric"))
    program = _script(_optional_str(data, "program"), command.script)
    early = None
    if data.get("early_terminate") is not None:
        early = parse_early_terminate(data["early_terminate"], metric)
    notes = [CONTROLLER_NOTE] if "controller" in data else []
    name, description = _optional_str(data, "name"), _optional_str(data, "description")
    adaptive = None
    if method == "bayes":
        if random_n is not None:
            raise SweepError("a number of random points was given but the method is bayes", field="method")
        adaptive = bayes_block(dims, data.get("metric"), run_cap, sample_seed=sample_seed, seeds=seeds)
        count = None
    elif method == "random":
        count = random_n if random_n is not None else run_cap
        if count is None:
            raise SweepError("a random sweep needs run_cap or a number of points", field="run_cap")
    else:
        if random_n is not None:
            raise SweepError("a number of random points was given but the method is grid", field="method")
        count = run_cap
    points = []
    if adaptive is None:
        points = expand_points(
            dims, method, count=count, seeds=seeds, sample_seed=sample_seed, max_points=max_points
        )
    return SweepPlan(
        script=program,
        method=method,
        points=points,
        seeds=seeds,
        metric=metric,
        args=command.args,
        contract=command.contract,
        definition=data,
        name=name,
        description=description,
        early_terminate=early,
        notes=notes,
        adaptive=adaptive,
    )


def plan_from_wandb(
    text: str,
    filename: str = "<sweep>",
    random_n: int | None = None,
    sample_seed: int = 0,
    seeds: int = 1,
    max_points: int | None = 100_000,
) -> SweepPlan:
    """Plan a sweep from W&B sweep text. `random_n` overrides `run_cap` for random sweeps;
    `run_cap` keeps the first points of a grid; errors name `filename`."""
    data = _load(text, filename)
    try:
        return _plan(data, random_n, sample_seed, seeds, max_points)
    except SweepError as err:
        if err.file is not None:
            raise
        raise SweepError(err.message, file=filename, field=err.field) from None
