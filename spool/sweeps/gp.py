"""A small Gaussian process over the unit cube, in numpy and scipy, for the bayes proposer.

Matérn 5/2 kernel with one length scale per coordinate (ARD), an amplitude and a noise term,
fitted by maximising the log marginal likelihood (with a log-normal prior on the length scales,
so a handful of points cannot drive them to the bounds) with L-BFGS-B and the exact gradient.
Observations are standardised first. Why not scikit-learn's `GaussianProcessRegressor`
(W&B's choice): see docs/sweeps.md, "Choosing the model" (import time and a proposal's time,
measured by bench/bench_bayes.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import ndtr

__all__ = ["GaussianProcess", "fit_gp", "expected_improvement"]

_SQRT5 = math.sqrt(5.0)
_JITTER = 1e-8
_LS_BOUNDS = (math.log(0.01), math.log(20.0))
_AMP_BOUNDS = (math.log(0.05), math.log(20.0))
_NOISE_BOUNDS = (math.log(1e-6), math.log(0.5))
# log length scale ~ N(log 0.4, 0.5): 95% between 0.15 and 1.07 of the cube's side until the data
# say otherwise. With sd 1.0, 4 workers at Hartmann-6@30 read 1.57x sequential, with 0.5 1.38x
# and sequential better too; 0.3 and a prior centred on 0.8 lost (docs/sweeps.md, a seventh pass)
_LS_PRIOR = (math.log(0.4), 0.5)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-coordinate squared differences, shape (d, len(a), len(b))."""
    return (a.T[:, :, None] - b.T[:, None, :]) ** 2


def _matern(d2: np.ndarray, ls: np.ndarray, amp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kernel matrix, its common factor for length-scale gradients, and r^2."""
    r2 = np.tensordot(1.0 / ls**2, d2, axes=1)
    r = np.sqrt(np.maximum(r2, 0.0))
    e = np.exp(-_SQRT5 * r)
    k = amp * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * e
    common = amp * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e
    return k, common, r2


def _neg_log_posterior(theta: np.ndarray, d2: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    d = d2.shape[0]
    ls, amp, noise = np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])
    k, common, _ = _matern(d2, ls, amp)
    n = len(y)
    k[np.diag_indices(n)] += noise + _JITTER
    try:
        factor = cho_factor(k, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    alpha = cho_solve(factor, y, check_finite=False)
    value = 0.5 * float(y @ alpha) + float(np.log(np.diag(factor[0])).sum()) + 0.5 * n * math.log(2 * math.pi)
    w = np.outer(alpha, alpha) - cho_solve(factor, np.eye(n), check_finite=False)
    grad = np.empty_like(theta)
    for j in range(d):
        grad[j] = -0.5 * float(np.sum(w * common * d2[j])) / ls[j] ** 2
    kf = k.copy()
    kf[np.diag_indices(n)] -= noise + _JITTER
    grad[d] = -0.5 * float(np.sum(w * kf))
    grad[d + 1] = -0.5 * float(np.trace(w)) * noise
    mean, sd = _LS_PRIOR
    z = (theta[:d] - mean) / sd
    value += 0.5 * float(z @ z)
    grad[:d] += z / sd
    return value, grad


def _cholesky(k: np.ndarray, noise: float) -> np.ndarray:
    """Cholesky factor of k plus noise on the diagonal, with more jitter while it is not positive
    definite (the same point twice, say: a repeated category, a stand-in on an observation)."""
    jitter = _JITTER
    for _ in range(6):
        try:
            return np.linalg.cholesky(k + np.eye(len(k)) * (noise + jitter))
        except np.linalg.LinAlgError:
            jitter *= 100.0
    return np.linalg.cholesky(k + np.eye(len(k)) * (noise + jitter))


@dataclass
class GaussianProcess:
    """A fitted model, conditioned on (x, y); predicts in the units of y."""

    length_scales: np.ndarray
    amplitude: float
    noise: float
    y_mean: float
    y_scale: float
    x: np.ndarray
    chol: np.ndarray
    alpha: np.ndarray

    def condition(self, x: np.ndarray, y: np.ndarray) -> GaussianProcess:
        """The same kernel conditioned on other data (the stand-ins of pending points added)."""
        d2 = _sq_dists(x, x)
        k, _, _ = _matern(d2, self.length_scales, self.amplitude)
        chol = _cholesky(k, self.noise)
        z = (y - self.y_mean) / self.y_scale
        alpha = cho_solve((chol, True), z, check_finite=False)
        return GaussianProcess(
            self.length_scales, self.amplitude, self.noise, self.y_mean, self.y_scale, x, chol, alpha
        )

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at `xs` (the latent function, noise left out)."""
        ks, _, _ = _matern(_sq_dists(xs, self.x), self.length_scales, self.amplitude)
        mean = ks @ self.alpha
        v = solve_triangular(self.chol, ks.T, lower=True, check_finite=False)
        var = np.maximum(self.amplitude - np.einsum("ij,ij->j", v, v), 1e-12)
        return mean * self.y_scale + self.y_mean, np.sqrt(var) * self.y_scale


def fit_gp(x: np.ndarray, y: np.ndarray) -> GaussianProcess:
    """Fit the kernel's hyperparameters to (x, y) and condition on them. Deterministic."""
    y_mean = float(np.mean(y))
    y_scale = float(np.std(y)) or 1.0
    z = (y - y_mean) / y_scale
    d = x.shape[1]
    d2 = _sq_dists(x, x)
    bounds = [_LS_BOUNDS] * d + [_AMP_BOUNDS, _NOISE_BOUNDS]
    best: tuple[float, np.ndarray] | None = None
    for ls0 in (0.2, 0.8):
        theta0 = np.array([math.log(ls0)] * d + [0.0, math.log(1e-3)])
        res = minimize(
            _neg_log_posterior,
            theta0,
            args=(d2, z),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 80},
        )
        if best is None or res.fun < best[0]:
            best = (float(res.fun), res.x)
    assert best is not None
    theta = best[1]
    gp = GaussianProcess(
        np.exp(theta[:d]),
        math.exp(theta[d]),
        math.exp(theta[d + 1]),
        y_mean,
        y_scale,
        x,
        np.empty((0, 0)),
        np.empty(0),
    )
    return gp.condition(x, y)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement below `best` (a minimisation), in the units of the metric."""
    std = np.maximum(std, 1e-12)
    z = (best - mean) / std
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return (best - mean) * ndtr(z) + std * pdf
