"""Idle policy: when a runner may start a job on a machine somebody also uses.

``IdlePolicy.allows(Readings)`` is pure: the runner reads the machine with ``read(policy)``
(only what the policy needs) and asks. Unknown readings are allowed, so a desktop without
a battery or a headless box without an idle clock still runs jobs; ``IdlePolicy.unknowns``
names what could not be read so the caller can warn once.

Each reading is a pure parser (fed captured text in tests) plus a thin reader with an
injectable ``run`` (``run(argv, timeout) -> (returncode, stdout, stderr)``) or folder:

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
import os
import platform
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime

from runner.capabilities import Run, subprocess_run_default
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

TOOL_TIMEOUT = 10.0
POWER_SUPPLY_DIR = "/sys/class/power_supply"


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


# --------------------------------------------------------------------------- load


def load1(getloadavg: Callable[[], tuple[float, float, float]] | None = None) -> float | None:
    """One-minute load average; None where there is none (Windows)."""
    try:
        fn = getloadavg if getloadavg is not None else os.getloadavg
        return float(fn()[0])
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- power


_MAINS_TYPES = {"mains", "usb", "usb_c", "usb_pd", "usb_pd_drp", "usb_dcp", "usb_cdp", "usb_aca", "wireless"}


def parse_linux_power(entries: Mapping[str, Mapping[str, str]]) -> bool | None:
    """On AC power from ``/sys/class/power_supply``: supply name -> {file name: content}.

    Files used: ``type``, ``online``, ``status``, ``scope``. Supplies with ``scope`` Device
    (a wireless mouse's battery) say nothing about the machine and are ignored.
    1. a Mains/USB supply online -> True;
    2. a battery Discharging -> False (ThinkPads show the idle second battery as
       "Not charging" while the first discharges);
    3. a battery Charging, Full or Not charging -> True;
    4. Mains/USB supplies present, all offline -> False;
    5. nothing known (a desktop) -> None.
    """
    mains: list[bool] = []
    statuses: list[str] = []
    for files in entries.values():
        f = {k.lower(): str(v).strip() for k, v in files.items()}
        if f.get("scope", "").lower() == "device":
            continue
        kind = f.get("type", "").lower()
        if kind in _MAINS_TYPES and "online" in f:
            mains.append(f["online"] not in ("", "0"))
        elif kind == "battery":
            statuses.append(f.get("status", "").lower())
    if any(mains):
        return True
    if "discharging" in statuses:
        return False
    if any(s in ("charging", "full", "not charging") for s in statuses):
        return True
    if mains:
        return False
    return None


def read_linux_power(root: str = POWER_SUPPLY_DIR) -> bool | None:
    """Read ``root/*/{type,online,status,scope}`` and decide with ``parse_linux_power``."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return None
    entries: dict[str, dict[str, str]] = {}
    for name in names:
        files: dict[str, str] = {}
        for fname in ("type", "online", "status", "scope"):
            try:
                with open(os.path.join(root, name, fname), encoding="utf-8", errors="replace") as fh:
                    files[fname] = fh.read().strip()
            except OSError:
                continue
        if files:
            entries[name] = files
    return parse_linux_power(entries)


def parse_pmset(text: str) -> bool | None:
    """``pmset -g batt``: "Now drawing from 'AC Power'" -> True, 'Battery Power' (or a UPS) -> False."""
    m = re.search(r"drawing from '([^']+)'", text)
    if not m:
        return None
    source = m.group(1).lower()
    if "ac power" in source:
        return True
    if "battery" in source or "ups" in source:
        return False
    return None


def _windows_on_ac() -> bool | None:
    try:
        import ctypes

        class SYSTEM_POWER_STATUS(ctypes.Structure):
            _fields_ = [
                ("ACLineStatus", ctypes.c_ubyte),
                ("BatteryFlag", ctypes.c_ubyte),
                ("BatteryLifePercent", ctypes.c_ubyte),
                ("SystemStatusFlag", ctypes.c_ubyte),
                ("BatteryLifeTime", ctypes.c_ulong),
                ("BatteryFullLifeTime", ctypes.c_ulong),
            ]

        status = SYSTEM_POWER_STATUS()
        if not ctypes.windll.kernel32.GetSystemPowerStatus(ctypes.byref(status)):  # type: ignore[attr-defined]
            return None
        return {0: False, 1: True}.get(status.ACLineStatus)
    except Exception:
        return None


def on_ac_power(
    *,
    system: str | None = None,
    run: Run = subprocess_run_default,
    power_dir: str = POWER_SUPPLY_DIR,
) -> bool | None:
    """True on AC, False on battery, None when unknown (a desktop, an unknown platform)."""
    sysname = (system if system is not None else platform.system()).lower()
    if sysname == "linux":
        return read_linux_power(power_dir)
    if sysname == "darwin":
        rc, out, _ = run(["pmset", "-g", "batt"], TOOL_TIMEOUT)
        return parse_pmset(out) if rc == 0 else None
    if sysname == "windows":
        return _windows_on_ac()
    return None


# --------------------------------------------------------------------------- user idle


def parse_ioreg_idle(text: str) -> float | None:
    """Seconds since the last input from ``ioreg -c IOHIDSystem`` (``HIDIdleTime`` is in ns)."""
    values = [int(v) for v in re.findall(r'"HIDIdleTime"\s*=\s*(\d+)', text)]
    if not values:
        return None
    return min(values) / 1e9


def _properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def parse_loginctl(text: str, now_us: float) -> float | None:
    """Seconds idle from ``loginctl show-session ID -p IdleHint -p IdleSinceHint``.

    ``IdleHint=no`` -> 0 (someone is using it). ``IdleHint=yes`` -> now minus
    ``IdleSinceHint`` (microseconds, wall clock). Anything else -> None.
    """
    props = _properties(text)
    hint = props.get("IdleHint", "").lower()
    if hint == "no":
        return 0.0
    if hint != "yes":
        return None
    try:
        since = int(props.get("IdleSinceHint", "0"))
    except ValueError:
        return None
    if since <= 0:
        return None
    return max(0.0, (now_us - since) / 1e6)


def parse_loginctl_sessions(text: str) -> list[str]:
    """Session ids from ``loginctl list-sessions --no-legend`` (first column)."""
    ids = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] not in ("SESSION",) and not line.strip().endswith("listed."):
            ids.append(parts[0])
    return ids


def parse_xprintidle(text: str) -> float | None:
    """Seconds from ``xprintidle`` (it prints milliseconds)."""
    s = text.strip()
    return int(s) / 1000 if s.isdigit() else None


def _loginctl_idle(run: Run, now_us: float) -> float | None:
    rc, out, _ = run(["loginctl", "list-sessions", "--no-legend"], TOOL_TIMEOUT)
    if rc != 0:
        return None
    idles: list[float] = []
    unknown = False
    for sid in parse_loginctl_sessions(out):
        rc, out, _ = run(
            [
                "loginctl",
                "show-session",
                sid,
                "-p",
                "IdleHint",
                "-p",
                "IdleSinceHint",
                "-p",
                "Remote",
                "-p",
                "Class",
            ],
            TOOL_TIMEOUT,
        )
        if rc != 0:
            continue
        props = _properties(out)
        # ssh sessions and greeters/background managers are not a person at the machine.
        if props.get("Remote", "no").lower() == "yes" or props.get("Class", "user").lower() not in (
            "user",
            "user-early",
        ):
            continue
        idle = parse_loginctl(out, now_us)
        if idle is None:
            unknown = True
        else:
            idles.append(idle)
    if not idles:
        if unknown:
            return None
        # loginctl works and nobody is logged in at the machine: nobody to disturb.
        return math.inf
    return min(idles)


def _windows_idle() -> float | None:
    try:
        import ctypes

        class LASTINPUTINFO(ctypes.Structure):
            _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]

        info = LASTINPUTINFO()
        info.cbSize = ctypes.sizeof(LASTINPUTINFO)
        if not ctypes.windll.user32.GetLastInputInfo(ctypes.byref(info)):  # type: ignore[attr-defined]
            return None
        ticks = ctypes.windll.kernel32.GetTickCount() & 0xFFFFFFFF  # type: ignore[attr-defined]
        return ((ticks - info.dwTime) & 0xFFFFFFFF) / 1000
    except Exception:
        return None


def user_idle_seconds(
    *,
    system: str | None = None,
    run: Run = subprocess_run_default,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> float | None:
    """Seconds since the person at the machine last touched it; None when unknown.

    ``math.inf`` when loginctl reports no local session at all.
    """
    sysname = (system if system is not None else platform.system()).lower()
    environ = env if env is not None else os.environ
    if sysname == "darwin":
        rc, out, _ = run(["ioreg", "-c", "IOHIDSystem"], TOOL_TIMEOUT)
        return parse_ioreg_idle(out) if rc == 0 else None
    if sysname == "linux":
        if environ.get("DISPLAY"):
            rc, out, _ = run(["xprintidle"], TOOL_TIMEOUT)
            if rc == 0:
                idle = parse_xprintidle(out)
                if idle is not None:
                    return idle
        return _loginctl_idle(run, clock() * 1e6)
    if sysname == "windows":
        return _windows_idle()
    return None


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
