"""Idle policy: hours, load, power, user idle; readers fed captured outputs of each platform."""

from __future__ import annotations

import math
from datetime import datetime, time
from pathlib import Path

import pytest

from runner.machine.policy import (
    IdlePolicy,
    Readings,
    format_hours,
    in_hours,
    load1,
    on_ac_power,
    parse_hours,
    parse_ioreg_idle,
    parse_linux_power,
    parse_loginctl,
    parse_loginctl_sessions,
    parse_pmset,
    parse_xprintidle,
    read,
    read_linux_power,
    user_idle_seconds,
)
from spool.errors import ConfigError

# --------------------------------------------------------------------------- captured outputs

PMSET_AC = """\
Now drawing from 'AC Power'
 -InternalBattery-0 (id=4653155)	100%; charged; 0:00 remaining present: true
"""
PMSET_CHARGING = """\
Now drawing from 'AC Power'
 -InternalBattery-0 (id=4653155)	64%; charging; 1:12 remaining present: true
"""
PMSET_BATTERY = """\
Now drawing from 'Battery Power'
 -InternalBattery-0 (id=4653155)	87%; discharging; 5:12 remaining present: true
"""
PMSET_MAC_MINI = "Now drawing from 'AC Power'\n"
PMSET_UPS = "Now drawing from 'UPS Power'\n -CyberPower UPS (id=1234)\t98%; discharging\n"

IOREG = """\
+-o Root  <class IORegistryEntry, id 0x100000100, retain 30>
  +-o MacBookAir10,1  <class IOPlatformExpertDevice, id 0x100000110, registered, matched, active>
    +-o IOResources  <class IOResources, id 0x100000111, registered, matched, active, busy 0>
      +-o IOHIDSystem  <class IOHIDSystem, id 0x1000004b1, registered, matched, active, busy 0>
      | {
      |   "IOClass" = "IOHIDSystem"
      |   "HIDParameters" = {"HIDClickTime"=500000000,"HIDKeyRepeat"=83333333}
      |   "IOProviderClass" = "IOResources"
      |   "HIDIdleTime" = 754123456789
      |   "IOMatchCategory" = "IOHIDSystem"
      |   "HIDScrollAcceleration" = 20480
      | }
"""

NOW_US = 1_731_600_000_000_000  # wall clock in microseconds

LOGINCTL_IDLE = f"""\
IdleHint=yes
IdleSinceHint={NOW_US - 30 * 60 * 1_000_000}
Remote=no
Class=user
"""
LOGINCTL_ACTIVE = """\
IdleHint=no
IdleSinceHint=0
Remote=no
Class=user
"""
LOGINCTL_SSH = """\
IdleHint=no
IdleSinceHint=0
Remote=yes
Class=user
"""
LOGINCTL_GREETER = """\
IdleHint=no
IdleSinceHint=0
Remote=no
Class=greeter
"""
LIST_SESSIONS = """\
      2 1000 alice seat0 1432 user    tty2 no  -
     14 1000 alice -     9876 user    -    no  -
"""
LIST_SESSIONS_OLD = """\
         2   1000 alice            seat0
"""

# /sys/class/power_supply layouts
LAPTOP_ON_BATTERY = {
    "AC": {"type": "Mains", "online": "0"},
    "BAT0": {"type": "Battery", "status": "Discharging"},
}
LAPTOP_ON_AC = {
    "ADP1": {"type": "Mains", "online": "1"},
    "BAT0": {"type": "Battery", "status": "Charging"},
    "ucsi-source-psy-USBC000:001": {"type": "USB", "online": "0"},
}
LAPTOP_ON_AC_FULL = {
    "AC": {"type": "Mains", "online": "1\n"},
    "BAT0": {"type": "Battery", "status": "Full\n"},
}
LAPTOP_USBC_CHARGER = {
    "ucsi-source-psy-USBC000:001": {"type": "USB", "online": "1"},
    "BAT1": {"type": "Battery", "status": "Charging"},
}
THINKPAD_TWO_BATTERIES_ON_BATTERY = {
    "AC": {"type": "Mains", "online": "0"},
    "BAT0": {"type": "Battery", "status": "Discharging"},
    "BAT1": {"type": "Battery", "status": "Not charging"},
}
DESKTOP_NONE: dict[str, dict[str, str]] = {}
DESKTOP_WITH_WIRELESS_MOUSE = {
    "hidpp_battery_0": {"type": "Battery", "status": "Discharging", "scope": "Device"},
}
BATTERY_ONLY_FULL = {"BAT0": {"type": "Battery", "status": "Full"}}
BATTERY_ONLY_UNKNOWN = {"BAT0": {"type": "Battery", "status": "Unknown"}}


class FakeRun:
    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        assert isinstance(argv, list) and timeout > 0
        self.calls.append(argv)
        key = " ".join(argv)
        if argv[:2] == ["loginctl", "show-session"]:
            key = f"loginctl show-session {argv[2]}"
        return self.answers.get(key, (127, "", f"{argv[0]}: not found"))


AT = datetime(2025, 11, 14, 14, 5)


# --------------------------------------------------------------------------- hours


@pytest.mark.parametrize(
    "text, hours",
    [
        ("22-07", (22, 7)),
        ("9-17", (9, 17)),
        (" 09 - 17 ", (9, 17)),
        ("22:00-07:00", (22, 7)),
        ("0-24", (0, 0)),
        ("8-8", (8, 8)),
        ("0-23", (0, 23)),
    ],
)
def test_parse_hours(text: str, hours: tuple[int, int]) -> None:
    assert parse_hours(text) == hours


@pytest.mark.parametrize(
    "text", ["25-3", "abc", "", "9", "9-", "-9", "9-17-3", "24-3", "9:30-17", "-1-5", "9-25"]
)
def test_parse_hours_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="hours"):
        parse_hours(text)


def test_format_hours() -> None:
    assert format_hours((22, 7)) == "22-07" and format_hours((9, 17)) == "09-17"


@pytest.mark.parametrize(
    "hour, minute, inside",
    [
        (8, 59, False),
        (9, 0, True),
        (12, 0, True),
        (16, 59, True),
        (17, 0, False),
        (23, 0, False),
        (0, 0, False),
    ],
)
def test_day_window(hour: int, minute: int, inside: bool) -> None:
    assert in_hours((9, 17), time(hour, minute)) is inside


@pytest.mark.parametrize(
    "hour, minute, inside",
    [
        (21, 59, False),
        (22, 0, True),
        (23, 59, True),
        (0, 0, True),
        (3, 30, True),
        (6, 59, True),
        (7, 0, False),
        (12, 0, False),
    ],
)
def test_night_window_wraps_midnight(hour: int, minute: int, inside: bool) -> None:
    assert in_hours((22, 7), datetime(2025, 11, 14, hour, minute)) is inside


@pytest.mark.parametrize("hour", range(24))
def test_equal_start_and_end_is_always(hour: int) -> None:
    assert in_hours((8, 8), time(hour)) and in_hours((0, 0), time(hour))


# --------------------------------------------------------------------------- IdlePolicy.allows


def test_default_policy_allows_everything() -> None:
    p = IdlePolicy()
    assert p.allows(Readings(now=AT, load1=99.0, on_ac=False, user_idle_s=0.0)) == (True, "")
    assert not (p.needs_load or p.needs_power or p.needs_user_idle)


def test_hours_reason() -> None:
    p = IdlePolicy(hours=(22, 7))
    assert p.allows(Readings(now=AT)) == (False, "outside hours 22-07 (now 14:05)")
    assert p.allows(Readings(now=datetime(2025, 11, 14, 23, 30))) == (True, "")
    assert p.allows(Readings(now=datetime(2025, 11, 15, 6, 59))) == (True, "")
    assert p.allows(Readings(now=datetime(2025, 11, 15, 7, 0))) == (False, "outside hours 22-07 (now 07:00)")


@pytest.mark.parametrize(
    "load, ok, reason",
    [
        (0.5, True, ""),
        (2.0, True, ""),  # at the threshold is allowed
        (2.04, False, "load 2.04 > max 2.0"),
        (3.2, False, "load 3.2 > max 2.0"),
        (12.0, False, "load 12.0 > max 2.0"),
        (None, True, ""),  # unknown (Windows): allowed
    ],
)
def test_load_threshold(load: float | None, ok: bool, reason: str) -> None:
    assert IdlePolicy(max_load=2.0).allows(Readings(now=AT, load1=load)) == (ok, reason)


def test_load_reason_with_fractional_max() -> None:
    assert IdlePolicy(max_load=1.5).allows(Readings(now=AT, load1=1.75)) == (False, "load 1.75 > max 1.5")


@pytest.mark.parametrize("on_ac, ok", [(True, True), (False, False), (None, True)])
def test_power(on_ac: bool | None, ok: bool) -> None:
    result = IdlePolicy(on_ac_power=True).allows(Readings(now=AT, on_ac=on_ac))
    assert result == (ok, "" if ok else "on battery power (runs only on AC power)")
    # Without the rule, battery does not matter.
    assert IdlePolicy().allows(Readings(now=AT, on_ac=on_ac)) == (True, "")


@pytest.mark.parametrize(
    "idle_s, ok, reason",
    [
        (0.0, False, "user active 0s ago (needs 10 min idle)"),
        (45.0, False, "user active 45s ago (needs 10 min idle)"),
        (245.0, False, "user active 4m05s ago (needs 10 min idle)"),
        (599.9, False, "user active 9m59s ago (needs 10 min idle)"),
        (600.0, True, ""),
        (7200.0, True, ""),
        (math.inf, True, ""),
        (None, True, ""),
    ],
)
def test_user_idle(idle_s: float | None, ok: bool, reason: str) -> None:
    assert IdlePolicy(when_user_idle_min=10).allows(Readings(now=AT, user_idle_s=idle_s)) == (ok, reason)


def test_user_idle_reason_hours_and_fractional_minutes() -> None:
    p = IdlePolicy(when_user_idle_min=90)
    assert p.allows(Readings(now=AT, user_idle_s=3725)) == (
        False,
        "user active 1h02m ago (needs 90 min idle)",
    )
    p = IdlePolicy(when_user_idle_min=2.5)
    assert p.allows(Readings(now=AT, user_idle_s=60)) == (False, "user active 1m00s ago (needs 2.5 min idle)")


def test_first_failing_rule_gives_the_reason() -> None:
    p = IdlePolicy(max_load=1.0, hours=(22, 7), on_ac_power=True, when_user_idle_min=5)
    r = Readings(now=AT, load1=4.0, on_ac=False, user_idle_s=1.0)
    assert p.allows(r)[1].startswith("outside hours")
    r = Readings(now=datetime(2025, 11, 14, 23, 0), load1=4.0, on_ac=False, user_idle_s=1.0)
    assert p.allows(r)[1] == "load 4.0 > max 1.0"
    r = Readings(now=datetime(2025, 11, 14, 23, 0), load1=0.2, on_ac=False, user_idle_s=1.0)
    assert p.allows(r)[1] == "on battery power (runs only on AC power)"
    r = Readings(now=datetime(2025, 11, 14, 23, 0), load1=0.2, on_ac=True, user_idle_s=1.0)
    assert p.allows(r)[1] == "user active 1s ago (needs 5 min idle)"
    r = Readings(now=datetime(2025, 11, 14, 23, 0), load1=0.2, on_ac=True, user_idle_s=301.0)
    assert p.allows(r) == (True, "")


def test_unknowns_for_the_one_time_warning() -> None:
    p = IdlePolicy(max_load=1.0, on_ac_power=True, when_user_idle_min=5)
    assert p.unknowns(Readings(now=AT)) == [
        "load average unknown: max_load is not enforced",
        "power source unknown: on_ac_power is not enforced",
        "user idle time unknown: when_user_idle_min is not enforced",
    ]
    assert p.unknowns(Readings(now=AT, load1=0.1, on_ac=True, user_idle_s=5.0)) == []
    assert IdlePolicy().unknowns(Readings(now=AT)) == []


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"max_load": 0}, "max_load"),
        ({"max_load": -1.0}, "max_load"),
        ({"max_load": float("nan")}, "max_load"),
        ({"max_load": True}, "max_load"),
        ({"max_load": "lots"}, "max_load"),
        ({"max_load": [1]}, "max_load"),
        ({"hours": "22-07"}, "hours"),
        ({"hours": (True, 3)}, "hours"),
        ({"hours": (25, 3)}, "hours"),
        ({"hours": (1, 2, 3)}, "hours"),
        ({"hours": (-1, 3)}, "hours"),
        ({"when_user_idle_min": -5}, "when_user_idle_min"),
        ({"when_user_idle_min": float("inf")}, "when_user_idle_min"),
        ({"when_user_idle_min": "soon"}, "when_user_idle_min"),
    ],
)
def test_bad_policy_values(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        IdlePolicy(**kw)


def test_from_options() -> None:
    p = IdlePolicy.from_options(max_load=2, hours="22-07", on_ac_power=True, when_user_idle_min=10)
    assert p == IdlePolicy(max_load=2, hours=(22, 7), on_ac_power=True, when_user_idle_min=10)
    assert IdlePolicy.from_options(hours=(9, 17)).hours == (9, 17)
    assert IdlePolicy.from_options() == IdlePolicy()
    with pytest.raises(ConfigError):
        IdlePolicy.from_options(hours="25-3")


def test_numbers_from_text_are_accepted() -> None:
    p = IdlePolicy(max_load="2.5", when_user_idle_min="0")  # type: ignore[arg-type]
    assert p.max_load == 2.5 and p.when_user_idle_min == 0.0
    assert p.allows(Readings(now=AT, load1=2.6, user_idle_s=0.0)) == (False, "load 2.6 > max 2.5")


def test_policy_is_frozen() -> None:
    p = IdlePolicy(max_load=1.0)
    with pytest.raises(AttributeError):
        p.max_load = 2.0  # type: ignore[misc]


# --------------------------------------------------------------------------- load


def test_load1() -> None:
    assert load1(lambda: (1.5, 1.0, 0.5)) == 1.5

    def windows() -> tuple[float, float, float]:
        raise OSError("getloadavg unavailable")

    assert load1(windows) is None
    real = load1()
    assert real is None or real >= 0


# --------------------------------------------------------------------------- power


@pytest.mark.parametrize(
    "entries, expected",
    [
        (LAPTOP_ON_BATTERY, False),
        (LAPTOP_ON_AC, True),
        (LAPTOP_ON_AC_FULL, True),
        (LAPTOP_USBC_CHARGER, True),
        (THINKPAD_TWO_BATTERIES_ON_BATTERY, False),
        (DESKTOP_NONE, None),
        (DESKTOP_WITH_WIRELESS_MOUSE, None),
        ({**LAPTOP_ON_AC, **DESKTOP_WITH_WIRELESS_MOUSE}, True),
        (
            {
                **LAPTOP_ON_BATTERY,
                "hidpp_battery_0": {"type": "Battery", "status": "Charging", "scope": "Device"},
            },
            False,
        ),
        (BATTERY_ONLY_FULL, True),
        (BATTERY_ONLY_UNKNOWN, None),
        ({"AC": {"type": "Mains", "online": "0"}}, False),
        ({"AC": {"type": "Mains"}}, None),  # no online file: says nothing
    ],
)
def test_parse_linux_power(entries: dict, expected: bool | None) -> None:
    assert parse_linux_power(entries) is expected


def write_supplies(root: Path, entries: dict[str, dict[str, str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, files in entries.items():
        d = root / name
        d.mkdir()
        for fname, content in files.items():
            (d / fname).write_text(content + "\n")
        (d / "uevent").write_text("POWER_SUPPLY_NAME=" + name + "\n")
    return root


def test_read_linux_power_from_sysfs_layouts(tmp_path: Path) -> None:
    assert read_linux_power(str(write_supplies(tmp_path / "bat", LAPTOP_ON_BATTERY))) is False
    assert read_linux_power(str(write_supplies(tmp_path / "ac", LAPTOP_ON_AC))) is True
    assert read_linux_power(str(write_supplies(tmp_path / "desk", DESKTOP_NONE))) is None
    assert read_linux_power(str(tmp_path / "missing")) is None
    assert on_ac_power(system="Linux", power_dir=str(tmp_path / "ac")) is True


@pytest.mark.parametrize(
    "text, expected",
    [
        (PMSET_AC, True),
        (PMSET_CHARGING, True),
        (PMSET_BATTERY, False),
        (PMSET_MAC_MINI, True),
        (PMSET_UPS, False),
        ("", None),
    ],
)
def test_parse_pmset(text: str, expected: bool | None) -> None:
    assert parse_pmset(text) is expected


def test_on_ac_power_macos_through_pmset() -> None:
    run = FakeRun({"pmset -g batt": (0, PMSET_BATTERY, "")})
    assert on_ac_power(system="Darwin", run=run) is False
    assert run.calls == [["pmset", "-g", "batt"]]
    assert on_ac_power(system="Darwin", run=FakeRun({})) is None


def test_on_ac_power_elsewhere() -> None:
    # GetSystemPowerStatus: a bool on Windows, None anywhere else.
    assert on_ac_power(system="Windows") in (True, False, None)
    assert on_ac_power(system="FreeBSD") is None


# --------------------------------------------------------------------------- user idle


def test_parse_ioreg_idle() -> None:
    assert parse_ioreg_idle(IOREG) == pytest.approx(754.123456789)
    assert parse_ioreg_idle("nothing here") is None


def test_parse_loginctl() -> None:
    assert parse_loginctl(LOGINCTL_IDLE, NOW_US) == pytest.approx(1800.0)
    assert parse_loginctl(LOGINCTL_ACTIVE, NOW_US) == 0.0
    assert parse_loginctl("IdleHint=yes\nIdleSinceHint=0\n", NOW_US) is None
    assert parse_loginctl("IdleHint=yes\nIdleSinceHint=soon\n", NOW_US) is None
    assert parse_loginctl("", NOW_US) is None
    # Clock skew never gives a negative idle time.
    assert parse_loginctl(f"IdleHint=yes\nIdleSinceHint={NOW_US + 5_000_000}\n", NOW_US) == 0.0


def test_parse_loginctl_sessions() -> None:
    assert parse_loginctl_sessions(LIST_SESSIONS) == ["2", "14"]
    assert parse_loginctl_sessions(LIST_SESSIONS_OLD) == ["2"]
    assert parse_loginctl_sessions("SESSION UID USER\n  3 1000 bob\n\n1 sessions listed.\n") == ["3"]
    assert parse_loginctl_sessions("") == []


def test_parse_xprintidle() -> None:
    assert parse_xprintidle("123456\n") == 123.456
    assert parse_xprintidle("couldn't open display\n") is None


def test_user_idle_macos() -> None:
    run = FakeRun({"ioreg -c IOHIDSystem": (0, IOREG, "")})
    assert user_idle_seconds(system="Darwin", run=run) == pytest.approx(754.12, abs=0.01)
    assert user_idle_seconds(system="Darwin", run=FakeRun({})) is None


def test_user_idle_linux_xprintidle_when_display_set() -> None:
    run = FakeRun({"xprintidle": (0, "90000\n", "")})
    assert user_idle_seconds(system="Linux", run=run, env={"DISPLAY": ":0"}) == 90.0
    assert run.calls == [["xprintidle"]]


def test_user_idle_linux_xprintidle_missing_falls_back_to_loginctl() -> None:
    run = FakeRun(
        {
            "loginctl list-sessions --no-legend": (0, "      2 1000 alice seat0 1432 user tty2 no -\n", ""),
            "loginctl show-session 2": (0, LOGINCTL_IDLE, ""),
        }
    )
    idle = user_idle_seconds(system="Linux", run=run, env={"DISPLAY": ":0"}, clock=lambda: NOW_US / 1e6)
    assert idle == pytest.approx(1800.0)
    assert run.calls[0] == ["xprintidle"]
    assert run.calls[2] == [
        "loginctl",
        "show-session",
        "2",
        "-p",
        "IdleHint",
        "-p",
        "IdleSinceHint",
        "-p",
        "Remote",
        "-p",
        "Class",
    ]


def test_user_idle_linux_loginctl_takes_the_most_active_local_session() -> None:
    run = FakeRun(
        {
            "loginctl list-sessions --no-legend": (
                0,
                LIST_SESSIONS + "     20 0 gdm seat0 77 greeter - no -\n",
                "",
            ),
            "loginctl show-session 2": (0, LOGINCTL_IDLE, ""),
            "loginctl show-session 14": (0, LOGINCTL_SSH, ""),
            "loginctl show-session 20": (0, LOGINCTL_GREETER, ""),
        }
    )
    # The ssh session (active) and the greeter do not count: the person at the desk is idle 30 min.
    idle = user_idle_seconds(system="Linux", run=run, env={}, clock=lambda: NOW_US / 1e6)
    assert idle == pytest.approx(1800.0)
    assert ["xprintidle"] not in run.calls

    run.answers["loginctl show-session 14"] = (0, LOGINCTL_ACTIVE, "")
    assert user_idle_seconds(system="Linux", run=run, env={}, clock=lambda: NOW_US / 1e6) == 0.0


def test_user_idle_linux_nobody_at_the_machine() -> None:
    run = FakeRun(
        {
            "loginctl list-sessions --no-legend": (0, "     14 1000 alice - 9876 user - no -\n", ""),
            "loginctl show-session 14": (0, LOGINCTL_SSH, ""),
        }
    )
    assert user_idle_seconds(system="Linux", run=run, env={}) == math.inf
    run = FakeRun({"loginctl list-sessions --no-legend": (0, "", "")})
    assert user_idle_seconds(system="Linux", run=run, env={}) == math.inf


def test_user_idle_linux_unknown() -> None:
    # No systemd (this container), no DISPLAY: unknown.
    run = FakeRun({"loginctl list-sessions --no-legend": (1, "", "Failed to connect to bus: Host is down")})
    assert user_idle_seconds(system="Linux", run=run, env={}) is None
    # A local session whose idle time cannot be told.
    run = FakeRun(
        {
            "loginctl list-sessions --no-legend": (0, "2 1000 alice seat0\n", ""),
            "loginctl show-session 2": (0, "IdleHint=yes\nIdleSinceHint=0\nRemote=no\nClass=user\n", ""),
        }
    )
    assert user_idle_seconds(system="Linux", run=run, env={}) is None
    assert user_idle_seconds(system="FreeBSD", run=FakeRun({})) is None


# --------------------------------------------------------------------------- read


def test_read_collects_only_what_the_policy_needs() -> None:
    run = FakeRun({})
    r = read(IdlePolicy(), now=AT, run=run, getloadavg=lambda: (9.0, 0.0, 0.0))
    assert r == Readings(now=AT, load1=None, on_ac=None, user_idle_s=None)
    assert run.calls == []

    r = read(IdlePolicy(max_load=2.0), now=AT, run=run, getloadavg=lambda: (3.2, 0.0, 0.0))
    assert r.load1 == 3.2 and r.on_ac is None and r.user_idle_s is None and run.calls == []
    assert IdlePolicy(max_load=2.0).allows(r) == (False, "load 3.2 > max 2.0")


def test_read_on_a_macbook_on_battery() -> None:
    run = FakeRun({"pmset -g batt": (0, PMSET_BATTERY, ""), "ioreg -c IOHIDSystem": (0, IOREG, "")})
    policy = IdlePolicy(on_ac_power=True, when_user_idle_min=5)
    r = read(policy, now=AT, system="Darwin", run=run)
    assert r.on_ac is False and r.user_idle_s == pytest.approx(754.12, abs=0.01)
    assert policy.allows(r) == (False, "on battery power (runs only on AC power)")


def test_read_on_a_linux_laptop(tmp_path: Path) -> None:
    supplies = write_supplies(tmp_path / "ps", LAPTOP_ON_AC)
    run = FakeRun({"xprintidle": (0, "30000\n", "")})
    policy = IdlePolicy(on_ac_power=True, when_user_idle_min=1)
    r = read(policy, now=AT, system="Linux", run=run, env={"DISPLAY": ":0"}, power_dir=str(supplies))
    assert r.on_ac is True and r.user_idle_s == 30.0
    assert policy.allows(r) == (False, "user active 30s ago (needs 1 min idle)")


def test_read_on_this_machine_degrades_gracefully() -> None:
    policy = IdlePolicy(max_load=1000.0, hours=(0, 0), on_ac_power=True, when_user_idle_min=1)
    r = read(policy)
    assert isinstance(r.now, datetime)
    assert r.load1 is None or r.load1 >= 0
    assert r.on_ac in (True, False, None)
    assert r.user_idle_s is None or r.user_idle_s >= 0
    ok, reason = policy.allows(r)
    assert isinstance(ok, bool) and isinstance(reason, str)
