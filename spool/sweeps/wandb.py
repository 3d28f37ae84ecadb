"""Read a sweep written in the W&B dialect (YAML or JSON text) into a `SweepPlan`.

Accepted as DESIGN.md lists them: `program`, `method` (grid, random), `parameters`, `run_cap`,
`command`, `metric`, and `name`, `description`, `project`, `entity`. `bayes` and
`early_terminate` are refused by name; any other key is an error naming it and the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from spool.errors import SweepError
from spool.sweeps.expand import Dimension, SweepPlan, expand_points

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
    }
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
_PARAM_MACROS = {"${args}": "flags", "${args_json}": "json", "${args_json_file}": "json"}
_INTERPRETER_RE = re.compile(r"^(env|python[0-9.]*(\.exe)?)$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`), as W&B users write it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


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
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
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


def _command(command: Any) -> tuple[list[str], str]:
    """Fixed words after `${program}` and the contract the params macro asks for."""
    if command is None:
        return [], "flags"
    if not isinstance(command, list) or not command:
        raise SweepError("must be a list of words", field="command")
    args: list[str] = []
    contracts: list[str] = []
    seen_program = False
    for raw in command:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise SweepError(f"words must be strings, got {raw!r}", field="command")
        word = str(raw)
        if word in ("${env}", "${interpreter}"):
            if seen_program:
                raise SweepError(f"{word} must come before ${{program}}", field="command")
        elif word == "${program}":
            if seen_program:
                raise SweepError("${program} appears twice", field="command")
            seen_program = True
        elif word == "${args_no_hyphens}":
            raise SweepError(
                "${args_no_hyphens} (Hydra-style key=value words) is not supported: parameters reach "
                "a script as flags (${args}) or as JSON (${args_json}, ${args_json_file})",
                field="command",
            )
        elif word in _PARAM_MACROS:
            if not seen_program:
                raise SweepError(f"{word} must come after ${{program}}", field="command")
            contracts.append(_PARAM_MACROS[word])
        elif "${" in word:
            raise SweepError(f"unsupported macro in {word!r}", field="command")
        elif not seen_program:
            if not _INTERPRETER_RE.match(word.rsplit("/", 1)[-1]):
                raise SweepError(
                    f"{word!r} before ${{program}} is not supported: the runner starts the script "
                    "with its own Python",
                    field="command",
                )
        else:
            args.append(word)
    if not seen_program:
        raise SweepError("has no ${program}", field="command")
    if len(contracts) > 1:
        raise SweepError("passes the parameters more than once", field="command")
    # No params macro: the script does not take them as flags; JSON on stdin is harmless.
    return args, contracts[0] if contracts else "json"


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


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SweepError(f"must be a string, got {value!r}", field=key)
    return value


def _plan(
    data: dict[str, Any], random_n: int | None, sample_seed: int, seeds: int, max_points: int | None
) -> SweepPlan:
    if "early_terminate" in data:
        raise SweepError(
            "early_terminate is not supported until adaptive sweeps exist", field="early_terminate"
        )
    for key in data:
        if key not in _TOP_LEVEL:
            raise SweepError(f"unknown top-level key {key!r}", field=str(key))
    method = data.get("method")
    if method == "bayes":
        raise SweepError("method bayes is not supported until adaptive sweeps exist", field="method")
    if method not in ("grid", "random"):
        raise SweepError(f"must be grid or random, got {method!r}", field="method")
    if "parameters" not in data:
        raise SweepError("no `parameters`: the space is empty", field="parameters")
    dims = _dimensions(data["parameters"])
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise SweepError(f"must be an integer >= 1, got {run_cap!r}", field="run_cap")
    args, contract = _command(data.get("command"))
    metric = _metric(data.get("metric"))
    program = _optional_str(data, "program")
    name, description = _optional_str(data, "name"), _optional_str(data, "description")
    if method == "random":
        count = random_n if random_n is not None else run_cap
        if count is None:
            raise SweepError("a random sweep needs run_cap or a number of points", field="run_cap")
    else:
        if random_n is not None:
            raise SweepError("a number of random points was given but the method is grid", field="method")
        count = run_cap
    points = expand_points(
        dims, method, count=count, seeds=seeds, sample_seed=sample_seed, max_points=max_points
    )
    return SweepPlan(
        script=program,
        method=method,
        points=points,
        seeds=seeds,
        metric=metric,
        args=args,
        contract=contract,
        definition=data,
        name=name,
        description=description,
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
