"""Idle policy: when a runner may start a job on a machine somebody also uses.

``IdlePolicy.allows(Readings)`` is pure: the runner reads the machine with ``read(policy)``
(only what the policy needs) and asks. Unknown readings are allowed, so a desktop without
a battery or a headless box without an idle clock still runs jobs; ``IdlePolicy.unknowns``
names what could not be read so the caller can warn once.

Each reading is a pure parser (fed captured text in tests) plus a thin reader with an
injectable ``run`` (``run(argv, timeout) -> (returncode, stdout, stderr)``) or folder; they
live in ``runner.machine.readings`` and are re-exported here:

- load: ``os.getloadavg()`` (None on Windows);
- AC power: Linux ``/sys/class/power_supply/*/{type,online,status,scope}``
  (``parse_linux_power``), macOS ``pmset -g batt`` (``parse_pmset``), Windows
  ``GetSystemPowerStatus``;
- user idle: macOS ``ioreg -c IOHIDSystem`` ``HIDIdleTime`` (``parse_ioreg_idle``), Linux
  ``xprintidle`` when ``DISPLAY`` is set (``parse_xprintidle``) else ``loginctl``
  (``parse_loginctl``), Windows ``GetLastInputInfo``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime

from runner.machine.proc import Run, subprocess_run_default
from runner.machine.readings import (
    POWER_SUPPLY_DIR,
    load1,
    on_ac_power,
    parse_ioreg_idle,
    parse_linux_power,
    parse_loginctl,
    parse_loginctl_sessions,
    parse_pmset,
    parse_xprintidle,
    read_linux_power,
    user_idle_seconds,
)
from spool.errors import ConfigError

__all__ = [
    "Readings",
    "IdlePolicy",
    "parse_hours",
    "format_hours",
    "in_hours",
    "load1",
    "parse_linux_power",
    "read_linux_power",
    "parse_pmset",
    "parse_ioreg_idle",
    "parse_loginctl",
    "parse_loginctl_sessions",
    "parse_xprintidle",
    "on_ac_power",
    "user_idle_seconds",
    "read",
]


@dataclass(frozen=True)
class Readings:
    """What the machine looks like now. None = could not be read (allowed)."""

    now: datetime
    load1: float | None = None
    on_ac: bool | None = None
    user_idle_s: float | None = None


# --------------------------------------------------------------------------- hours


_HOURS_RE = re.compile(r"^\s*(\d{1,2})(?::00)?\s*-\s*(\d{1,2})(?::00)?\s*$")


def parse_hours(text: str) -> tuple[int, int]:
    """``"22-07"`` -> ``(22, 7)``. Hours 0-23 (``24`` as an end means midnight, ``0``).

    ``"9-17"``: 09:00 <= t < 17:00; ``"22-07"``: t >= 22:00 or t < 07:00 (wraps midnight);
    equal start and end (``"0-24"``, ``"8-8"``): always.
    """
    m = _HOURS_RE.match(str(text))
    if not m:
        raise ConfigError(f"hours {text!r} must look like 22-07 or 9-17 (start-end, whole hours)")
    start, end = int(m.group(1)), int(m.group(2))
    if start > 23 or end > 24:
        raise ConfigError(f"hours {text!r}: hours run from 0 to 23 (24 only as an end)")
    return start, end % 24


def format_hours(hours: tuple[int, int]) -> str:
    return f"{hours[0]:02d}-{hours[1]:02d}"


def in_hours(hours: tuple[int, int], t: datetime | dtime) -> bool:
    start, end = hours
    h = t.hour
    if start == end:
        return True
    if start < end:
        return start <= h < end
    return h >= start or h < end


def _fmt(x: float) -> str:
    """3.2 -> "3.2", 2 -> "2.0", 2.04 -> "2.04"."""
    s = f"{x:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def _fmt_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _number(name: str, value: object, *, positive: bool) -> float:
    """A finite number, above 0 (``positive``) or at least 0; ConfigError otherwise."""
    bad = isinstance(value, bool) or not isinstance(value, (int, float, str))
    try:
        x = float(value) if not bad else math.nan  # type: ignore[arg-type]
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or (x <= 0 if positive else x < 0):
        raise ConfigError(f"{name} {value!r} must be a number {'above 0' if positive else '>= 0'}")
    return x


@dataclass(frozen=True)
class IdlePolicy:
    """Rules for an idle machine; every rule off by default."""

    max_load: float | None = None
    hours: tuple[int, int] | None = None
    on_ac_power: bool = False
    when_user_idle_min: float | None = None

    def __post_init__(self) -> None:
        if self.max_load is not None:
            object.__setattr__(self, "max_load", _number("max_load", self.max_load, positive=True))
        if self.hours is not None:
            h = tuple(self.hours) if isinstance(self.hours, (tuple, list)) else ()
            if len(h) != 2 or not all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 23 for x in h
            ):
                raise ConfigError(f"hours {self.hours!r} must be two whole hours 0-23")
            object.__setattr__(self, "hours", (int(h[0]), int(h[1])))
        if self.when_user_idle_min is not None:
            value = _number("when_user_idle_min", self.when_user_idle_min, positive=False)
            object.__setattr__(self, "when_user_idle_min", value)

    @classmethod
    def from_options(
        cls,
        *,
        max_load: float | None = None,
        hours: str | tuple[int, int] | None = None,
        on_ac_power: bool = False,
        when_user_idle_min: float | None = None,
    ) -> IdlePolicy:
        """Build from command-line or spool.toml values (``hours`` as ``"22-07"``)."""
        parsed = parse_hours(hours) if isinstance(hours, str) else hours
        return cls(
            max_load=max_load,
            hours=parsed,
            on_ac_power=bool(on_ac_power),
            when_user_idle_min=when_user_idle_min,
        )

    @property
    def needs_load(self) -> bool:
        return self.max_load is not None

    @property
    def needs_power(self) -> bool:
        return self.on_ac_power

    @property
    def needs_user_idle(self) -> bool:
        return self.when_user_idle_min is not None

    def allows(self, r: Readings) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, reason)``; the first rule that says no gives the reason."""
        if self.hours is not None and not in_hours(self.hours, r.now):
            return False, f"outside hours {format_hours(self.hours)} (now {r.now:%H:%M})"
        if self.max_load is not None and r.load1 is not None and r.load1 > self.max_load:
            return False, f"load {_fmt(r.load1)} > max {_fmt(self.max_load)}"
        if self.on_ac_power and r.on_ac is False:
            return False, "on battery power (runs only on AC power)"
        if self.when_user_idle_min is not None and r.user_idle_s is not None:
            need_s = self.when_user_idle_min * 60
            if r.user_idle_s < need_s:
                return False, (
                    f"user active {_fmt_duration(r.user_idle_s)} ago "
                    f"(needs {self.when_user_idle_min:g} min idle)"
                )
        return True, ""

    @property
    def yields_for(self) -> bool:
        """Whether any rule a running job yields to (`--yield`) is on: hours, power, user idle."""
        return self.hours is not None or self.on_ac_power or self.when_user_idle_min is not None

    def must_yield(self, r: Readings) -> str:
        """Why running jobs must give the machine back now, or "": the rules of `allows` but the
        load (a job's own load would stop it)."""
        ok, why = IdlePolicy(
            hours=self.hours, on_ac_power=self.on_ac_power, when_user_idle_min=self.when_user_idle_min
        ).allows(r)
        return "" if ok else why

    def unknowns(self, r: Readings) -> list[str]:
        """What the policy needs but could not be read (allowed anyway): warn once about these."""
        out = []
        if self.needs_load and r.load1 is None:
            out.append("load average unknown: max_load is not enforced")
        if self.needs_power and r.on_ac is None:
            out.append("power source unknown: on_ac_power is not enforced")
        if self.needs_user_idle and r.user_idle_s is None:
            out.append("user idle time unknown: when_user_idle_min is not enforced")
        return out


# --------------------------------------------------------------------------- all together


def read(
    policy: IdlePolicy,
    *,
    now: datetime | None = None,
    system: str | None = None,
    run: Run = subprocess_run_default,
    env: Mapping[str, str] | None = None,
    power_dir: str = POWER_SUPPLY_DIR,
    getloadavg: Callable[[], tuple[float, float, float]] | None = None,
    clock: Callable[[], float] = time.time,
) -> Readings:
    """Read only what ``policy`` needs; the rest stays None."""
    return Readings(
        now=now if now is not None else datetime.now(),
        load1=load1(getloadavg) if policy.needs_load else None,
        on_ac=on_ac_power(system=system, run=run, power_dir=power_dir) if policy.needs_power else None,
        user_idle_s=(
            user_idle_seconds(system=system, run=run, env=env, clock=clock)
            if policy.needs_user_idle
            else None
        ),
    )
