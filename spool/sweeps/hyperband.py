"""Hyperband early termination, computed as W&B's own controller computes it (`wandb/sweeps`,
`hyperband_stopping.py`). Pure code: histories in, verdicts out; no files, no clock.

- Bands. `min_iter` form: `min_iter`, then the band times `eta`, again and again
  (`int(min_iter * eta**k)`); `max_iter` + `s` form: `max_iter` divided by `eta` up to `s`
  times, each `int()`-ed, while it stays >= 1, sorted. With both, `max_iter` wins (as in W&B).
- A run's history: its finite numeric values of `metric.name`, in the order they were
  logged (other keys, NaN, inf, strings and bools are skipped). Its iteration is the number of
  values so far. Signs are flipped for `goal: maximize`, so lower is always better here.
- Band b is reached once a run has more than b values; it is judged on `history[b]`, the
  value at 0-based index b (the (b+1)-th value): W&B's indexing, kept so that a W&B sweep
  file stops the same runs here as there.
- The threshold of band b: sort `history[b]` of every run that has reached b, in any state
  (running, finished, failed, stopped), and take the value at index `int(n / eta)`.
- Only running runs are judged, at the largest band they have reached. `strict: true` (the
  default) stops a run whose value at that band is worse than the threshold; `strict: false`
  one whose best value so far is worse. Equal to the threshold is not worse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spool.errors import SweepError

__all__ = ["Hyperband", "Verdict", "metric_values", "parse_early_terminate"]

_KEYS = frozenset({"type", "min_iter", "max_iter", "s", "eta", "strict"})
_MIN_ITER_BANDS = 100  # W&B makes this many bands in the min_iter form
_MAX_BAND = 2**53  # bands no history can reach are left out (and eta**k overflows a float)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _fail(key: str, message: str) -> SweepError:
    return SweepError(message, field=f"early_terminate.{key}" if key else "early_terminate")


def parse_early_terminate(spec: Any, metric: Mapping[str, Any] | None) -> dict[str, Any]:
    """An `early_terminate` block checked and filled with W&B's defaults (eta 3, strict true),
    as kept in the sweep's definition. Errors name the key."""
    if not isinstance(spec, Mapping):
        raise _fail("", "must be a mapping such as {type: hyperband, min_iter: 3}")
    for key in spec:
        if key not in _KEYS:
            raise _fail(str(key), f"unknown key {key!r} (hyperband takes {', '.join(sorted(_KEYS))})")
    if spec.get("type") != "hyperband":
        raise _fail("type", f"type must be hyperband, got {spec.get('type')!r}")
    if metric is None:
        raise SweepError("early_terminate needs a `metric` (its name and goal) to judge runs", field="metric")
    out: dict[str, Any] = {"type": "hyperband"}
    eta = spec.get("eta", 3)
    if not _is_number(eta) or eta <= 1:
        raise _fail("eta", f"eta must be a number > 1, got {eta!r}")
    strict = spec.get("strict", True)
    if not isinstance(strict, bool):
        raise _fail("strict", f"strict must be true or false, got {strict!r}")
    if "max_iter" in spec:
        max_iter, s = spec["max_iter"], spec.get("s")
        if not _is_int(max_iter) or max_iter < 1:
            raise _fail("max_iter", f"max_iter must be an integer >= 1, got {max_iter!r}")
        if s is None:
            raise _fail("s", "max_iter needs s (how many bands below max_iter), or use min_iter")
        if not _is_int(s) or s < 1:
            raise _fail("s", f"s must be an integer >= 1, got {s!r}")
        out.update(max_iter=max_iter, s=s)
    elif "min_iter" in spec:
        min_iter = spec["min_iter"]
        if not _is_int(min_iter) or min_iter < 1:
            raise _fail("min_iter", f"min_iter must be an integer >= 1, got {min_iter!r}")
        out["min_iter"] = min_iter
    else:
        raise _fail("", "hyperband needs min_iter, or max_iter and s")
    if "s" in spec and "max_iter" not in spec:
        s = spec["s"]
        if not _is_int(s) or s < 1:
            raise _fail("s", f"s must be an integer >= 1, got {s!r}")
    out.update(eta=eta, strict=strict)
    if not _bands(out):
        message = f"no band: max_iter {out['max_iter']} / eta {eta} is below 1; raise max_iter or lower eta"
        raise _fail("max_iter", message)
    return out


def _bands(cfg: Mapping[str, Any]) -> tuple[int, ...]:
    """The band iterations, ascending, without repeats (a repeat judges the same way)."""
    eta = cfg["eta"]
    bands: list[int] = []
    if "max_iter" in cfg:
        band: float = cfg["max_iter"]
        for _ in range(cfg["s"]):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
    else:
        band = cfg["min_iter"]
        for _ in range(_MIN_ITER_BANDS):
            if band > _MAX_BAND:
                break
            bands.append(int(band))
            band *= eta
    return tuple(sorted(set(bands)))


def metric_values(records: Iterable[Any], name: str) -> list[float]:
    """The finite numeric values of `name` in a run's records, in order: its history."""
    out: list[float] = []
    for rec in records:
        if isinstance(rec, Mapping):
            value: Any = rec.get(name)
            if _is_number(value):
                out.append(float(value))
    return out


@dataclass(frozen=True)
class Verdict:
    """The judgement of one running run, in the metric's own sign (not flipped)."""

    stop: bool
    band: int
    threshold: float
    value: float  # what was compared: the value at the band (strict) or the best so far
    iteration: int  # how many values the run had
    strict: bool

    def record(self) -> dict[str, Any]:
        """What result.json keeps of a stop (under `early_terminate`)."""
        return {
            "type": "hyperband",
            "band": self.band,
            "threshold": self.threshold,
            "value": self.value,
            "iteration": self.iteration,
            "strict": self.strict,
        }


@dataclass(frozen=True)
class Hyperband:
    """The rules of one sweep: its metric, goal, bands, eta and strictness."""

    metric: str
    maximize: bool
    bands: tuple[int, ...]
    eta: float
    strict: bool

    @classmethod
    def from_definition(cls, early_terminate: Mapping[str, Any], metric: Mapping[str, Any]) -> Hyperband:
        cfg = parse_early_terminate(early_terminate, metric)
        return cls(
            metric=str(metric["name"]),
            maximize=metric.get("goal") == "maximize",
            bands=_bands(cfg),
            eta=cfg["eta"],
            strict=cfg["strict"],
        )

    def _sign(self, x: float) -> float:
        return -x if self.maximize else x

    def thresholds(self, histories: Iterable[Sequence[float]]) -> list[float | None]:
        """Per band, the threshold (metric's own sign), None where no run has reached it yet."""
        hs = [h for h in histories if h]
        out: list[float | None] = []
        for band in self.bands:
            values = sorted(self._sign(h[band]) for h in hs if len(h) > band)
            if not values:
                out.append(None)
                continue
            out.append(self._sign(values[int((1.0 / self.eta) * len(values))]))
        return out

    def judge(self, history: Sequence[float], thresholds: Sequence[float | None]) -> Verdict | None:
        """A running run's verdict at the largest band it has reached; None before the first."""
        reached = [i for i, b in enumerate(self.bands) if b < len(history)]
        if not reached:
            return None
        i = reached[-1]
        band, threshold = self.bands[i], thresholds[i]
        if threshold is None:  # the run has reached the band, so it counts: only with a wrong list
            raise ValueError("thresholds computed without this run's history")
        best = self._sign(min(self._sign(v) for v in history))
        value = history[band] if self.strict else best
        stop = self._sign(value) > self._sign(threshold)
        return Verdict(stop, band, threshold, value, len(history), self.strict)

    def decide(self, history: Sequence[float], others: Iterable[Sequence[float]]) -> Verdict | None:
        """The verdict of one running run against every other run of the sweep (any state)."""
        return self.judge(history, self.thresholds([history, *others]))
