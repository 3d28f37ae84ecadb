"""Sweep expansion: `--grid`/range flags and W&B sweep files into points."""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from typing import Any

import pytest

from spool.errors import SweepError
from spool.sweeps import SweepPlan, format_points, plan_from_flags, plan_from_wandb


def flags(
    grid: list[str] | None = None,
    random_n: int | None = None,
    uniform: list[str] | None = None,
    log_uniform: list[str] | None = None,
    int_uniform: list[str] | None = None,
    choice: list[str] | None = None,
    seeds: int = 1,
    fixed: dict[str, Any] | None = None,
    sample_seed: int = 0,
    max_points: int | None = 100_000,
) -> SweepPlan:
    return plan_from_flags(
        "train.py",
        grid or [],
        random_n,
        uniform or [],
        log_uniform or [],
        int_uniform or [],
        choice or [],
        seeds,
        fixed or {},
        sample_seed,
        max_points,
    )


def wandb_error(text: str, *needles: str, filename: str = "sweep.yaml", **kwargs: Any) -> str:
    with pytest.raises(SweepError) as info:
        plan_from_wandb(text, filename, **kwargs)
    message = str(info.value)
    for needle in (filename, *needles):
        assert needle in message, f"{needle!r} not in {message!r}"
    assert "\n" not in message
    return message


def sample(spec: str, n: int = 400, seed: int = 0) -> list[Any]:
    """`n` random draws of one W&B parameter written as a flow mapping."""
    text = f"method: random\nrun_cap: {n}\nparameters:\n  x: {spec}\n"
    return [p["x"] for p in plan_from_wandb(text, sample_seed=seed).points]


# ---- flags: grid -------------------------------------------------------------------------


def test_grid_is_a_cartesian_product_first_flag_slowest() -> None:
    plan = flags(grid=["lr=0.1,0.01", "opt=adam,sgd,rmsprop"])
    assert plan.method == "grid" and plan.script == "train.py" and plan.seeds == 1
    assert plan.points == [
        {"lr": 0.1, "opt": "adam"},
        {"lr": 0.1, "opt": "sgd"},
        {"lr": 0.1, "opt": "rmsprop"},
        {"lr": 0.01, "opt": "adam"},
        {"lr": 0.01, "opt": "sgd"},
        {"lr": 0.01, "opt": "rmsprop"},
    ]


def test_grid_values_parse_as_json_scalars_else_strings() -> None:
    plan = flags(grid=['v=1,2.5,1e-3,true,false,null,adam,"quoted",01,NaN, spaced '])
    values = [p["v"] for p in plan.points]
    assert values == [1, 2.5, 0.001, True, False, None, "adam", "quoted", "01", "NaN", "spaced"]
    assert isinstance(values[0], int) and isinstance(values[1], float)


def test_choice_without_random_is_gridded_after_grid_flags() -> None:
    plan = flags(grid=["a=1,2"], choice=["b=x,y"])
    assert plan.points == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_fixed_params_join_every_point() -> None:
    plan = flags(grid=["lr=0.1,0.2"], fixed={"epochs": 3, "data": "x.csv"})
    assert plan.points == [
        {"lr": 0.1, "epochs": 3, "data": "x.csv"},
        {"lr": 0.2, "epochs": 3, "data": "x.csv"},
    ]


def test_seeds_repeat_each_point_with_seed_varying_fastest() -> None:
    plan = flags(grid=["lr=0.1,0.2"], seeds=3, fixed={"epochs": 1})
    assert plan.seeds == 3
    assert plan.points == [{"lr": lr, "epochs": 1, "seed": s} for lr in (0.1, 0.2) for s in range(3)]


def test_seeds_alone_make_a_sweep() -> None:
    assert flags(seeds=2, fixed={"a": 1}).points == [{"a": 1, "seed": 0}, {"a": 1, "seed": 1}]


@pytest.mark.parametrize(
    "kwargs",
    [{"grid": ["seed=1,2"]}, {"fixed": {"seed": 4}}, {"choice": ["seed=1,2"], "random_n": 2}],
)
def test_explicit_seed_param_conflicts_with_seeds(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SweepError, match="seed"):
        flags(seeds=2, **kwargs)


def test_seed_may_be_a_param_without_seeds() -> None:
    assert flags(grid=["seed=1,2"]).points == [{"seed": 1}, {"seed": 2}]


def test_flags_definition_is_the_space_in_wandb_dialect() -> None:
    plan = flags(grid=["lr=0.1,0.2"], fixed={"epochs": 3})
    assert plan.definition == {
        "program": "train.py",
        "method": "grid",
        "parameters": {"lr": {"values": [0.1, 0.2]}, "epochs": {"value": 3}},
    }


# ---- flags: random -----------------------------------------------------------------------


def random_plan(sample_seed: int, seeds: int = 1) -> SweepPlan:
    return flags(
        grid=["opt=adam,sgd"],
        choice=["act=relu,tanh,gelu"],
        uniform=["drop=0.1:0.5"],
        log_uniform=["lr=1e-5:1e-1"],
        int_uniform=["hidden=16:256"],
        random_n=50,
        seeds=seeds,
        fixed={"epochs": 2},
        sample_seed=sample_seed,
    )


def test_random_samples_are_reproducible_from_the_sample_seed() -> None:
    first, again, other = random_plan(7), random_plan(7), random_plan(8)
    assert first.method == "random" and len(first.points) == 50
    assert first.points == again.points
    assert first.points != other.points


def test_random_flags_stay_inside_their_ranges() -> None:
    points = random_plan(1).points
    for p in points:
        assert set(p) == {"opt", "act", "drop", "lr", "hidden", "epochs"}
        assert p["opt"] in ("adam", "sgd") and p["act"] in ("relu", "tanh", "gelu")
        assert 0.1 <= p["drop"] <= 0.5 and isinstance(p["drop"], float)
        assert 1e-5 <= p["lr"] <= 1e-1
        assert 16 <= p["hidden"] <= 256 and isinstance(p["hidden"], int)
        assert p["epochs"] == 2
    assert {p["opt"] for p in points} == {"adam", "sgd"}
    assert {p["act"] for p in points} == {"relu", "tanh", "gelu"}


def test_random_points_with_seeds_repeat_each_draw() -> None:
    plan = random_plan(3, seeds=2)
    assert len(plan.points) == 100
    for a, b in zip(plan.points[::2], plan.points[1::2], strict=True):
        assert (a.pop("seed"), b.pop("seed")) == (0, 1)
        assert a == b


def test_flags_definition_replays_through_the_wandb_reader() -> None:
    plan = random_plan(11, seeds=2)
    replay = plan_from_wandb(json.dumps(plan.definition), sample_seed=11, seeds=2)
    assert replay.points == plan.points
    assert replay.script == "train.py"


def test_a_range_cannot_be_gridded() -> None:
    for kwargs in ({"uniform": ["drop=0:1"]}, {"log_uniform": ["lr=1e-4:1"]}, {"int_uniform": ["h=1:4"]}):
        name = next(iter(kwargs.values()))[0].split("=")[0]
        with pytest.raises(SweepError, match=rf"'{name}'.*cannot be gridded"):
            flags(grid=["a=1,2"], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"grid": ["lr"]}, "NAME=SPEC"),
        ({"grid": ["=1,2"]}, "NAME=SPEC"),
        ({"grid": ["lr=0.1,,0.2"]}, "lr"),
        ({"grid": ["lr="]}, "lr"),
        ({"uniform": ["drop=0.5"], "random_n": 3}, "drop"),
        ({"uniform": ["drop=a:b"], "random_n": 3}, "drop"),
        ({"int_uniform": ["h=1.5:4"], "random_n": 3}, "h"),
        ({"uniform": ["drop=0.9:0.1"], "random_n": 3}, "drop"),
        ({"log_uniform": ["lr=0:1"], "random_n": 3}, "lr"),
        ({"grid": ["lr=1,2"], "choice": ["lr=3"]}, "lr"),
        ({"grid": ["lr=1,2"], "fixed": {"lr": 3}}, "lr"),
        ({"grid": ["a=1"], "random_n": 0}, "count"),
        ({"grid": ["a=1"], "seeds": 0}, "seeds"),
        ({}, "nothing to sweep"),
    ],
)
def test_bad_flags_are_refused_naming_the_parameter(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(SweepError) as info:
        flags(**kwargs)
    assert needle in str(info.value)


# ---- size limit --------------------------------------------------------------------------


def test_too_many_points_are_refused_with_the_count_and_yes() -> None:
    with pytest.raises(SweepError, match=r"24 points.*limit of 10.*--yes"):
        flags(grid=["a=1,2,3,4", "b=1,2,3"], seeds=2, max_points=10)
    assert len(flags(grid=["a=1,2,3,4", "b=1,2,3"], seeds=2, max_points=None).points) == 24
    assert len(flags(grid=["a=1,2,3,4", "b=1,2,3"], seeds=2, max_points=24).points) == 24


def test_a_huge_grid_is_refused_before_it_is_built() -> None:
    started = time.monotonic()
    with pytest.raises(SweepError, match=r"10000000000 points"):
        flags(grid=[f"p{i}=0,1,2,3,4,5,6,7,8,9" for i in range(10)])
    text = "method: grid\nparameters:\n  a: {min: 0, max: 999999999}\n  b: {values: [1, 2]}\n"
    wandb_error(text, "2000000000 points", "--yes")
    assert time.monotonic() - started < 2


def test_run_cap_keeps_the_first_points_of_a_huge_grid() -> None:
    text = "method: grid\nrun_cap: 3\nparameters:\n  a: {values: [1, 2]}\n  b: {min: 0, max: 999999999}\n"
    assert plan_from_wandb(text).points == [{"a": 1, "b": 0}, {"a": 1, "b": 1}, {"a": 1, "b": 2}]


def test_random_count_is_limited_too() -> None:
    with pytest.raises(SweepError, match="--yes"):
        flags(grid=["a=1,2"], random_n=11, max_points=10)


# ---- W&B: grid ---------------------------------------------------------------------------

GRID_YAML = """\
program: train.py
method: grid
name: lr-grid
description: a small grid
project: house
entity: me
metric:
  name: val_acc
  goal: maximize
parameters:
  lr:
    values: [0.1, 1e-3]
  optimizer:
    parameters:
      name:
        values: [adam, sgd]
      momentum:
        value: 0.9
  layers:
    distribution: int_uniform
    min: 1
    max: 2
"""


def test_wandb_grid_file_expands_in_file_order_with_dotted_names() -> None:
    plan = plan_from_wandb(GRID_YAML, "grid.yaml")
    assert plan.method == "grid" and plan.script == "train.py"
    assert plan.name == "lr-grid" and plan.description == "a small grid"
    assert plan.metric == {"name": "val_acc", "goal": "maximize"}
    assert plan.args == [] and plan.contract == "flags"
    assert plan.definition["project"] == "house" and plan.definition["entity"] == "me"
    assert plan.definition["parameters"]["optimizer"]["parameters"]["momentum"] == {"value": 0.9}
    expected = [
        {"lr": lr, "optimizer.name": opt, "optimizer.momentum": 0.9, "layers": layers}
        for lr in (0.1, 0.001)
        for opt in ("adam", "sgd")
        for layers in (1, 2)
    ]
    assert plan.points == expected
    assert isinstance(plan.points[2]["lr"], float)  # `1e-3` is a float, not YAML 1.1's string


def test_wandb_run_cap_and_seeds_on_a_grid() -> None:
    plan = plan_from_wandb(GRID_YAML + "run_cap: 3\n", seeds=2)
    assert len(plan.points) == 6
    assert [p["seed"] for p in plan.points] == [0, 1, 0, 1, 0, 1]
    assert [p["layers"] for p in plan.points] == [1, 1, 2, 2, 1, 1]


def test_wandb_json_text_is_read() -> None:
    text = json.dumps({"method": "grid", "program": "a.py", "parameters": {"x": {"values": [1, 2]}}})
    plan = plan_from_wandb(text, "sweep.json")
    assert plan.points == [{"x": 1}, {"x": 2}] and plan.definition["program"] == "a.py"


def test_wandb_q_uniform_grid_is_exact_multiples_of_q() -> None:
    text = "method: grid\nparameters:\n  x: {distribution: q_uniform, min: 0, max: 1, q: 0.25}\n"
    assert [p["x"] for p in plan_from_wandb(text).points] == [0.0, 0.25, 0.5, 0.75, 1.0]
    text = "method: grid\nparameters:\n  x: {distribution: q_uniform, min: 0.1, max: 0.35, q: 0.1}\n"
    assert [p["x"] for p in plan_from_wandb(text).points] == [0.1, 0.2, 0.3]
    text = "method: grid\nparameters:\n  x: {distribution: q_uniform, min: 16, max: 64, q: 16}\n"
    assert [p["x"] for p in plan_from_wandb(text).points] == [16, 32, 48, 64]


def test_wandb_min_max_alone_mean_int_uniform_or_uniform() -> None:
    assert [p["x"] for p in plan_from_wandb("method: grid\nparameters:\n  x: {min: 3, max: 5}\n").points] == [
        3,
        4,
        5,
    ]
    wandb_error("method: grid\nparameters:\n  x: {min: 3, max: 5.0}\n", "'x'", "uniform", "gridded")
    assert all(isinstance(v, float) and 3 <= v <= 5 for v in sample("{min: 3, max: 5.0}", 50))
    assert all(isinstance(v, int) for v in sample("{min: 3, max: 5}", 50))


# ---- W&B: random and distributions -------------------------------------------------------

RANDOM_YAML = """\
program: train.py
method: random
run_cap: 30
parameters:
  lr:
    distribution: log_uniform_values
    min: 0.00001
    max: 0.1
  batch:
    values: [16, 32, 64]
  dropout:
    distribution: uniform
    min: 0.0
    max: 0.5
  epochs:
    value: 5
"""


def test_wandb_random_file_is_reproducible_and_in_bounds() -> None:
    plan = plan_from_wandb(RANDOM_YAML, sample_seed=5)
    assert plan.method == "random" and len(plan.points) == 30
    assert plan.points == plan_from_wandb(RANDOM_YAML, sample_seed=5).points
    assert plan.points != plan_from_wandb(RANDOM_YAML, sample_seed=6).points
    for p in plan.points:
        assert list(p) == ["lr", "batch", "dropout", "epochs"]
        assert 1e-5 <= p["lr"] <= 0.1 and p["batch"] in (16, 32, 64)
        assert 0 <= p["dropout"] <= 0.5 and p["epochs"] == 5


def test_wandb_random_count_overrides_run_cap_and_one_is_needed() -> None:
    assert len(plan_from_wandb(RANDOM_YAML, random_n=4).points) == 4
    no_cap = RANDOM_YAML.replace("run_cap: 30\n", "")
    assert len(plan_from_wandb(no_cap, random_n=7).points) == 7
    wandb_error(no_cap, "run_cap")
    wandb_error(GRID_YAML, "grid", random_n=3)


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    [
        ("{distribution: uniform, min: -2, max: 3}", -2, 3),
        ("{distribution: int_uniform, min: -2, max: 3}", -2, 3),
        ("{distribution: q_uniform, min: 0, max: 10, q: 2}", 0, 10),
        ("{distribution: log_uniform, min: -4.6, max: 2.3}", math.exp(-4.6), math.exp(2.3)),
        ("{distribution: log_uniform_values, min: 0.001, max: 10}", 0.001, 10),
        ("{distribution: q_log_uniform, min: 0, max: 4.6, q: 1}", 1, 99.5),
        ("{distribution: q_log_uniform_values, min: 1, max: 100, q: 5}", 0, 100),
        ("{distribution: normal, mu: 10, sigma: 2}", 10 - 12, 10 + 12),
        ("{distribution: q_normal, mu: 10, sigma: 2, q: 0.5}", 10 - 12, 10 + 12),
        ("{distribution: log_normal, mu: 0, sigma: 1}", 0, math.exp(6)),
        ("{distribution: q_log_normal, mu: 1, sigma: 0.5, q: 1}", 0, math.exp(4)),
        ("{values: [a, b, c]}", None, None),
        ("{value: 7}", 7, 7),
    ],
)
def test_every_distribution_samples_inside_its_bounds(spec: str, low: Any, high: Any) -> None:
    values = sample(spec)
    assert len(values) == 400
    if low is None:
        assert set(values) == {"a", "b", "c"}
        return
    assert all(low <= v <= high for v in values), (min(values), max(values))
    assert len(set(values)) > 1 or low == high


def test_gaussians_centre_on_mu_with_sigma() -> None:
    values = sample("{distribution: normal, mu: 10, sigma: 2}", 2000)
    assert abs(statistics.mean(values) - 10) < 0.3 and abs(statistics.stdev(values) - 2) < 0.3
    logs = [math.log(v) for v in sample("{distribution: log_normal, mu: 1, sigma: 0.5}", 2000)]
    assert abs(statistics.mean(logs) - 1) < 0.1 and abs(statistics.stdev(logs) - 0.5) < 0.1


def test_log_uniform_takes_natural_logs_and_log_uniform_values_takes_values() -> None:
    ln = sample(f"{{distribution: log_uniform, min: {math.log(1e-4)}, max: {math.log(0.1)}}}", 2001)
    vals = sample("{distribution: log_uniform_values, min: 1e-4, max: 0.1}", 2001)
    for values in (ln, vals):
        assert all(1e-4 <= v <= 0.1 for v in values)
        # log-uniform: the median is near the geometric mean (3.2e-3), far below the mean 0.05
        assert 1e-3 < statistics.median(values) < 1e-2
    # the same numbers read as natural logs give e**1e-4 .. e**0.1
    assert all(
        math.exp(1e-4) <= v <= math.exp(0.1)
        for v in sample("{distribution: log_uniform, min: 1e-4, max: 0.1}")
    )


def test_q_rounds_to_exact_multiples() -> None:
    for v in sample("{distribution: q_uniform, min: 0, max: 1, q: 0.1}"):
        assert isinstance(v, float) and v == round(v, 1) and repr(v) == repr(round(v, 1))
    for v in sample("{distribution: q_log_uniform_values, min: 8, max: 512, q: 8}"):
        assert isinstance(v, int) and v % 8 == 0
    for v in sample("{distribution: q_normal, mu: 0, sigma: 3, q: 0.5}"):
        assert (v * 2).is_integer()
    # q defaults to 1: whole numbers, as ints, so `--hidden=32` suits an int flag
    assert all(isinstance(v, int) for v in sample("{distribution: q_uniform, min: 0.5, max: 9.5}"))


def test_probabilities_weight_categorical_draws() -> None:
    values = sample("{values: [a, b, c], probabilities: [0.0, 1.0, 0.0]}", 100)
    assert set(values) == {"b"}
    values = sample("{values: [a, b], probabilities: [0.9, 0.1]}", 1000)
    assert 800 < values.count("a") < 980


# ---- W&B: command ------------------------------------------------------------------------


def command_plan(*words: str) -> SweepPlan:
    lines = "".join(f"  - {json.dumps(w)}\n" for w in words)
    return plan_from_wandb(f"program: t.py\nmethod: grid\nparameters:\n  a: {{value: 1}}\ncommand:\n{lines}")


@pytest.mark.parametrize(
    ("words", "args", "contract"),
    [
        (["${env}", "${interpreter}", "${program}", "${args}"], [], "flags"),
        (
            ["${env}", "python3", "${program}", "--config", "base.yaml", "${args}"],
            ["--config", "base.yaml"],
            "flags",
        ),
        (["/usr/bin/env", "python", "${program}", "${args_json}"], [], "json"),
        (["${interpreter}", "${program}", "-v", "${args_json_file}", "--fast"], ["-v", "--fast"], "json"),
        (["${program}"], [], "json"),
        (["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"], [], "hydra"),
    ],
)
def test_command_macros_give_args_and_contract(words: list[str], args: list[str], contract: str) -> None:
    plan = command_plan(*words)
    assert (plan.args, plan.contract) == (args, contract)


def test_no_command_means_flags() -> None:
    assert plan_from_wandb(GRID_YAML).contract == "flags"


@pytest.mark.parametrize(
    ("words", "needle"),
    [
        (["torchrun", "${program}", "${args}"], "torchrun"),
        (["${interpreter}", "${args}"], "${program}"),
        (["${program}", "${args}", "${args_json}"], "more than once"),
        (["${program}", "${foo}"], "${foo}"),
        (["${program}", "${program}"], "twice"),
        (["${args}", "${program}"], "after ${program}"),
    ],
)
def test_bad_commands_are_refused(words: list[str], needle: str) -> None:
    with pytest.raises(SweepError) as info:
        command_plan(*words)
    assert needle in str(info.value) and "command" in str(info.value)


# ---- W&B: rejections ---------------------------------------------------------------------

P = "method: grid\nparameters:\n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("method: bayes\nparameters:\n  a: {min: 0.0, max: 1.0}\n", ["bayes", "metric"]),
        ("method: bayes\nmetric: {name: l}\nparameters:\n  a: {value: 1}\n", ["bayes", "varies"]),
        (P + "  a: {values: [1]}\nearly_terminate: {type: hyperband, min_iter: 1}\n", ["metric", "early"]),
        (P + "  a: {values: [1]}\nmetric: {name: l}\nearly_terminate: {type: hyperband}\n", ["min_iter"]),
        (P + "  a: {values: [1]}\nmetric: {name: l}\nearly_terminate: {type: hb, min_iter: 1}\n", ["hb"]),
        (P + "  a: {values: [1]}\nscheduler: {engine: optuna}\n", ["scheduler"]),
        ("method: grid\n", ["parameters", "empty"]),
        ("method: grid\nparameters: {}\n", ["parameters", "empty"]),
        (P + "  opt:\n    parameters: {}\n", ["opt", "empty"]),
        ("method: sobol\nparameters:\n  a: {value: 1}\n", ["sobol"]),
        ("parameters:\n  a: {value: 1}\n", ["method"]),
        (P + "  lr: {values: [1], step: 2}\n", ["lr", "step"]),
        (P + "  lr: {value: 1, values: [1, 2]}\n", ["lr", "value"]),
        (P + "  lr: {values: []}\n", ["lr", "empty"]),
        (P + "  lr: {values: 3}\n", ["lr", "list"]),
        (P + "  lr: {distribution: int_uniform, min: 5, max: 1}\n", ["lr", "min 5", "max 1"]),
        (P + "  lr: {distribution: log_uniform_values, min: 0, max: 1}\n", ["lr", "> 0"]),
        (P + "  lr: {distribution: q_uniform, min: 0, max: 1, q: 0}\n", ["lr", "q"]),
        (P + "  lr: {distribution: q_uniform, min: 0, max: 1, q: -1}\n", ["lr", "q"]),
        (P + "  lr: {distribution: beta}\n", ["lr", "beta"]),
        (P + "  lr: {distribution: uniform, min: 0, max: 1}\n", ["lr", "uniform", "gridded"]),
        (P + "  lr: {distribution: normal}\n", ["lr", "normal", "gridded"]),
        (P + "  lr: {values: [1, 2], probabilities: [0.5, 0.5]}\n", ["lr", "probabilities"]),
        (P + "  lr: {distribution: uniform, min: 0, max: 1, mu: 2}\n", ["lr", "mu"]),
        (P + "  lr: {distribution: uniform, min: 0}\n", ["lr", "max"]),
        (P + "  lr: {mu: 1}\n", ["lr", "distribution"]),
        (P + "  lr: {distribution: constant, values: [1]}\n", ["lr", "values"]),
        (P + "  lr: {distribution: int_uniform, min: 0.5, max: 3}\n", ["lr", "integer"]),
        (P + "  lr: {distribution: uniform, min: a, max: 3}\n", ["lr", "number"]),
        (P + "  lr: {distribution: normal, sigma: -1}\n", ["lr", "sigma"]),
        (P + "  lr: {values: [1, 2], probabilities: [1]}\n", ["lr", "probabilities"]),
        (P + "  lr: 0.1\n", ["lr", "mapping"]),
        (
            P + "  opt.lr: {values: [1]}\n  opt:\n    parameters:\n      lr: {values: [2]}\n",
            ["opt.lr", "twice"],
        ),
        (P + "  opt:\n    parameters:\n      lr: {values: [1]}\n    values: [2]\n", ["opt", "nested"]),
        (P + "  a: {values: [1]}\nrun_cap: 0\n", ["run_cap"]),
        (P + "  a: {values: [1]}\nmetric: {name: acc, goal: up}\n", ["metric.goal", "up"]),
        (P + "  a: {values: [1]}\nmetric: {goal: maximize}\n", ["metric", "name"]),
        (P + "  a: {values: [1]}\nmetric: {name: acc, weight: 2}\n", ["metric.weight"]),
        (P + "  a: {values: [1]}\nprogram: [a.py]\n", ["program"]),
        (P + "  a: {values: [1]}\n  seed: {values: [1, 2]}\n", ["seed"]),
        ("- a\n- b\n", ["mapping"]),
        ("method: grid\nparameters: [\n", ["YAML", "line"]),
    ],
)
def test_wandb_rejections_name_the_key_and_the_file(text: str, needles: list[str]) -> None:
    seeds = 2 if "seed:" in text else 1
    wandb_error(text, *needles, seeds=seeds)


def test_nested_sub_parameter_errors_use_the_dotted_name() -> None:
    text = P + "  optimizer:\n    parameters:\n      lr: {distribution: uniform, min: 0, max: 1}\n"
    wandb_error(text, "'optimizer.lr'", "gridded")


def test_python_sweep_configs_are_refused_with_a_hint() -> None:
    wandb_error("sweep_config = {'method': 'grid'}\n", "Python", filename="sweep.py")


def test_metric_goal_defaults_to_minimize_and_wandb_extras_are_ignored() -> None:
    plan = plan_from_wandb(P + "  a: {values: [1]}\nmetric: {name: loss, target: 0.1}\n")
    assert plan.metric == {"name": "loss", "goal": "minimize"}
    assert plan_from_wandb(P + "  a: {values: [1]}\n").metric is None


# ---- format_points -----------------------------------------------------------------------


def test_format_points_is_an_aligned_table() -> None:
    table = format_points([{"lr": 0.1, "opt": "adam"}, {"lr": 0.000123456789, "opt": "sgd", "seed": 1}])
    assert table.splitlines() == [
        "#           lr  opt   seed",
        "0          0.1  adam     -",
        "1  0.000123457  sgd      1",
    ]
    assert format_points([]) == "(no points)"
    table = format_points(flags(grid=["flag=true,null"], fixed={"cfg": {"a": 1}}).points)
    assert re.search(r'true\s+\{"a": 1\}', table) and "null" in table
