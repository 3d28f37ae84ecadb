"""W&B's `method: bayes`, as a pure function: (space, settings, runs, sample seed, slot) -> a point.

No files and no clock here (`spool.sweeps.adaptive` reads the folder). The rules are W&B's
controller's (`wandb/sweeps`, bayes_search.py): a run's observation is the best value of the
metric over its whole history; failed runs are imputed (`worst`, `best`, `latest`); running
and pending points enter at the model's predicted mean (or, with `impute_while_running`, at
their history so far), so proposals made while others run spread out; random points while
fewer than 2 finite observations exist. The model and the search over it are ours
(`spool.sweeps.bayes_search` over `spool.sweeps.gp`; docs/sweeps.md says why and what it
measured).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spool.sweeps.encoding import Space

__all__ = ["BayesSettings", "RunView", "Proposal", "propose", "observations", "target_reached"]


@dataclass(frozen=True)
class BayesSettings:
    """The `metric` block of a bayes sweep, checked (`spool.sweeps.adaptive_plan`)."""

    metric: str
    goal: str = "minimize"
    impute: str = "worst"
    impute_while_running: str | None = None
    target: float | None = None

    @property
    def sign(self) -> float:
        """Values times `sign` are minimised."""
        return 1.0 if self.goal == "minimize" else -1.0


@dataclass(frozen=True)
class RunView:
    """One slot's run as the folder shows it: `state` is pending, claimed, done or failed
    (`missing` for a slot whose job is not published yet); `values` are the finite values of
    the metric in the order the run reported them."""

    job_id: str
    slot: int
    state: str
    point: dict[str, Any]
    values: tuple[float, ...] = ()
    coords: tuple[float, ...] | None = None  # the point encoded, when the caller has it already


@dataclass(frozen=True)
class Proposal:
    """A point and what it was computed from (the slot file records all of it)."""

    point: dict[str, Any]
    method: str  # "random" or "gp"
    observed: dict[str, float] = field(default_factory=dict)  # job id -> value the model saw
    standins: list[str] = field(default_factory=list)  # job ids entered at the predicted mean
    mean: float | None = None
    std: float | None = None
    acquisition: float | None = None


def _best(values: Sequence[float], sign: float) -> float:
    return min(sign * v for v in values)


def target_reached(settings: BayesSettings, runs: Sequence[RunView]) -> bool:
    """True once any run's history reaches `metric.target` (then nothing more is proposed)."""
    if settings.target is None:
        return False
    goal = settings.sign * settings.target
    return any(r.values and _best(r.values, settings.sign) <= goal for r in runs)


def _imputed(run: RunView, how: str, worst: float | None, sign: float) -> float | None:
    if how == "best" and run.values:
        return _best(run.values, sign)
    if how == "latest" and run.values:
        return sign * run.values[-1]
    return worst


def observations(settings: BayesSettings, runs: Sequence[RunView]) -> tuple[dict[str, float], list[str]]:
    """(job id -> value to minimise) for runs the model learns from, and the stand-in job ids.

    `worst` is the worst value any finished or failed run reported; a failed run with nothing
    to impute from (no value anywhere yet) is left out rather than given W&B's 0.0."""
    sign = settings.sign
    ended = [r for r in runs if r.state in ("done", "failed") and r.values]
    worst = max((sign * v for r in ended for v in r.values), default=None)
    seen: dict[str, float] = {}
    standins: list[str] = []
    for run in runs:
        value: float | None
        if run.state == "done" and run.values:
            value = _best(run.values, sign)
        elif run.state in ("done", "failed"):
            value = _imputed(run, settings.impute, worst, sign)
        elif run.state == "claimed" and settings.impute_while_running:
            value = _imputed(run, settings.impute_while_running, worst, sign)
        else:
            standins.append(run.job_id)
            continue
        if value is not None and math.isfinite(value):
            seen[run.job_id] = value
    return seen, standins


def _random_point(space: Space, sample_seed: int, slot: int) -> dict[str, Any]:
    rng = random.Random(f"{sample_seed}:{slot}")
    return {d.name: d.sample(rng) for d in space.dims}


def propose(
    space: Space, settings: BayesSettings, runs: Sequence[RunView], *, sample_seed: int, slot: int
) -> Proposal:
    """The point for `slot`: the same inputs give the same point, on any machine.

    Linear algebra runs on one BLAS thread: the matrices are small (at most a few hundred rows),
    where OpenBLAS's threads cost more than they give, and many times more on a loaded machine
    (measured: 2.7 s with 2 threads, 0.9 s with 1, for 1,000 results under a load of 13 on 2 cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _propose(space, settings, runs, sample_seed=sample_seed, slot=slot)


def _propose(
    space: Space, settings: BayesSettings, runs: Sequence[RunView], *, sample_seed: int, slot: int
) -> Proposal:
    runs = sorted(runs, key=lambda r: r.slot)  # slot order: the trust region replays the results in it
    seen, standin_ids = observations(settings, runs)
    encoded = {r.job_id: list(r.coords) if r.coords is not None else space.encode(r.point) for r in runs}
    obs = [(j, v) for j, v in seen.items() if encoded.get(j) is not None]
    sign = settings.sign
    if len(obs) < 2:
        observed = {j: sign * v for j, v in obs}
        return Proposal(_random_point(space, sample_seed, slot), "random", observed, standin_ids)
    # numpy and scipy only here: a runner or `spool status` that never proposes never loads them
    from spool.sweeps.bayes_search import model_choice

    standins = [j for j in standin_ids if encoded.get(j) is not None]
    x = [row for j, _ in obs if (row := encoded[j]) is not None]
    y = [v for _, v in obs]
    xs = [row for j in standins if (row := encoded[j]) is not None]
    coords, mean, std, acq = model_choice(space, x, y, xs, rng_seed=[sample_seed & 0xFFFFFFFF, slot])
    return Proposal(
        space.decode(coords),
        "gp",
        {j: sign * v for j, v in obs},
        standins,
        mean=float(sign * mean),
        std=float(std),
        acquisition=float(acq),
    )
