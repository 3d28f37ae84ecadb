"""A parameter space as the unit cube: each value encoded by its distribution's CDF, and back.

The Bayesian proposer models the metric over [0, 1]^k. A numeric parameter takes one
coordinate, `cdf(value)`; a categorical takes one coordinate per category (one-hot), so
categories are unordered and nothing about their order or their truthiness leaks into the
model (W&B encodes `False`, `0` and `""` as the first category and its categories as
ordered). Decoding a coordinate is the distribution's inverse CDF, then the distribution's
rounding: `int_uniform` and every `q_*` with an integer `q` (1 when `q` is omitted) give ints.
A uniform draw in the cube decodes to a draw from the prior, so random candidates in the cube
are random points of the sweep.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from spool.errors import SweepError
from spool.sweeps.expand import Dimension, quantize

__all__ = ["Space", "value_key"]

_STD = NormalDist()
_EDGE = 1e-9  # the open cube: inverse CDFs of normal laws are infinite at 0 and 1


def value_key(value: Any) -> str:
    """A key that tells `False`, `0`, `0.0` and `""` apart (Python's `==` does not)."""
    return f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def _clip(u: float) -> float:
    return min(max(u, _EDGE), 1.0 - _EDGE)


@dataclass(frozen=True)
class _Numeric:
    """One numeric dimension: value <-> one coordinate."""

    dim: Dimension

    def _span(self) -> tuple[float, float]:
        d = self.dim
        assert d.low is not None and d.high is not None
        if d.distribution.endswith("_values"):
            return math.log(d.low), math.log(d.high)
        return float(d.low), float(d.high)

    def _logged(self) -> bool:
        return "log" in self.dim.distribution and not self.dim.distribution.endswith("normal")

    def cdf(self, value: float) -> float:
        d = self.dim
        dist = d.distribution
        if dist == "int_uniform":
            assert isinstance(d.low, int) and isinstance(d.high, int)
            return (value - d.low + 0.5) / (d.high - d.low + 1)  # the middle of the value's bin
        if dist in ("normal", "q_normal"):
            return _clip(_STD.cdf((value - d.mu) / d.sigma)) if d.sigma > 0 else 0.5
        if dist in ("log_normal", "q_log_normal"):
            if value <= 0:
                return _EDGE
            return _clip(_STD.cdf((math.log(value) - d.mu) / d.sigma)) if d.sigma > 0 else 0.5
        lo, hi = self._span()
        if self._logged() and value <= 0:
            return 0.0
        x = math.log(value) if self._logged() else float(value)
        return 0.5 if hi == lo else min(max((x - lo) / (hi - lo), 0.0), 1.0)

    def ppf(self, u: float) -> Any:
        d = self.dim
        dist = d.distribution
        if dist == "int_uniform":
            assert isinstance(d.low, int) and isinstance(d.high, int)
            n = d.high - d.low + 1
            return d.low + min(int(u * n), n - 1)
        if dist in ("normal", "q_normal", "log_normal", "q_log_normal"):
            x = d.mu + d.sigma * _STD.inv_cdf(_clip(u))
            if "log" in dist:
                x = math.exp(min(x, 709.0))
            return quantize(x, d.q) if dist.startswith("q_") else x
        lo, hi = self._span()
        x = lo + min(max(u, 0.0), 1.0) * (hi - lo)
        if self._logged():
            x = math.exp(x)
        if dist.startswith("q_"):  # as W&B and the random sampler: may round to within q/2 outside
            return quantize(x, d.q)
        low, high = self._bounds()
        if u >= 1.0 or x >= high:  # the bound itself, not exp(log(0.03)) = 0.029999999999999995
            return high
        return low if u <= 0.0 or x <= low else x

    def _bounds(self) -> tuple[float, float]:
        """min and max as values (`log_uniform` and `q_log_uniform` give them as natural logs)."""
        d = self.dim
        assert d.low is not None and d.high is not None
        if d.distribution in ("log_uniform", "q_log_uniform"):
            return math.exp(d.low), math.exp(d.high)
        return d.low, d.high


class Space:
    """The swept dimensions of a sweep (constants are not searched) as coordinates of a cube."""

    def __init__(self, dims: Sequence[Dimension]):
        self.dims = list(dims)
        self.searched = [d for d in self.dims if d.distribution != "constant"]
        if not self.searched:
            raise SweepError("a bayes sweep needs at least one parameter that varies", field="parameters")
        self.slices: list[tuple[int, int]] = []
        start = 0
        for d in self.searched:
            width = len(d.values) if d.distribution == "categorical" else 1
            self.slices.append((start, start + width))
            start += width
        self.width = start
        self._coders = {d.name: _Numeric(d) for d in self.searched if d.distribution != "categorical"}
        self._keys = {
            d.name: {value_key(v): i for i, v in enumerate(d.values)}
            for d in self.searched
            if d.distribution == "categorical"
        }

    def encode(self, point: dict[str, Any]) -> list[float] | None:
        """The point's coordinates; None if a value is missing or outside the space."""
        out: list[float] = []
        for d in self.searched:
            if d.name not in point:
                return None
            value = point[d.name]
            if d.distribution == "categorical":
                index = self._keys[d.name].get(value_key(value))
                if index is None:
                    return None
                out.extend(1.0 if i == index else 0.0 for i in range(len(d.values)))
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return None
            out.append(self._coders[d.name].cdf(value))
        return out

    def decode(self, coords: Sequence[float]) -> dict[str, Any]:
        """The point at these coordinates (a categorical takes its largest coordinate; ties: first)."""
        point: dict[str, Any] = {}
        for d, (a, b) in zip(self.searched, self.slices, strict=True):
            if d.distribution == "categorical":
                block = list(coords[a:b])
                point[d.name] = d.values[block.index(max(block))]
            else:
                point[d.name] = self._coders[d.name].ppf(float(coords[a]))
        for d in self.dims:
            if d.distribution == "constant":
                point[d.name] = d.value
        return {d.name: point[d.name] for d in self.dims}

    def categorical_slices(self) -> list[tuple[int, int]]:
        return [s for d, s in zip(self.searched, self.slices, strict=True) if d.distribution == "categorical"]
