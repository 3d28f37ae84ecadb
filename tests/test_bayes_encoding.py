"""The bayes proposer's pure parts: the CDF encoding of every distribution, observations and
imputation by W&B's rules, random points before 2 observations, and the GP's proposals."""

from __future__ import annotations

import math
import random

import pytest

from spool.errors import SweepError
from spool.sweeps.adaptive_plan import bayes_metric
from spool.sweeps.bayes import BayesSettings, RunView, observations, propose, target_reached
from spool.sweeps.encoding import Space, value_key
from spool.sweeps.expand import Dimension
from spool.sweeps.wandb import plan_from_wandb

DIMS = [
    Dimension("u", "uniform", low=-2.0, high=3.0),
    Dimension("iu", "int_uniform", low=-3, high=7),
    Dimension("qu", "q_uniform", low=0.0, high=1.0, q=0.1),
    Dimension("qu1", "q_uniform", low=0, high=40),  # q omitted: 1
    Dimension("lu", "log_uniform", low=math.log(1e-4), high=math.log(1.0)),
    Dimension("luv", "log_uniform_values", low=1e-5, high=1e-1),
    Dimension("qlu", "q_log_uniform", low=0.0, high=math.log(500.0), q=5),
    Dimension("qluv", "q_log_uniform_values", low=1.0, high=1000.0),
    Dimension("n", "normal", mu=1.0, sigma=2.0),
    Dimension("qn", "q_normal", mu=10.0, sigma=3.0, q=0.5),
    Dimension("ln", "log_normal", mu=0.0, sigma=0.5),
    Dimension("qln", "q_log_normal", mu=2.0, sigma=0.5),
    Dimension("c", "categorical", values=("adam", "sgd", "rmsprop")),
    Dimension("k", "constant", value="fixed"),
]


@pytest.mark.parametrize("dim", DIMS, ids=[d.distribution + ":" + d.name for d in DIMS])
def test_every_distribution_round_trips(dim: Dimension) -> None:
    """decode(encode(v)) == v for values drawn from the distribution, and the code is in [0, 1]."""
    space = Space([dim, Dimension("other", "uniform", low=0.0, high=1.0)])
    rng = random.Random(7)
    for _ in range(200):
        value = dim.sample(rng)
        point = {dim.name: value, "other": 0.5}
        coords = space.encode(point)
        assert coords is not None
        assert all(0.0 <= c <= 1.0 for c in coords)
        back = space.decode(coords)[dim.name]
        assert type(back) is type(value), (value, back)
        if isinstance(value, float):
            assert back == pytest.approx(value, rel=1e-9, abs=1e-12)
        else:
            assert back == value


@pytest.mark.parametrize("dim", DIMS[:-2], ids=[d.distribution for d in DIMS[:-2]])
def test_decoding_the_whole_cube_stays_in_the_space(dim: Dimension) -> None:
    space = Space([dim])
    for i in range(1001):
        v = space.decode([i / 1000])[dim.name]
        assert isinstance(v, (int, float)) and math.isfinite(v)
        slack = dim.q / 2 if dim.distribution.startswith("q_") else 1e-9  # rounding to a multiple of q
        if dim.distribution in (
            "uniform",
            "q_uniform",
            "int_uniform",
            "log_uniform_values",
            "q_log_uniform_values",
        ):
            assert dim.low - slack <= v <= dim.high + slack  # type: ignore[operator]
        if dim.distribution in ("log_uniform", "q_log_uniform"):
            assert math.exp(dim.low) - slack <= v <= math.exp(dim.high) + slack  # type: ignore[arg-type]
    # the code is monotone: a larger u never decodes to a smaller value
    values = [space.decode([i / 200])[dim.name] for i in range(201)]
    assert values == sorted(values)


def test_q_omitted_gives_integers_and_a_float_q_gives_multiples() -> None:
    text = """
method: bayes
metric: {name: loss}
parameters:
  a: {distribution: q_uniform, min: 0, max: 40}
  b: {distribution: q_log_uniform_values, min: 1, max: 1000}
  c: {distribution: q_normal, mu: 5, sigma: 2}
  d: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
"""
    plan = plan_from_wandb(text, "s.yaml")
    from spool.sweeps.adaptive import AdaptiveSweep

    space = AdaptiveSweep("s", {"adaptive": plan.adaptive}).space
    for i in range(101):
        p = space.decode([i / 100] * space.width)
        for name in "abc":
            assert type(p[name]) is int, p  # 21, not 21.0
        assert p["d"] in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_falsy_categories_stay_distinct() -> None:
    values = (False, 0, "", None, 0.0, True, 1)
    space = Space([Dimension("c", "categorical", values=values)])
    codes = [space.encode({"c": v}) for v in values]
    assert len({tuple(c) for c in codes if c is not None}) == len(values)
    for v, code in zip(values, codes, strict=True):
        back = space.decode(code)["c"]  # type: ignore[arg-type]
        assert back == v and type(back) is type(v)
    assert len({value_key(v) for v in values}) == len(values)
    assert space.encode({"c": "missing"}) is None


def test_categories_are_one_hot_not_ordered() -> None:
    space = Space([Dimension("c", "categorical", values=("a", "b", "c"))])
    assert space.width == 3
    assert space.encode({"c": "a"}) == [1.0, 0.0, 0.0]
    assert space.encode({"c": "c"}) == [0.0, 0.0, 1.0]


def _run(i: int, state: str, values: tuple[float, ...] = (), x: float = 0.5) -> RunView:
    return RunView(f"j{i}", i, state, {"x": x}, values)


def test_observation_is_the_best_over_the_whole_history_and_failed_runs_are_imputed() -> None:
    runs = [
        _run(0, "done", (5.0, 2.0, 3.0)),  # best 2.0, not the last 3.0
        _run(1, "done", (9.0, 4.0)),
        _run(2, "failed", (1.5,)),
        _run(3, "failed"),
        _run(4, "claimed", (0.5,)),
        _run(5, "pending"),
        _run(6, "missing"),
    ]
    seen, standins = observations(BayesSettings("loss"), runs)
    assert seen["j0"] == 2.0 and seen["j1"] == 4.0
    assert seen["j2"] == 9.0 and seen["j3"] == 9.0  # worst: the worst value any ended run reported
    assert standins == ["j4", "j5", "j6"]
    best, _ = observations(BayesSettings("loss", impute="best"), runs)
    assert best["j2"] == 1.5 and best["j3"] == 9.0
    latest, _ = observations(BayesSettings("loss", impute="latest", impute_while_running="latest"), runs)
    assert latest["j2"] == 1.5 and latest["j4"] == 0.5
    mx, _ = observations(BayesSettings("acc", goal="maximize"), runs)
    assert mx["j0"] == -5.0 and mx["j3"] == -1.5  # maximise: signs flipped, worst is the lowest


def test_target_stops_on_any_history() -> None:
    s = BayesSettings("loss", target=1.0)
    assert not target_reached(s, [_run(0, "done", (3.0, 2.0))])
    assert target_reached(s, [_run(0, "claimed", (3.0, 0.9))])
    m = BayesSettings("acc", goal="maximize", target=0.9)
    assert target_reached(m, [_run(0, "done", (0.5, 0.95, 0.6))])


def test_random_until_two_finite_observations_then_the_model() -> None:
    space = Space([Dimension("x", "uniform", low=0.0, high=1.0)])
    s = BayesSettings("loss")
    one = propose(space, s, [_run(0, "done", (1.0,), 0.2), _run(1, "pending")], sample_seed=0, slot=2)
    assert one.method == "random"
    alone = propose(space, s, [_run(0, "failed"), _run(1, "failed")], sample_seed=0, slot=2)
    assert alone.method == "random"  # nothing to impute from: no observation at all
    imputed = propose(space, s, [_run(0, "done", (1.0,), 0.2), _run(1, "failed")], sample_seed=0, slot=2)
    assert imputed.method == "gp"  # as W&B: an imputed failure is an observation
    two = propose(
        space, s, [_run(0, "done", (1.0,), 0.2), _run(1, "done", (0.5,), 0.8)], sample_seed=0, slot=2
    )
    assert two.method == "gp" and two.mean is not None and two.std is not None and two.acquisition is not None
    assert set(two.observed) == {"j0", "j1"}


def test_a_proposal_is_a_pure_function_of_its_inputs() -> None:
    space = Space(
        [Dimension("x", "uniform", low=0.0, high=1.0), Dimension("c", "categorical", values=(0, False))]
    )
    runs = [
        RunView(f"j{i}", i, "done", {"x": i / 7, "c": (0, False)[i % 2]}, ((i / 7 - 0.3) ** 2,))
        for i in range(7)
    ]
    a = propose(space, BayesSettings("loss"), runs, sample_seed=3, slot=7)
    b = propose(space, BayesSettings("loss"), list(runs), sample_seed=3, slot=7)
    c = propose(space, BayesSettings("loss"), runs, sample_seed=3, slot=8)
    assert a == b and a.point != c.point


def test_standins_spread_parallel_proposals() -> None:
    """With the best point's neighbourhood already pending, the next proposal goes elsewhere."""
    space = Space([Dimension("x", "uniform", low=0.0, high=1.0)])
    s = BayesSettings("loss")
    runs = [
        RunView(f"j{i}", i, "done", {"x": x}, ((x - 0.37) ** 2,))
        for i, x in enumerate((0.0, 0.2, 0.5, 0.8, 1.0))
    ]
    first = propose(space, s, runs, sample_seed=0, slot=5)
    pend = runs + [RunView("j5", 5, "pending", first.point)]
    second = propose(space, s, pend, sample_seed=0, slot=6)
    assert first.point != second.point
    assert "j5" in second.standins
    assert abs(second.point["x"] - first.point["x"]) > 1e-3


def test_a_point_in_flight_where_the_model_beats_the_best_result_keeps_the_next_away() -> None:
    """The stand-in's predicted mean (below the best result here) is the bar the next point must
    beat, so the next point does not land beside it: measured against the best result alone,
    the polished point came 0.0006 from the one in flight."""
    space = Space([Dimension("x", "uniform", low=0.0, high=1.0)])
    s = BayesSettings("loss")
    runs = [
        RunView(f"j{i}", i, "done", {"x": x}, ((x - 0.37) ** 2,))
        for i, x in enumerate((0.0, 0.2, 0.5, 0.8, 1.0))
    ]
    flight = 0.3537838790195103  # where the model's mean is lowest, below the best result
    pend = runs + [RunView("j5", 5, "pending", {"x": flight})]
    nxt = propose(space, s, pend, sample_seed=0, slot=6)
    assert nxt.method == "gp" and nxt.standins == ["j5"]
    assert abs(nxt.point["x"] - flight) > 0.01


def test_bayes_metric_checks() -> None:
    assert bayes_metric({"name": "loss"}) == {
        "name": "loss",
        "goal": "minimize",
        "impute": "worst",
        "impute_while_running": None,
        "target": None,
    }
    for bad, field in (
        (None, "metric"),
        ({"goal": "minimize"}, "metric"),
        ({"name": "l", "goal": "down"}, "metric.goal"),
        ({"name": "l", "impute": "mean"}, "metric.impute"),
        ({"name": "l", "impute_while_running": "yes"}, "metric.impute_while_running"),
        ({"name": "l", "target": "low"}, "metric.target"),
        ({"name": "l", "tagret": 1}, "metric.tagret"),
    ):
        with pytest.raises(SweepError) as err:
            bayes_metric(bad)
        assert err.value.field == field


def test_a_bayes_file_needs_a_metric_and_a_varying_parameter() -> None:
    with pytest.raises(SweepError, match="needs a metric"):
        plan_from_wandb("method: bayes\nparameters: {x: {min: 0.0, max: 1.0}}\n", "s.yaml")
    with pytest.raises(SweepError, match="varies"):
        plan_from_wandb("method: bayes\nmetric: {name: l}\nparameters: {x: {value: 1}}\n", "s.yaml")
    plan = plan_from_wandb(
        "method: bayes\nmetric: {name: l, goal: maximize, target: 0.9}\nrun_cap: 5\n"
        "parameters: {x: {min: 0.0, max: 1.0}, y: {value: 2}}\n",
        "s.yaml",
    )
    assert plan.points == [] and plan.adaptive is not None
    assert plan.adaptive["run_cap"] == 5 and plan.adaptive["metric"]["target"] == 0.9


def test_a_small_discrete_space_runs_out_gracefully() -> None:
    """Once every point of a 4-point space is taken, a point is proposed again (no error)."""
    space = Space(
        [Dimension("c", "categorical", values=(False, 0)), Dimension("i", "int_uniform", low=1, high=2)]
    )
    pts = [{"c": c, "i": i} for c in (False, 0) for i in (1, 2)]
    runs = [RunView(f"j{k}", k, "done", p, (float(k),)) for k, p in enumerate(pts[:3])]
    fresh = propose(space, BayesSettings("loss"), runs, sample_seed=0, slot=3)
    assert fresh.point == pts[3] and type(fresh.point["c"]) is int  # the one left, 0 not False
    runs.append(RunView("j3", 3, "pending", pts[3]))
    again = propose(space, BayesSettings("loss"), runs, sample_seed=0, slot=4)
    assert again.method == "gp" and again.point in pts


def test_the_bundled_bayes_example_reads() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "spool-dir" / "examples" / "mlp_bayes.yaml"
    plan = plan_from_wandb(path.read_text(), str(path))
    assert plan.script == "train_mlp.py" and plan.adaptive is not None
    assert plan.adaptive["metric"]["name"] == "val_loss" and plan.adaptive["run_cap"] == 12
    assert (path.parents[2] / "scripts" / "train_mlp.py").is_file()
