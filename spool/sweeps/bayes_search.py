"""The numeric half of `method: bayes`: fit the Gaussian process, draw candidates, pick the one
with the largest expected improvement. Split from `spool.sweeps.bayes` so that numpy and scipy
are imported only by a process that really proposes a modelled point (a runner's start and
every `spool` verb stay free of their import time)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spool.sweeps.encoding import Space
from spool.sweeps.gp import GaussianProcess, expected_improvement, fit_gp

__all__ = ["model_choice"]

_FIT_MAX = 80  # points the kernel is fitted on (O(n^3) per step of the fit)
_CONDITION_MAX = 200  # points the posterior is conditioned on
_N_RANDOM = 1536  # candidates drawn from the prior
_N_LOCAL = 512  # candidates near the best observations
_LOCAL_SCALES = (0.01, 0.05, 0.15)
_N_POLISH = 256  # candidates around the chosen one, at finer scales
_POLISH_SCALES = (0.001, 0.003, 0.01)


def _subset(y: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most `limit` rows: the best third by value, the rest drawn at random."""
    if len(y) <= limit:
        return np.arange(len(y))
    order = np.argsort(y, kind="stable")
    keep = order[: limit // 3]
    rest = rng.choice(order[limit // 3 :], size=limit - len(keep), replace=False)
    return np.sort(np.concatenate([keep, rest]))


def _candidates(space: Space, rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Random points of the prior plus perturbations of the five best, snapped to the space's
    values (integers, multiples of q, one category per categorical)."""
    wide = rng.random((_N_RANDOM, space.width))
    top = x[np.argsort(y, kind="stable")[:5]]
    base = top[rng.integers(0, len(top), _N_LOCAL)]
    scales = rng.choice(_LOCAL_SCALES, size=(_N_LOCAL, 1))
    near = np.clip(base + rng.normal(size=base.shape) * scales, 0.0, 1.0)
    for a, b in space.categorical_slices():  # a perturbed categorical keeps its value, or redraws
        redraw = rng.random(_N_LOCAL) < 0.2
        near[redraw, a:b] = rng.random((int(redraw.sum()), b - a))
    return _snap(space, np.vstack([wide, near]))


def _snap(space: Space, cand: np.ndarray) -> np.ndarray:
    """Candidates moved to the space's values: one category per categorical, integers and
    multiples of q where the distribution has them."""
    for a, b in space.categorical_slices():
        block = cand[:, a:b]
        hot = np.zeros_like(block)
        hot[np.arange(len(block)), np.argmax(block, axis=1)] = 1.0
        cand[:, a:b] = hot
    for d, (a, _b) in zip(space.searched, space.slices, strict=True):
        if d.distribution == "int_uniform" or d.distribution.startswith("q_"):
            one = Space([d])
            cand[:, a] = [one.encode(one.decode([u]))[0] for u in cand[:, a]]  # type: ignore[index]
    return cand


def _polish(space: Space, rng: np.random.Generator, chosen: np.ndarray) -> np.ndarray:
    """Candidates around the chosen one at scales finer than the first draw's, for a point
    proposed while others run (measured, it helps there; a sequential proposal keeps the first
    draw's point: docs/sweeps.md). A categorical keeps the chosen category."""
    scales = rng.choice(_POLISH_SCALES, size=(_N_POLISH, 1))
    near = np.clip(chosen + rng.normal(size=(_N_POLISH, len(chosen))) * scales, 0.0, 1.0)
    for a, b in space.categorical_slices():
        near[:, a:b] = chosen[a:b]
    return _snap(space, near)


def _model(x: np.ndarray, y: np.ndarray, xs: np.ndarray, rng: np.random.Generator) -> GaussianProcess:
    """Fit on a subset, condition on a larger one, then add the stand-ins at the predicted mean."""
    fit = _subset(y, _FIT_MAX, rng)
    gp = fit_gp(x[fit], y[fit])
    cond = _subset(y, _CONDITION_MAX, rng)
    if not np.array_equal(cond, fit):
        gp = gp.condition(x[cond], y[cond])
    if len(xs):
        believed, _ = gp.predict(xs)
        gp = gp.condition(np.vstack([x[cond], xs]), np.concatenate([y[cond], believed]))
    return gp


def model_choice(
    space: Space,
    x_rows: Sequence[Sequence[float]],
    y_vals: Sequence[float],
    standin_rows: Sequence[Sequence[float]],
    *,
    rng_seed: list[int],
) -> tuple[list[float], float, float, float]:
    """The encoded point to run next, with the model's mean, spread and acquisition there
    (values in the minimising sign); the same inputs give the same point on any machine."""
    rng = np.random.default_rng(rng_seed)
    x = np.array(x_rows)
    y = np.array(y_vals)
    xs = np.array(standin_rows).reshape(len(standin_rows), space.width)
    gp = _model(x, y, xs, rng)
    taken = {tuple(row) for row in (np.vstack([x, xs]) if len(xs) else x).tolist()}
    # the stand-ins count as results (the kriging believer): a point in flight whose predicted
    # mean beats the best result lowers the bar, so the next point does not land beside it
    best_y = min(float(y.min()), float(gp.predict(xs)[0].min())) if len(xs) else float(y.min())
    cand, mean, std, acq = _best_of(gp, _candidates(space, rng, x, y), best_y, taken)
    if not len(xs):  # sequential: no polish (docs/sweeps.md, "Parallel workers")
        return cand, mean, std, acq
    polished = _best_of(gp, _polish(space, rng, np.array(cand)), best_y, taken)
    if polished[3] > acq and tuple(polished[0]) not in taken:
        cand, mean, std, acq = polished
    return cand, mean, std, acq


def _best_of(
    gp: GaussianProcess, cand: np.ndarray, best_y: float, taken: set[tuple[float, ...]]
) -> tuple[list[float], float, float, float]:
    """The candidate with the largest expected improvement, a point already taken only when
    every candidate is one."""
    mean, std = gp.predict(cand)
    acq = expected_improvement(mean, std, best_y)
    dup = np.array([tuple(row) in taken for row in cand.tolist()])
    if dup.any() and not dup.all():
        acq = np.where(dup, -np.inf, acq)
    best = int(np.argmax(acq))
    return cand[best].tolist(), float(mean[best]), float(std[best]), float(acq[best])
