"""The numeric half of `method: bayes`: fit the Gaussian process, draw candidates, pick the one
with the largest expected improvement. A point proposed while others run draws its candidates
in a TuRBO-like trust region around the best of the results and of the points in flight at their
predicted means (docs/sweeps.md, "Parallel workers").
Split from `spool.sweeps.bayes` so that numpy and scipy are imported only by a process that
really proposes a modelled point (a runner's start and every `spool` verb stay free of their
import time)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spool.sweeps.encoding import Space
from spool.sweeps.gp import GaussianProcess, expected_improvement, fit_gp

__all__ = ["model_choice", "trust_length"]

_FIT_MAX = 80  # points the kernel is fitted on (O(n^3) per step of the fit)
_CONDITION_MAX = 200  # points the posterior is conditioned on
_N_RANDOM = 1536  # candidates drawn from the prior
_N_LOCAL = 512  # candidates near the best observations
_LOCAL_SCALES = (0.01, 0.05, 0.15)
_N_POLISH = 256  # candidates around the chosen one, at finer scales
_POLISH_SCALES = (0.001, 0.003, 0.01)
_N_BOX = 2048  # candidates in the trust region, for a point proposed while others run
_N_BOX_NEAR = 1024  # perturbations of the five best, kept in the trust region
_BOX_SCALES = (0.005, 0.02, 0.05, 0.15)
_TR_START, _TR_MIN, _TR_MAX = 0.8, 0.5**7, 1.6  # TuRBO's side lengths (Eriksson et al. 2019)
_TR_SUCCESSES = 3  # improvements in a row that double the side


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


def trust_length(y: Sequence[float], dims: int, batch: int) -> float:
    """TuRBO's side length, replayed over the results in slot order (so any process computes the
    same one from the folder): doubled after 3 results in a row that improve on the best by 0.1%,
    halved after TuRBO's failure tolerance, ceil(max(4, dims) / batch) batches of `batch` results,
    counted here in results; back to the start below the minimum (TuRBO restarts there)."""
    failures_allowed = batch * math.ceil(max(4, dims) / batch)
    length, best, wins, losses = _TR_START, float(y[0]), 0, 0
    for v in y[1:]:
        improved = v < best - 1e-3 * abs(best)
        wins, losses = (wins + 1, 0) if improved else (0, losses + 1)
        best = min(best, float(v))
        if wins == _TR_SUCCESSES:
            length, wins = min(2.0 * length, _TR_MAX), 0
        elif losses == failures_allowed:
            length, losses = length / 2.0, 0
        if length < _TR_MIN:
            length = _TR_START
    return length


def _box(
    space: Space,
    rng: np.random.Generator,
    gp: GaussianProcess,
    length: float,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Candidates in TuRBO's trust region, a box around the best of `y`, each side the trust
    length scaled by that coordinate's length scale over their geometric mean: drawn uniformly
    in it, plus perturbations of the five best kept inside it (the uniform draw alone spreads
    the points over the box and stops them closing in on a minimum: Hartmann-6 at 60 runs,
    docs/sweeps.md). The caller passes the results and the stand-ins at their predicted means,
    so the box sits where the believer puts the best: a point in flight that the model expects
    to beat the best is refined by the next one, as a sequential sweep would refine it."""
    ls = gp.length_scales
    half = 0.5 * length * ls / math.exp(float(np.mean(np.log(ls))))
    centre = x[int(np.argmin(y))]
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    wide = low + rng.random((_N_BOX, space.width)) * (high - low)
    scales = rng.choice(_BOX_SCALES, size=(_N_BOX_NEAR, 1))
    top = x[np.argsort(y, kind="stable")[:5]]
    base = top[rng.integers(0, len(top), _N_BOX_NEAR)]
    near = np.clip(base + rng.normal(size=base.shape) * scales, low, high)
    return np.vstack([_snap(space, wide), _snap(space, near)])


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
    rows = np.vstack([x, xs]) if len(xs) else x  # the results, then the points in flight
    taken = {tuple(row) for row in rows.tolist()}
    if not len(xs):  # sequential: no trust region, no polish (docs/sweeps.md, "Parallel workers")
        return _best_of(gp, _candidates(space, rng, x, y), float(y.min()), taken)
    # the stand-ins count as results (the kriging believer): a point in flight whose predicted
    # mean beats the best result lowers the bar, so the next point must beat that mean to show
    # an improvement (without it, the spot beside the point in flight keeps one of best - mean)
    believed = gp.predict(xs)[0]
    best_y = min(float(y.min()), float(believed.min()))
    # while others run: only candidates in the trust region, the workers being those in flight + 1;
    # its side replayed from the results, its place and perturbations from them and the believed
    length = trust_length(y.tolist(), x.shape[1], len(xs) + 1)
    box = _box(space, rng, gp, length, rows, np.concatenate([y, believed]))
    cand, mean, std, acq = _best_of(gp, box, best_y, taken)
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
