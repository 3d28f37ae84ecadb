"""Expand a sweep's parameter space into points: one params dict per job.

Pure code: no files, no clock. `plan_from_flags` reads the `spool sweep` flags and
`spool.sweeps.wandb.plan_from_wandb` reads a W&B sweep file; both build `Dimension`s and call
`expand_points`, which counts a grid before building it, so a huge grid is refused at once.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spool.errors import SweepError

__all__ = [
    "DISTRIBUTIONS",
    "Dimension",
    "SweepPlan",
    "dims_from_flags",
    "expand_points",
    "format_points",
    "plan_from_flags",
    "quantize",
]

_RANGED = frozenset({"int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values"}) | {
    "q_log_uniform",
    "q_log_uniform_values",
}
_GAUSSIAN = frozenset({"normal", "q_normal", "log_normal", "q_log_normal"})
_QUANTIZED = frozenset({"q_uniform", "q_log_uniform", "q_log_uniform_values", "q_normal", "q_log_normal"})
DISTRIBUTIONS = frozenset({"constant", "categorical"}) | _RANGED | _GAUSSIAN
_GRIDDABLE = frozenset({"constant", "categorical", "int_uniform", "q_uniform"})
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_MAX_LOG = 709.0  # math.exp overflows above this


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep definition expands to; the CLI turns each point into one job."""

    script: str | None
    method: str
    points: list[dict[str, Any]]
    seeds: int = 1
    metric: dict[str, str] | None = None
    args: list[str] = field(default_factory=list)
    contract: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    description: str | None = None
    early_terminate: dict[str, Any] | None = None  # checked, with W&B's defaults filled in
    notes: list[str] = field(default_factory=list)  # said once when the sweep is made
    adaptive: dict[str, Any] | None = None  # method bayes: metric, run_cap, space (no points)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _dec(x: int | float) -> Decimal:
    return Decimal(repr(x))


def _q_multiple(k: int, q: int | float) -> int | float:
    """k * q, exact in decimal (3 * 0.1 is 0.3), an int when q is an int."""
    if isinstance(q, int):
        return k * q
    return float(Decimal(k) * _dec(q))


def quantize(x: float, q: int | float) -> int | float:
    """x rounded to a multiple of q, exact in decimal; an int when q is an int (q = 1 by default)."""
    return _q_multiple(round(x / q), q)


@dataclass(frozen=True)
class Dimension:
    """One swept parameter, in the W&B vocabulary (`low`/`high` are W&B's `min`/`max`)."""

    name: str
    distribution: str
    value: Any = None
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] | None = None
    low: int | float | None = None
    high: int | float | None = None
    q: int | float = 1
    mu: int | float = 0.0
    sigma: int | float = 1.0

    def __post_init__(self) -> None:
        self._check()

    def _error(self, message: str) -> SweepError:
        return SweepError(message, field=self.name)

    def _check(self) -> None:
        dist = self.distribution
        if dist not in DISTRIBUTIONS:
            known = ", ".join(sorted(DISTRIBUTIONS))
            raise self._error(f"unknown distribution {dist!r} (supported: {known})")
        if dist == "categorical":
            if not self.values:
                raise self._error("`values` is empty")
            if self.probabilities is not None:
                probs = self.probabilities
                if len(probs) != len(self.values):
                    raise self._error(f"{len(probs)} probabilities for {len(self.values)} values")
                if not all(_is_number(p) and p >= 0 for p in probs) or sum(probs) <= 0:
                    raise self._error("probabilities must be numbers >= 0 with a positive sum")
        if dist in _RANGED:
            for key, bound in (("min", self.low), ("max", self.high)):
                if not _is_number(bound):
                    raise self._error(f"{key} must be a number, got {bound!r}")
            assert self.low is not None and self.high is not None
            if self.low > self.high:
                raise self._error(f"min {self.low} is greater than max {self.high}")
            if dist == "int_uniform" and not (isinstance(self.low, int) and isinstance(self.high, int)):
                raise self._error("int_uniform needs integer min and max")
            if dist.endswith("_values") and self.low <= 0:
                raise self._error(f"{dist} needs min and max > 0, got min {self.low}")
            if dist in ("log_uniform", "q_log_uniform") and self.high > _MAX_LOG:
                raise self._error(f"{dist} takes natural logs as min/max; exp({self.high}) overflows")
        if dist in _QUANTIZED and not (_is_number(self.q) and self.q > 0):
            raise self._error(f"q must be a number > 0, got {self.q!r}")
        if dist in _GAUSSIAN:
            if not _is_number(self.mu):
                raise self._error(f"mu must be a number, got {self.mu!r}")
            if not (_is_number(self.sigma) and self.sigma >= 0):
                raise self._error(f"sigma must be a number >= 0, got {self.sigma!r}")

    def _q_range(self) -> tuple[int, int]:
        assert self.low is not None and self.high is not None
        return math.ceil(_dec(self.low) / _dec(self.q)), math.floor(_dec(self.high) / _dec(self.q))

    def grid_size(self) -> int:
        """How many values a grid takes from this dimension; SweepError if it cannot be gridded."""
        dist = self.distribution
        if dist not in _GRIDDABLE:
            raise self._error(
                f"distribution {dist!r} is continuous and cannot be gridded; "
                "use method random or list the values"
            )
        if dist == "constant":
            return 1
        if dist == "categorical":
            if self.probabilities is not None:
                raise self._error("probabilities cannot be used in a grid")
            return len(self.values)
        if dist == "int_uniform":
            assert isinstance(self.low, int) and isinstance(self.high, int)
            return self.high - self.low + 1
        first, last = self._q_range()
        if last < first:
            raise self._error(f"no multiple of q={self.q} lies between min and max")
        return last - first + 1

    def grid_value(self, index: int) -> Any:
        """The index-th grid value (0 <= index < grid_size())."""
        if self.distribution == "constant":
            return self.value
        if self.distribution == "categorical":
            return self.values[index]
        if self.distribution == "int_uniform":
            assert isinstance(self.low, int)
            return self.low + index
        return _q_multiple(self._q_range()[0] + index, self.q)

    def sample(self, rng: random.Random) -> Any:
        """One random draw; constants draw nothing from `rng`."""
        dist, low, high = self.distribution, self.low, self.high
        if dist == "constant":
            return self.value
        if dist == "categorical":
            if self.probabilities is None:
                return rng.choice(self.values)
            return rng.choices(self.values, weights=self.probabilities)[0]
        if dist in _GAUSSIAN:
            x = rng.gauss(self.mu, self.sigma)
            if "log" in dist:
                x = math.exp(x)
            return quantize(x, self.q) if dist in _QUANTIZED else x
        assert low is not None and high is not None
        if dist == "int_uniform":
            assert isinstance(low, int) and isinstance(high, int)
            return rng.randint(low, high)
        if dist.endswith("_values"):
            x = math.exp(rng.uniform(math.log(low), math.log(high)))
        elif "log" in dist:
            x = math.exp(rng.uniform(low, high))
        else:
            x = rng.uniform(low, high)
        return quantize(x, self.q) if dist in _QUANTIZED else x


def _grid_count(dims: Sequence[Dimension]) -> int:
    return math.prod(d.grid_size() for d in dims)


def expand_points(
    dims: Sequence[Dimension],
    method: str,
    *,
    count: int | None = None,
    seeds: int = 1,
    sample_seed: int = 0,
    max_points: int | None = 100_000,
    fixed: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Points of a grid (the first dimension varies slowest; `count` keeps the first `count`)
    or `count` random draws; then `fixed` params, then `seed=0..seeds-1` (varying fastest)
    when `seeds` > 1. Refuses more than `max_points` points before building any."""
    fixed = dict(fixed or {})
    names = [d.name for d in dims]
    for name in names + list(fixed):
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise SweepError(f"bad parameter name {name!r}", field=str(name))
    for i, name in enumerate(names):
        if name in names[:i] or name in fixed:
            raise SweepError("parameter given twice", field=name)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise SweepError(f"seeds must be an integer >= 1, got {seeds!r}", field="seeds")
    if seeds > 1 and "seed" in [*names, *fixed]:
        raise SweepError("`seed` is set by --seeds and cannot also be a parameter", field="seed")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise SweepError(f"the number of points must be an integer >= 1, got {count!r}", field="count")
    if method == "grid":
        base = _grid_count(dims)
        if count is not None:
            base = min(base, count)
    elif method == "random":
        if count is None:
            raise SweepError("a random sweep needs a number of points", field="count")
        base = count
    else:
        raise SweepError(f"unknown method {method!r} (supported: grid, random)", field="method")
    total = base * seeds
    if max_points is not None and total > max_points:
        raise SweepError(
            f"the sweep has {total} points, more than the limit of {max_points}; pass --yes to allow it"
        )
    points: list[dict[str, Any]] = []
    if method == "grid":
        sizes = [d.grid_size() for d in dims]
        for i in range(base):
            indices = []
            for size in reversed(sizes):
                i, index = divmod(i, size)
                indices.append(index)
            indices.reverse()
            points.append({d.name: d.grid_value(k) for d, k in zip(dims, indices, strict=True)})
    else:
        rng = random.Random(sample_seed)
        try:
            points = [{d.name: d.sample(rng) for d in dims} for _ in range(base)]
        except OverflowError:
            raise SweepError("a sampled value is too large for a float; lower mu, sigma or max")
    points = [{**p, **fixed} for p in points]
    if seeds > 1:
        points = [{**p, "seed": s} for p in points for s in range(seeds)]
    return points


def _parse_scalar(text: str) -> Any:
    """A JSON number, bool, null or string where the text parses as one, else the text."""

    def no_constants(word: str) -> Any:
        raise ValueError(word)

    try:
        value = json.loads(text, parse_constant=no_constants)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float, str)) else text


def _split(text: str, flag: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not _NAME_RE.match(name):
        raise SweepError(f"{flag} expects NAME=SPEC with a parameter name, got {text!r}", field=flag)
    return name, spec


def _parse_values(text: str, flag: str) -> tuple[str, list[Any]]:
    name, spec = _split(text, flag)
    words = [w.strip() for w in spec.split(",")]
    if any(w == "" for w in words):
        raise SweepError(f"{flag} {text!r}: empty value (write NAME=V1,V2,...)", field=name)
    return name, [_parse_scalar(w) for w in words]


def _parse_range(text: str, flag: str, integer: bool) -> tuple[str, int | float, int | float]:
    name, spec = _split(text, flag)
    parts = spec.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(spec)
        low, high = (int(p) if integer else float(p) for p in parts)
    except ValueError:
        kind = "integers" if integer else "numbers"
        raise SweepError(f"{flag} expects NAME=MIN:MAX with {kind}, got {text!r}", field=name)
    return name, low, high


def dims_from_flags(
    grid: list[str],
    uniform: list[str],
    log_uniform: list[str],
    int_uniform: list[str],
    choice: list[str],
    *,
    ranges: bool,
) -> tuple[list[Dimension], dict[str, Any]]:
    """The dimensions the `spool sweep` flags name, and the same space as W&B `parameters`.
    `--grid` and `--choice` give categoricals; ranges are refused unless `ranges`."""
    dims: list[Dimension] = []
    parameters: dict[str, Any] = {}
    for flag, items in (("--grid", grid), ("--choice", choice)):
        for text in items:
            name, values = _parse_values(text, flag)
            dims.append(Dimension(name, "categorical", values=tuple(values)))
            parameters[name] = {"values": values}
    kinds = (
        ("--uniform", uniform, "uniform"),
        ("--log-uniform", log_uniform, "log_uniform_values"),
        ("--int-uniform", int_uniform, "int_uniform"),
    )
    for flag, items, dist in kinds:
        for text in items:
            name, low, high = _parse_range(text, flag, integer=dist == "int_uniform")
            if not ranges:
                raise SweepError(
                    f"{flag} {text}: a range cannot be gridded; add --random N to sample N points",
                    field=name,
                )
            dims.append(Dimension(name, dist, low=low, high=high))
            parameters[name] = {"distribution": dist, "min": low, "max": high}
    return dims, parameters


def plan_from_flags(
    script: str,
    grid: list[str],
    random_n: int | None,
    uniform: list[str],
    log_uniform: list[str],
    int_uniform: list[str],
    choice: list[str],
    seeds: int,
    fixed: dict[str, Any],
    sample_seed: int,
    max_points: int | None = 100_000,
) -> SweepPlan:
    """Plan a sweep from `spool sweep` flags.

    Without `random_n`: the cartesian product of `--grid` then `--choice` values (first flag
    varies slowest); ranges are refused. With `random_n`: that many draws, values picked
    uniformly and ranges sampled. `definition` is the same space in the W&B dialect.
    """
    ranged = random_n is not None
    dims, parameters = dims_from_flags(grid, uniform, log_uniform, int_uniform, choice, ranges=ranged)
    if not dims and seeds <= 1:
        raise SweepError("nothing to sweep: give --grid, --choice, a range or --seeds K")
    method = "grid" if random_n is None else "random"
    points = expand_points(
        dims,
        method,
        count=random_n,
        seeds=seeds,
        sample_seed=sample_seed,
        max_points=max_points,
        fixed=fixed,
    )
    for key, value in fixed.items():
        parameters[key] = {"value": value}
    definition: dict[str, Any] = {"program": script, "method": method, "parameters": parameters}
    if random_n is not None:
        definition["run_cap"] = random_n
    return SweepPlan(
        script=script, method=method, points=points, seeds=seeds, definition=definition, contract=None
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def format_points(points: Sequence[Mapping[str, Any]]) -> str:
    """A readable table of points, one row a point, numbers right-aligned (for --dry-run)."""
    if not points:
        return "(no points)"
    columns: list[str] = []
    for point in points:
        columns.extend(k for k in point if k not in columns)
    header = ["#", *columns]
    rows = [[str(i), *(_cell(p[k]) if k in p else "-" for k in columns)] for i, p in enumerate(points)]
    widths = [max(len(row[j]) for row in (header, *rows)) for j in range(len(header))]
    numeric = [True] + [
        all(isinstance(p[k], (int, float)) and not isinstance(p[k], bool) for p in points if k in p)
        for k in columns
    ]
    lines = []
    for row in (header, *rows):
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
