"""The trust region of a point proposed while others run (TuRBO-like, Eriksson et al. 2019): its
side replayed from the results in slot order, and the point it confines."""

from __future__ import annotations

import math

from spool.sweeps.bayes import BayesSettings, RunView, propose
from spool.sweeps.bayes_search import trust_length
from spool.sweeps.encoding import Space
from spool.sweeps.expand import Dimension


def test_the_side_doubles_after_three_improvements_and_halves_after_the_failure_tolerance() -> None:
    assert trust_length([5.0], dims=2, batch=4) == 0.8
    assert trust_length([5.0, 4.0, 3.0, 2.0], dims=2, batch=4) == 1.6  # 3 in a row
    assert trust_length([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1], dims=2, batch=4) == 1.6  # capped
    assert trust_length([1.0] + [2.0] * 4, dims=2, batch=4) == 0.4  # 4 results without a gain
    assert trust_length([1.0] + [2.0] * 3, dims=2, batch=4) == 0.8
    assert trust_length([1.0] + [2.0] * 8, dims=6, batch=4) == 0.4  # 2 batches of 4 when d = 6
    assert trust_length([1.0] + [2.0] * 7, dims=6, batch=4) == 0.8
    assert trust_length([1.0] + [0.9999] * 4, dims=2, batch=4) == 0.4  # less than 0.1% is no gain
    assert trust_length([1.0] + [2.0] * 28, dims=2, batch=4) == 0.8  # below 0.5**7: back to the start


def _bowl(i: int, x: float, y: float) -> RunView:
    return RunView(f"j{i}", i, "done", {"x": x, "y": y}, ((x - 0.6) ** 2 + (y - 0.3) ** 2,))


def test_a_point_proposed_while_others_run_stays_in_the_region_where_sequential_explores() -> None:
    """The best result first, then 12 that do not beat it, all in [0, 0.5]: the side is down to
    0.1, so the point proposed while 3 others run stays beside the best (the box is 0.15-0.25,
    the polish may step a little out of it), where a sequential one explores the empty half."""
    space = Space([Dimension("x", "uniform", low=0.0, high=1.0)])
    xs = [0.2] + [0.02 + 0.04 * i for i in range(13) if i != 4]
    runs = [
        RunView(f"j{i}", i, "done", {"x": x}, (0.0 if i == 0 else 1 + 0.5 * math.sin(9 * x),))
        for i, x in enumerate(xs)
    ]
    assert trust_length([r.values[0] for r in runs], dims=1, batch=4) == 0.1
    pend = [RunView(f"j{13 + k}", 13 + k, "pending", {"x": 0.05 + 0.1 * k}) for k in range(3)]
    s = BayesSettings("loss")
    for slot in range(16, 20):
        assert abs(propose(space, s, runs + pend, sample_seed=slot, slot=slot).point["x"] - 0.2) < 0.1
        assert propose(space, s, runs, sample_seed=slot, slot=slot).point["x"] > 0.7


def test_the_results_are_replayed_in_slot_order_whatever_order_they_are_given_in() -> None:
    space = Space(
        [Dimension("x", "uniform", low=0.0, high=1.0), Dimension("y", "uniform", low=0.0, high=1.0)]
    )
    runs = [_bowl(i, (i * 0.37) % 1.0, (i * 0.61) % 1.0) for i in range(9)]
    runs.append(RunView("j9", 9, "pending", {"x": 0.5, "y": 0.5}))
    s = BayesSettings("loss")
    assert propose(space, s, runs, sample_seed=1, slot=10) == propose(
        space, s, runs[::-1], sample_seed=1, slot=10
    )


def test_the_trust_region_sits_on_a_point_in_flight_that_the_model_expects_to_beat_the_best() -> None:
    """A bowl at 0.7 sampled around it, the best result at 0.55, then 11 that do not beat it:
    the side is down to 0.1. A point in flight at 0.7, which the model expects below every
    result, moves the box there, so the next point refines it; one in flight at 0.25, which
    it does not, leaves the box on the best result."""
    space = Space([Dimension("x", "uniform", low=0.0, high=1.0)])
    xs = [0.55] + [0.03 * i for i in range(12)] + [0.88, 0.95]
    runs = [RunView(f"j{i}", i, "done", {"x": x}, ((x - 0.7) ** 2,)) for i, x in enumerate(xs)]
    assert trust_length([r.values[0] for r in runs], dims=1, batch=2) == 0.1
    s = BayesSettings("loss")
    n = len(runs)
    for slot in range(n + 1, n + 5):
        ahead = propose(
            space, s, [*runs, RunView(f"j{n}", n, "pending", {"x": 0.7})], sample_seed=slot, slot=slot
        )
        behind = propose(
            space, s, [*runs, RunView(f"j{n}", n, "pending", {"x": 0.25})], sample_seed=slot, slot=slot
        )
        assert abs(ahead.point["x"] - 0.7) < 0.05, ahead
        assert abs(behind.point["x"] - 0.7) > 0.05 and abs(behind.point["x"] - 0.55) < 0.1, behind
