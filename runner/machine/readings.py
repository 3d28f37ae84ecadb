"""What the machine is doing now (load, power source, user idle), read per platform for the idle policy."""

from __future__ import annotations

import math
import os
import platform
import re
import time
from collections.abc import Callable, Mapping

from runner.machine.proc import Run, subprocess_run_default

__all__ = [
    "POWER_SUPPLY_DIR",
    "load1",
    "parse_linux_power",
    "read_linux_power",
    "parse_pmset",
    "on_ac_power",
    "parse_ioreg_idle",
    "parse_loginctl",
    "parse_loginctl_sessions",
    "parse_xprintidle",
    "user_idle_seconds",
]

TOOL_TIMEOUT = 10.0
POWER_SUPPLY_DIR = "/sys/class/power_supply"


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
