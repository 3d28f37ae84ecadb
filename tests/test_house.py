"""The house in practice: services, pausing, I/O priority, `spool doctor`, Slurm and HTCondor."""

from __future__ import annotations

import json
import os
import platform
import plistlib
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from runner_kit import proc_stat

import house.service_install as si
from house.cluster import (
    CONDOR_RUNNER_NAME,
    SLURM_RUNNER_NAME,
    SubmitError,
    condor_arguments,
    condor_submit_description,
    slurm_script,
    submit,
)
from house.doctor import (
    FAIL,
    OK,
    WARN,
    Check,
    check_clock,
    check_filesystem,
    check_git,
    check_rename,
    check_sync,
    check_torch,
    check_writable,
    describe_mount,
    find_mount,
    format_checks,
    numpy_too_new,
    parse_mount_output,
    parse_mountinfo,
    run_doctor,
)
from runner.machine.niceness import (
    IOPRIO_CLASS_BE,
    IOPRIO_WHO_PGRP,
    IOPRIO_WHO_PROCESS,
    get_io_priority,
    ioprio_value,
    lower_io_priority,
)
from runner.machine.pause import DEFAULT_RESUME_AFTER_S, Pauser, should_pause
from spool.api import Spool
from spool.cli.main import build_parser
from spool.errors import NotFound, UsageError

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

PY = "/home/ana/venvs/house/bin/python"
SPOOL = "/mnt/house-spool"
FLAGS = [
    "--python",
    "/home/ana/venvs/cu126/bin/python",
    "--slots",
    "2",
    "--tag",
    "cuda",
    "--max-load",
    "1.5",
    "--when-user-idle",
    "10",
    "--pause-when-busy",
]
ARGV = [PY, "-m", "spool.cli.main", "--spool", SPOOL, "runner", *FLAGS]
# the 2015 MacBook: a python.org 3.12 venv, the spool mounted from the desktop over NFS
MAC_PY = "/Users/ana/venvs/house/bin/python"
MAC_SPOOL = "/Volumes/house-spool"
MAC_FLAGS = ["--slots", "1", "--on-ac-power", "--when-user-idle", "15", "--pause-when-busy", "--nice", "15"]
MAC_ARGV = [MAC_PY, "-m", "spool.cli.main", "--spool", MAC_SPOOL, "runner", *MAC_FLAGS]


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path} (UPDATE_GOLDEN=1 writes it)"
    assert text == path.read_text(), f"{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"


# --------------------------------------------------------------------------- unit and plist


def test_systemd_unit_matches_golden_with_absolute_paths_and_exact_options() -> None:
    spec = si.ServiceSpec(PY, SPOOL, FLAGS)
    text = si.systemd_unit(spec)
    golden("housespool-runner.service", text)
    exec_start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    words = shlex.split(exec_start.removeprefix("ExecStart="))
    assert words == ARGV
    assert os.path.isabs(words[0]) and os.path.isabs(words[words.index("--spool") + 1])
    assert "WantedBy=default.target" in text and "Restart=on-failure" in text
    assert "ExecStop=/bin/kill -INT $MAINPID" in text and "KillMode=mixed" in text
    assert "\nDelegate=yes\n" in text  # a cgroup per job (runner.core.descendants)
    assert spec.unit == "housespool-runner.service"


def test_launchd_plist_matches_golden_with_absolute_paths_and_exact_options() -> None:
    spec = si.ServiceSpec(MAC_PY, MAC_SPOOL, MAC_FLAGS)
    text = si.launchd_plist(spec, Path("/Users/ana"))
    golden("org.housespool.runner.plist", text)
    doc = plistlib.loads(text.encode())
    assert doc["Label"] == "org.housespool.runner"
    assert doc["ProgramArguments"] == MAC_ARGV
    assert os.path.isabs(doc["ProgramArguments"][0]) and doc["ProgramArguments"][4] == MAC_SPOOL
    assert doc["WorkingDirectory"] == "/Users/ana"
    assert doc["RunAtLoad"] is True and doc["KeepAlive"] == {"SuccessfulExit": False}
    assert doc["StandardErrorPath"] == "/Users/ana/Library/Logs/housespool/org.housespool.runner.log"
    assert doc["StandardOutPath"] == doc["StandardErrorPath"]


def test_named_service_and_quoting() -> None:
    spec = si.ServiceSpec("/opt/my venv/bin/python", "/srv/spool 100%", ["--hours", "22-07"], name="gpu")
    assert spec.unit == "housespool-runner-gpu.service"
    assert spec.label == "org.housespool.runner.gpu"
    text = si.systemd_unit(spec)
    assert 'ExecStart="/opt/my venv/bin/python" -m' in text
    assert '"/srv/spool 100%%"' in text  # `%` is a systemd specifier: escaped
    assert si.systemd_quote("a$b") == '"a$$b"'
    assert si.systemd_quote('say "hi"') == '"say \\"hi\\""'
    assert plistlib.loads(si.launchd_plist(spec, Path("/Users/a")).encode())["ProgramArguments"][0] == (
        "/opt/my venv/bin/python"
    )


def test_runner_flags_are_exactly_the_options_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(
        ["runner", "install", "--slots", "2", "--scripts", "rel/scripts", "--tag", "a", "--tag", "b"]
        + ["--max-load", "1.5", "--hours", "22-07", "--on-ac-power", "--when-user-idle", "10"]
        + ["--pause-when-busy", "--nice", "5", "--exit-when-idle"]
    )
    assert args.action == "install"
    assert si.runner_flags(args) == [
        "--scripts",
        str(tmp_path / "rel" / "scripts"),
        "--slots",
        "2",
        "--tag",
        "a",
        "--tag",
        "b",
        "--max-load",
        "1.5",
        "--hours",
        "22-07",
        "--on-ac-power",
        "--when-user-idle",
        "10",
        "--pause-when-busy",
        "--nice",
        "5",
        "--exit-when-idle",
    ]
    assert si.runner_flags(build_parser().parse_args(["runner", "install"])) == []
    assert build_parser().parse_args(["runner", "--slots", "2"]).action == "run"


def test_every_runner_option_is_written_back() -> None:
    """A new `spool runner` option must be added to RUNNER_FLAGS, or a service would drop it."""
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    runner = sub.choices["runner"]
    known = {dest for dest, _flag, _kind in si.RUNNER_FLAGS}
    not_runner_options = {"help", "spool", "print_only", "action"}
    dests = {a.dest for a in runner._actions if a.option_strings} - not_runner_options
    assert dests <= known, f"runner options missing from RUNNER_FLAGS: {sorted(dests - known)}"
    flags = {flag for _dest, flag, _kind in si.RUNNER_FLAGS}
    assert flags <= {s for a in runner._actions for s in a.option_strings}


# --------------------------------------------------------------------------- install flows


class Recorder:
    """An injected command runner: records every argv, answers from a table (prefix match)."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]] | None = None):
        self.answers = answers or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        assert isinstance(argv, list) and all(isinstance(a, str) for a in argv) and timeout > 0
        self.calls.append(list(argv))
        best: tuple[str, ...] = ()
        for key in self.answers:
            if tuple(argv[: len(key)]) == key and len(key) > len(best):
                best = key
        return self.answers.get(best, (0, "", ""))


def env_for(tmp_path: Path, system: str, run: Recorder, said: list[str]) -> si.ServiceEnv:
    home = tmp_path / "home"
    return si.ServiceEnv(
        system=system,
        home=home,
        uid=501,
        user="ana",
        config_home=home / ".config",
        run=run,
        say=said.append,
    )


SC = ["systemctl", "--user"]
UNIT = "housespool-runner.service"


def test_systemd_install_writes_enables_starts_and_advises_linger(tmp_path: Path) -> None:
    run = Recorder({("loginctl",): (0, "Linger=no\n", "")})
    said: list[str] = []
    env = env_for(tmp_path, "linux", run, said)
    spec = si.ServiceSpec(PY, SPOOL, FLAGS)
    assert si.install(spec, env) == 0
    path = tmp_path / "home/.config/systemd/user" / UNIT
    assert path.read_text() == si.systemd_unit(spec)
    assert run.calls == [
        SC + ["--version"],
        SC + ["daemon-reload"],
        SC + ["enable", UNIT],
        SC + ["restart", UNIT],
        ["loginctl", "show-user", "ana", "--property=Linger"],
    ]
    text = "\n".join(said)
    assert f"journalctl --user -u {UNIT} -f" in text
    assert "sudo loginctl enable-linger ana" in text

    run2 = Recorder({("loginctl",): (0, "Linger=yes\n", "")})
    said2: list[str] = []
    si.install(spec, env_for(tmp_path, "linux", run2, said2))
    assert not any("enable-linger" in s for s in said2)


def test_systemd_install_fails_cleanly_without_a_user_manager(tmp_path: Path) -> None:
    run = Recorder({tuple(SC + ["daemon-reload"]): (1, "", "Failed to connect to bus: No medium found\n")})
    env = env_for(tmp_path, "linux", run, [])
    with pytest.raises(si.ServiceError, match="Failed to connect to bus") as info:
        si.install(si.ServiceSpec(PY, SPOOL, FLAGS), env)
    assert info.value.exit_code == 1
    assert not (tmp_path / "home/.config/systemd/user" / UNIT).exists()
    run = Recorder({tuple(SC): (127, "", "systemctl: not found")})
    with pytest.raises(si.ServiceError, match="does not use systemd"):
        si.install(si.ServiceSpec(PY, SPOOL, FLAGS), env_for(tmp_path, "linux", run, []))


def test_systemd_status_and_uninstall(tmp_path: Path) -> None:
    show = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=4242\n"
    run = Recorder({tuple(SC + ["show"]): (0, show, "")})
    said: list[str] = []
    env = env_for(tmp_path, "linux", run, said)
    spec = si.ServiceSpec(PY, SPOOL, FLAGS)
    si.install(spec, env)
    run.calls.clear()
    assert si.status(spec, env) == 0
    assert run.calls == [
        SC
        + ["show", UNIT, "-p", "LoadState", "-p", "ActiveState", "-p", "SubState"]
        + ["-p", "UnitFileState", "-p", "MainPID"]
    ]
    assert "active (running), pid 4242; enabled" in said[-2]

    run.answers[tuple(SC + ["show"])] = (
        0,
        show.replace("=active", "=failed").replace("running", "failed"),
        "",
    )
    assert si.status(spec, env) == 1

    run.calls.clear()
    said.clear()
    assert si.uninstall(spec, env) == 0
    assert run.calls == [SC + ["disable", "--now", UNIT], SC + ["daemon-reload"], SC + ["reset-failed", UNIT]]
    assert not (tmp_path / "home/.config/systemd/user" / UNIT).exists()
    assert said and said[0].startswith("uninstalled")

    run.answers[tuple(SC + ["show"])] = (0, "LoadState=not-found\nActiveState=inactive\n", "")
    said.clear()
    assert si.status(spec, env) == 1 and "not installed" in said[0]
    said.clear()
    assert si.uninstall(spec, env) == 0 and "nothing to do" in said[0]


def test_launchd_install_status_uninstall(tmp_path: Path) -> None:
    target = "gui/501/org.housespool.runner"
    run = Recorder({("launchctl", "print"): (113, "", "Could not find service")})
    said: list[str] = []
    env = env_for(tmp_path, "darwin", run, said)
    spec = si.ServiceSpec(PY, SPOOL, FLAGS)
    assert si.install(spec, env) == 0
    plist = tmp_path / "home/Library/LaunchAgents/org.housespool.runner.plist"
    assert plist.read_text() == si.launchd_plist(spec, tmp_path / "home")
    assert (tmp_path / "home/Library/Logs/housespool").is_dir()
    assert run.calls == [
        ["launchctl", "print", target],
        ["launchctl", "enable", target],
        ["launchctl", "bootstrap", "gui/501", str(plist)],
    ]
    assert any("Library/Logs/housespool/org.housespool.runner.log" in s for s in said)

    # a re-install unloads the loaded agent first
    run.answers[("launchctl", "print")] = (0, "state = running\n\tpid = 777\n", "")
    run.calls.clear()
    si.install(spec, env)
    assert run.calls[:2] == [["launchctl", "print", target], ["launchctl", "bootout", target]]

    said.clear()
    assert si.status(spec, env) == 0 and "running, pid 777" in said[0]
    run.answers[("launchctl", "print")] = (0, "state = not running\n", "")
    assert si.status(spec, env) == 1

    run.calls.clear()
    assert si.uninstall(spec, env) == 0
    assert run.calls == [["launchctl", "print", target], ["launchctl", "bootout", target]]
    assert not plist.exists()

    run.answers[("launchctl", "print")] = (113, "", "")
    run.answers[("launchctl", "bootstrap")] = (5, "", "Bootstrap failed: 5: Input/output error")
    with pytest.raises(si.ServiceError, match="Bootstrap failed"):
        si.install(spec, env)
    assert not plist.exists()


def test_unsupported_platform_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Task Scheduler"):
        si.install(si.ServiceSpec(PY, SPOOL), env_for(tmp_path, "windows", Recorder(), []))


def test_cmd_service_from_the_command_line(spool_root: Any, tmp_path: Path) -> None:
    run = Recorder({("loginctl",): (0, "Linger=yes", "")})
    env = env_for(tmp_path, "linux", run, [])
    args = build_parser().parse_args(["--spool", str(spool_root), "runner", "install", "--slots", "3"])
    assert si.cmd_service(args, env) == 0
    unit = (tmp_path / "home/.config/systemd/user" / UNIT).read_text()
    assert f"--spool {spool_root.root} runner --slots 3\n" in unit
    assert f"ExecStart={os.path.abspath(sys.executable)} -m spool.cli.main" in unit

    missing = build_parser().parse_args(["--spool", str(tmp_path / "nope"), "runner", "install"])
    with pytest.raises(NotFound):
        si.cmd_service(missing, env)
    with pytest.raises(UsageError, match="--print goes with install"):
        si.cmd_service(build_parser().parse_args(["runner", "status", "--print"]), env)


def test_runner_install_print_cli(spool_root: Any, run_cli: Any) -> None:
    out = run_cli("--spool", spool_root, "runner", "install", "--print", "--slots", "2", "--tag", "cuda")
    assert out.returncode == 0, out.stderr
    if platform.system() == "Darwin":
        argv = plistlib.loads(out.stdout.encode())["ProgramArguments"]
    else:
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("ExecStart="))
        argv = shlex.split(line.removeprefix("ExecStart="))
    assert os.path.isabs(argv[0]) and Path(argv[0]).parent == Path(sys.executable).parent
    assert argv[1:] == ["-m", "spool.cli.main", "--spool", str(spool_root.root), "runner"] + [
        "--slots",
        "2",
        "--tag",
        "cuda",
    ]
    bad = run_cli("--spool", spool_root, "runner", "install", "--print", "--python", "rel/python")
    assert bad.returncode == 2 and "absolute" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = run_cli("--spool", spool_root, "runner", "install", "--print", "--hours", "25-3")
    assert bad.returncode == 2 and "hours" in bad.stderr
    bad = run_cli("runner", "uninstall", "--print")
    assert bad.returncode == 2


def _systemd_user_manager() -> str | None:
    """None when a systemd user manager answers here, else why not."""
    if platform.system() != "Linux":
        return "not Linux"
    if not Path("/run/systemd/system").is_dir():
        return "systemd is not the init system here (no /run/systemd/system)"
    if shutil.which("systemctl") is None:
        return "no systemctl"
    p = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True, text=True)
    state = p.stdout.strip()
    if state not in ("running", "degraded"):
        return f"no systemd user manager ({(p.stderr or state).strip()})"
    return None


@pytest.mark.skipif(_systemd_user_manager() is not None, reason=str(_systemd_user_manager()))
def test_real_systemd_user_unit_starts_and_stops(spool_root: Any) -> None:
    name = f"pytest-{uuid.uuid4().hex[:8]}"
    args = build_parser().parse_args(["--spool", str(spool_root), "runner", "install", "--name", name])
    env = si.ServiceEnv.current(say=lambda s: None)
    spec = si.spec_from_args(args)
    try:
        assert si.cmd_service(args, env) == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (spool_root / "runners" / f"{name}.json").exists():
                break
            time.sleep(0.2)
        assert (spool_root / "runners" / f"{name}.json").exists(), (
            "the service's runner never wrote a heartbeat"
        )
        assert si.status(spec, env) == 0
    finally:
        si.uninstall(spec, env)
    p = subprocess.run(["systemctl", "--user", "is-active", spec.unit], capture_output=True, text=True)
    assert p.stdout.strip() != "active"


# --------------------------------------------------------------------------- pausing


@pytest.mark.parametrize(
    ("idle", "paused", "resume_after", "expected"),
    [
        (None, False, 120, False),  # unknown: never pause
        (None, True, 120, False),  # unknown: continue a paused job
        (float("nan"), True, 120, False),
        (3.0, False, 120, True),  # input 3 s ago: active -> pause
        (59.0, False, 120, True),
        (61.0, False, 120, False),  # quiet for a minute: not "active", keep running
        (61.0, True, 120, True),  # but a paused job waits for the full resume time
        (119.9, True, 120, True),
        (120.0, True, 120, False),
        (20.0, False, 10, False),  # a short --when-user-idle: active only within it
        (5.0, False, 10, True),
        (float("inf"), True, 120, False),  # nobody logged in at the machine
    ],
)
def test_should_pause_table(idle: float | None, paused: bool, resume_after: float, expected: bool) -> None:
    assert should_pause(idle, paused, resume_after_s=resume_after) is bool(expected)


class FakeProc:
    def __init__(self) -> None:
        self.kill_deadline: float | None = None
        self.signals: list[int] = []
        self.exit: int | None = None
        self.proc = self

    def poll(self) -> int | None:
        return self.exit

    def signal_group(self, sig: int) -> None:
        self.signals.append(sig)


def test_pauser_stops_continues_and_accounts_paused_time() -> None:
    readings: list[float | None] = [500.0]
    log: list[str] = []
    p = Pauser(120.0, read_idle=lambda: readings[0], log=log.append, read_every=0.0)
    proc = FakeProc()
    assert p.tend("j1@r.1", proc, 0.0) == 0.0 and proc.signals == []
    readings[0] = 2.0  # someone touched the mouse
    assert p.tend("j1@r.1", proc, 1.0) == 0.0
    assert proc.signals == [signal.SIGSTOP] and p.is_paused("j1@r.1")
    assert p.tend("j1@r.1", proc, 11.0) == 10.0  # 10 s stopped: the loop moves the start by that
    readings[0] = 100.0  # away 100 s: not yet the 120 s
    assert p.tend("j1@r.1", proc, 12.0) == 1.0 and proc.signals == [signal.SIGSTOP]
    readings[0] = 130.0
    assert p.tend("j1@r.1", proc, 14.5) == 2.5
    assert proc.signals == [signal.SIGSTOP, signal.SIGCONT] and not p.is_paused("j1@r.1")
    assert log == ["paused j1: the machine is in use", "continued j1: the machine is idle again"]


def test_pauser_continues_a_job_being_stopped_and_on_unknown_readings() -> None:
    readings: list[float | None] = [0.0]
    log: list[str] = []
    p = Pauser(120.0, read_idle=lambda: readings[0], log=log.append, read_every=0.0)
    proc = FakeProc()
    p.tend("k", proc, 0.0)
    proc.kill_deadline = 5.0  # cancel/timeout/hand-back: it must see its SIGTERM
    p.tend("k", proc, 1.0)
    assert proc.signals == [signal.SIGSTOP, signal.SIGCONT]
    proc2 = FakeProc()
    p.tend("k2", proc2, 2.0)
    readings[0] = None
    p.tend("k2", proc2, 3.0)
    p.tend("k2", proc2, 4.0)
    assert proc2.signals == [signal.SIGSTOP, signal.SIGCONT]
    assert sum("unknown" in m for m in log) == 1  # warned once


def test_pauser_reads_at_most_every_read_every_seconds() -> None:
    calls: list[int] = []

    def reader() -> float:
        calls.append(1)
        return 999.0

    p = Pauser(read_idle=reader, read_every=2.0)
    assert p.resume_after_s == DEFAULT_RESUME_AFTER_S
    for t in (0.0, 0.5, 1.0, 1.9, 2.0, 2.1, 4.5):
        p.tend("k", FakeProc(), t)
    assert len(calls) == 3
    assert Pauser.from_options(10).resume_after_s == 600


TICKER = (
    "import json, os, time\n"
    "path = os.path.join(os.environ['SPOOL_OUTPUT_DIR'], 'ticks')\n"
    "for i in range(30):\n"
    "    with open(path, 'a') as f:\n"
    "        f.write('x')\n"
    "    time.sleep(0.05)\n"
    "print(json.dumps({'ticks': 30}))\n"
)


@pytest.mark.skipif(platform.system() != "Linux", reason="reads process states from /proc")
def test_pause_when_busy_end_to_end(spool_root: Any) -> None:
    """A real job is stopped while the user is active, keeps its lease, and is not timed out."""
    from runner.core.lease import LEASE_FILE
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from runner.machine.capabilities import detect

    toml = spool_root / "spool.toml"
    # a lease renewed every 1.25 s, longer than the pause below (longer ones hand the job back)
    toml.write_text(toml.read_text().replace("lease_seconds = 60", "lease_seconds = 5"))
    assert "lease_seconds = 5" in toml.read_text()
    (spool_root.scripts_dir / "ticker.py").write_text(TICKER)
    sp = Spool(spool_root.root)
    jid = sp.submit("ticker.py", timeout=4)  # ~1.5 s of work; paused time must not count
    idle: list[float | None] = [1e9]
    log: list[str] = []
    r = Runner(
        sp,
        RunnerOptions(name="pauser", pause_when_busy=True, nice=10),
        caps=detect(sys.executable, [], probe_torch=False),
        log=log.append,
    )
    assert r.pauser is not None
    r.pauser.read_idle = lambda: idle[0]
    r.pauser.read_every = 0.0

    def step_until(cond: Any, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r.run_once()
            if cond():
                return
            time.sleep(0.05)
        raise AssertionError(f"not reached in time; log: {log}")

    step_until(lambda: r.slots and next(iter(r.slots.values())).proc is not None)
    slot = next(iter(r.slots.values()))
    assert slot.proc is not None
    pid = slot.proc.pid
    ticks = slot.folder / "outputs" / "ticks"
    step_until(lambda: ticks.exists() and ticks.stat().st_size >= 2)
    prio = get_io_priority(pid)
    if prio is not None:
        assert prio == (IOPRIO_CLASS_BE, 7)  # the job's lower I/O priority (--nice > 0)

    idle[0] = 0.0
    step_until(lambda: (proc_stat(pid) or ["?"])[0] == "T")
    time.sleep(0.2)
    count = ticks.stat().st_size
    # the lease starts with claim.json; the first renewal writes `lease`
    marks = (slot.folder / LEASE_FILE, slot.folder / "claim.json")
    lease_before = max(p.stat().st_mtime for p in marks if p.exists())
    paused_until = time.monotonic() + 3.5  # longer than the timeout: a counted pause would kill it
    while time.monotonic() < paused_until:
        r.run_once()
        time.sleep(0.1)
    assert ticks.stat().st_size == count, "the job ran while paused"
    assert (slot.folder / LEASE_FILE).stat().st_mtime > lease_before, "the lease was not kept alive"
    assert sp.get(jid).state.value == "claimed"

    idle[0] = 1e9
    step_until(lambda: sp.get(jid).state.value in ("done", "failed"))
    v = sp.get(jid)
    assert v.state.value == "done", v.result
    assert v.result is not None and v.result["result"] == {"ticks": 30}
    assert v.result["duration"] < 3.5  # paused time is not in the duration either
    assert any(m.startswith("paused ") for m in log) and any(m.startswith("continued ") for m in log)


# --------------------------------------------------------------------------- I/O priority


def test_lower_io_priority_calls_ioprio_set_by_number() -> None:
    calls: list[tuple[int, int, int, int]] = []

    def fake(nr: int, which: int, who: int, prio: int) -> int:
        calls.append((nr, which, who, prio))
        return 0

    assert lower_io_priority(4242, system="Linux", machine="x86_64", syscall=fake)
    assert lower_io_priority(4242, group=False, system="Linux", machine="aarch64", syscall=fake)
    assert calls == [
        (251, IOPRIO_WHO_PGRP, 4242, ioprio_value(IOPRIO_CLASS_BE, 7)),
        (30, IOPRIO_WHO_PROCESS, 4242, (2 << 13) | 7),
    ]
    assert not lower_io_priority(1, system="Darwin", syscall=fake)
    assert not lower_io_priority(1, system="Windows", syscall=fake)
    assert not lower_io_priority(1, system="Linux", machine="sparc64", syscall=fake)
    assert not lower_io_priority(1, system="Linux", machine="x86_64", syscall=lambda *a: -1)

    def boom(*a: int) -> int:
        raise OSError("seccomp")

    assert not lower_io_priority(1, system="Linux", machine="x86_64", syscall=boom)
    assert len(calls) == 2


@pytest.mark.skipif(platform.system() != "Linux", reason="ioprio_set is Linux only")
def test_lower_io_priority_for_real() -> None:
    p = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        if not lower_io_priority(p.pid):
            pytest.skip(f"ioprio_set is not available here ({platform.machine()})")
        assert get_io_priority(p.pid) == (IOPRIO_CLASS_BE, 7)
    finally:
        p.kill()
        p.wait()


# --------------------------------------------------------------------------- doctor


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_doctor_healthy_spool(spool_root: Any) -> None:
    checks = by_name(run_doctor(spool_root.root, probe_torch=False))
    for name in ("interpreter", "spool", "scripts", "writable", "rename", "clock", "filesystem", "sync"):
        assert checks[name].status == OK, checks[name]
    assert checks["git"].status in (OK, WARN)
    assert not any(c.status == FAIL for c in checks.values())
    leftovers = [
        p for d in ("pending", "claimed", "done", "failed", "runners") for p in (spool_root / d).iterdir()
    ]
    assert leftovers == [], "doctor left files behind"


def test_doctor_missing_spool(tmp_path: Path, run_cli: Any) -> None:
    checks = by_name(run_doctor(tmp_path / "nope", probe_torch=False))
    assert checks["spool"].status == FAIL and "does not exist" in checks["spool"].detail
    assert "spool init" in checks["spool"].fix
    assert "writable" not in checks and "rename" not in checks
    out = run_cli("--spool", tmp_path / "nope", "doctor", "--no-torch")
    assert out.returncode == 1
    assert "fail  spool" in out.stdout and "fix: create it with `spool init" in out.stdout
    out = run_cli("--spool", tmp_path / "nope", "doctor", "--no-torch", "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and doc["ok"] is False
    assert {c["name"]: c["status"] for c in doc["checks"]}["spool"] == "fail"
    (tmp_path / "notspool").mkdir()
    assert by_name(run_doctor(tmp_path / "notspool", probe_torch=False))["spool"].status == FAIL


def test_doctor_cli_healthy(spool_root: Any, run_cli: Any) -> None:
    out = run_cli("--spool", spool_root, "doctor", "--no-torch")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok    rename" in out.stdout and "0 failed" in out.stdout


def _ro_bind(src: Path, dst: Path) -> str | None:
    """A read-only view of `src` at `dst`; None if made, else why not (root is not stopped by chmod)."""
    if platform.system() != "Linux" or shutil.which("mount") is None:
        return "read-only bind mounts need Linux mount(8)"
    dst.mkdir()
    for argv in (["mount", "--bind", str(src), str(dst)], ["mount", "-o", "remount,bind,ro", str(dst)]):
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != 0:
            subprocess.run(["umount", str(dst)], capture_output=True)
            return f"cannot make a read-only bind mount here: {p.stderr.strip() or p.returncode}"
    return None


def test_doctor_read_only_spool(spool_root: Any, tmp_path: Path, run_cli: Any) -> None:
    view = tmp_path / "ro-view"
    why = _ro_bind(spool_root.root, view)
    if why:
        pytest.skip(why)
    try:
        checks = by_name(run_doctor(view, probe_torch=False))
        assert checks["spool"].status == OK
        assert checks["writable"].status == FAIL and "Read-only file system" in checks["writable"].detail
        assert "read-write" in checks["writable"].fix
        assert "rename" not in checks  # not tried on a folder it cannot write
        out = run_cli("--spool", view, "doctor", "--no-torch")
        assert out.returncode == 1 and "fail  writable" in out.stdout
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


def test_writable_and_rename_checks_on_a_healthy_folder(spool_root: Any) -> None:
    assert check_writable(spool_root.root).status == OK
    c = check_rename(spool_root.root, rounds=5)
    assert c.status == OK and "5 times" in c.detail


def test_clock_offset(spool_root: Any) -> None:
    assert check_clock(spool_root.root).status == OK
    ahead = check_clock(spool_root.root, clock=lambda: time.time() - 30)
    assert ahead.status == WARN and "30" in ahead.detail and "ahead of" in ahead.detail
    assert "NTP" in ahead.fix
    behind = check_clock(spool_root.root, clock=lambda: time.time() + 90)
    assert behind.status == WARN and "behind" in behind.detail


@pytest.mark.parametrize(
    ("where", "name", "tool"),
    [
        ("root", ".stfolder", "Syncthing"),
        ("parent", ".stversions", "Syncthing"),
        ("parent", ".dropbox", "Dropbox"),
        ("root", ".dropbox.cache", "Dropbox"),
        ("root", "._sync_1a2b3c.db", "Nextcloud"),
        ("pending", "job.sync-conflict-20250101-101010-ABCDEFG.json", "Syncthing"),
        ("done", "result (ana's conflicted copy 2025-01-01).json", "conflicted"),
    ],
)
def test_sync_detection(tmp_path: Path, where: str, name: str, tool: str) -> None:
    sp = Spool.init(tmp_path / "share" / "spool")
    folder = {"root": sp.root, "parent": sp.root.parent}.get(where, sp.root / where)
    if name.startswith(".st") or name.endswith(".cache"):
        (folder / name).mkdir()
    else:
        (folder / name).write_text("x")
    c = check_sync(sp.root)
    assert c.status == FAIL and tool in c.detail, c
    assert "NFS, SMB or sshfs" in c.fix


def test_sync_ok_and_path_hint(tmp_path: Path) -> None:
    assert check_sync(Spool.init(tmp_path / "plain").root).status == OK
    hint = check_sync(Spool.init(tmp_path / "Dropbox" / "spool").root)
    assert hint.status == WARN and "Dropbox" in hint.detail
    (tmp_path / "Resilio" / "spool").mkdir(parents=True)
    (tmp_path / "Resilio" / ".sync").mkdir()
    (tmp_path / "Resilio" / ".sync" / "ID").write_text("x")
    Spool.init(tmp_path / "Resilio" / "spool")
    assert "Resilio" in check_sync(tmp_path / "Resilio" / "spool").detail


MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /mnt/house\040spool rw,relatime shared:20 - nfs4 desktop:/srv/spool rw,vers=4.2,hard,lookupcache=positive,actimeo=1
41 22 0:41 / /mnt/soft rw,relatime - nfs desktop:/srv/x rw,vers=3,soft,timeo=600
42 22 0:42 / /mnt/smb rw - cifs //desktop/spool rw,vers=3.1.1
43 22 0:43 / /home/ana/spool rw,nosuid,nodev - fuse.sshfs ana@desktop:/srv/spool rw,user_id=1000
44 22 0:44 / /mnt/gdrive rw - fuse.rclone gdrive: rw
"""

MAC_MOUNT = """/dev/disk1s1 on / (apfs, local, journaled)
desktop:/srv/spool on /Volumes/spool (nfs, nodev, nosuid, mounted by ana)
//ana@desktop/spool on /Volumes/smb (smbfs, nodev, nosuid, mounted by ana)
ana@desktop:/srv/spool on /Users/ana/spool (macfuse, nodev, nosuid, synchronous, mounted by ana)
"""


def test_mount_tables_and_filesystem_verdicts() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    nfs = find_mount("/mnt/house spool/pending", mounts)
    assert nfs is not None and nfs.fstype == "nfs4" and nfs.source == "desktop:/srv/spool"
    assert "lookupcache=positive" in nfs.options
    c = describe_mount(nfs)
    assert c.status == OK and "lookupcache=positive" in c.detail and "actimeo=1" in c.detail
    soft = describe_mount(find_mount("/mnt/soft", mounts))  # type: ignore[arg-type]
    assert soft.status == WARN and "hard" in soft.fix
    assert describe_mount(find_mount("/mnt/smb/a", mounts)).status == OK  # type: ignore[arg-type]
    sshfs = describe_mount(find_mount("/home/ana/spool", mounts))  # type: ignore[arg-type]
    assert sshfs.status == OK and "sshfs" in sshfs.detail
    assert describe_mount(find_mount("/mnt/gdrive/x", mounts)).status == WARN  # type: ignore[arg-type]
    local = find_mount("/home/ana/other", mounts)
    assert local is not None and local.fstype == "ext4"

    mac = parse_mount_output(MAC_MOUNT)
    assert describe_mount(find_mount("/Volumes/spool", mac)).detail.startswith("NFS")  # type: ignore[arg-type]
    assert "SMB" in describe_mount(find_mount("/Volumes/smb/x", mac)).detail  # type: ignore[arg-type]
    assert "sshfs" in describe_mount(find_mount("/Users/ana/spool", mac)).detail  # type: ignore[arg-type]
    c = check_filesystem(Path("/Users/ana/spool"), system="darwin", mountinfo=MAC_MOUNT)
    assert c.status == OK and "sshfs" in c.detail


def test_git_check() -> None:
    missing = check_git(None, Recorder({("git",): (127, "", "git: not found")}))
    assert missing.status == WARN and "xcode-select --install" in missing.fix
    run = Recorder(
        {
            ("git", "--version"): (0, "git version 2.39.5\n", ""),
            ("git", "-C"): (128, "", "fatal: not a git repository"),
        }
    )
    assert check_git(Path("/"), run).status == WARN
    run.answers[("git", "-C")] = (0, "/home/ana/code\n", "")
    ok = check_git(Path("/"), run)
    assert ok.status == OK and "/home/ana/code" in ok.detail


def probe_json(version: str | None, **torch: Any) -> str:
    doc: dict[str, Any] = {"python_version": torch.pop("py", "3.12.3"), "torch": None}
    if version is not None:
        doc["torch"] = {
            "version": version,
            "cuda_available": False,
            "cuda_usable": False,
            "mps_available": False,
            "mps_usable": False,
            "error": None,
            "cuda_version": None,
            "arch_list": [],
            "devices": [],
            "warnings": [],
            **torch,
        }
    return json.dumps(doc)


class TorchRun:
    def __init__(self, probe: str, numpy: str = "1.26.4", smi: tuple[int, str, str] = (127, "", "")):
        self.probe, self.numpy, self.smi = probe, numpy, smi

    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        if len(argv) >= 3 and argv[1] == "-c":
            if "numpy" in argv[2] and "torch" not in argv[2]:
                return 0, self.numpy + "\n", ""
            return 0, self.probe + "\n", ""
        if argv[0] == "nvidia-smi":
            return self.smi
        return 127, "", "not found"


def test_torch_check_on_the_old_macbooks_and_the_gtx1060() -> None:
    mac: dict[str, Any] = {"system": "darwin", "machine": "x86_64"}
    c = check_torch("/opt/py/bin/python", TorchRun(probe_json("2.2.2"), numpy="2.1.3"), **mac)
    assert c.status == WARN and "numpy<2" in c.fix
    c = check_torch("/opt/py/bin/python", TorchRun(probe_json("2.2.2"), numpy="1.26.4"), **mac)
    assert c.status == OK and "torch 2.2.2" in c.detail and "device cpu" in c.detail
    c = check_torch("/opt/py/bin/python", TorchRun(probe_json(None, py="3.13.1")), **mac)
    assert c.status == WARN and "Python 3.12" in c.fix and "torch==2.2.2" in c.fix

    no_kernel = "RuntimeError: CUDA error: no kernel image is available for execution on the device"
    probe = probe_json(
        "2.9.0+cu128",
        cuda_available=True,
        error=no_kernel,
        cuda_version="12.8",
        arch_list=["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
        devices=[
            {
                "index": 0,
                "name": "NVIDIA GeForce GTX 1060 6GB",
                "compute_capability": "6.1",
                "memory_gb": 5.93,
                "usable": False,
                "error": no_kernel,
            }
        ],
    )
    smi = (0, "0, NVIDIA GeForce GTX 1060 6GB, 6.1, 6144\n", "")
    c = check_torch("/opt/cuda/bin/python", TorchRun(probe, smi=smi), system="linux", machine="x86_64")
    assert c.status == WARN and "sm_61" in c.detail and "cu126" in c.detail
    broken = probe_json("x")
    doc = json.loads(broken)
    doc["torch"]["version"] = None
    doc["torch"]["error"] = "import torch failed: OSError: libcudnn.so.9"
    c = check_torch("/opt/py/bin/python", TorchRun(json.dumps(doc)), system="linux", machine="x86_64")
    assert c.status == FAIL and "libcudnn" in c.detail
    assert check_torch("/x", TorchRun(""), probe_torch=False).status == OK


@pytest.mark.parametrize(
    ("torch", "numpy", "bad"),
    [
        ("2.2.2", "2.0.0", True),
        ("2.2.2", "1.26.4", False),
        ("2.3.0", "2.1.0", False),
        ("2.1.2+cu121", "2.2", True),
    ],
)
def test_numpy_too_new(torch: str, numpy: str, bad: bool) -> None:
    assert numpy_too_new(torch, numpy) is bad


def test_format_checks() -> None:
    text = format_checks([Check("spool", OK, "/x"), Check("writable", FAIL, "read-only", "remount rw")])
    assert "fail  writable  read-only\n" in text and "fix: remount rw" in text
    assert text.endswith("1 ok, 0 warning(s), 1 failed\n")


# --------------------------------------------------------------------------- slurm and condor


def test_slurm_script_content() -> None:
    text = slurm_script(
        interpreter=PY,
        spool=SPOOL,
        array=8,
        runner_flags=["--slots", "2", "--tag", "cluster", "--scripts", "/home/ana/code/my scripts"],
        max_parallel=4,
        time="04:00:00",
        partition="gpu",
        cpus_per_task=4,
        mem="16G",
        gres="gpu:1",
        account="lab",
        extra=["--qos", "long", "--constraint=v100"],
    )
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for want in (
        "#SBATCH --array=0-7%4",
        "#SBATCH --time=04:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16G",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --account=lab",
        "#SBATCH --signal=B:INT@120",
        "#SBATCH --qos long",
        "#SBATCH --constraint=v100",
    ):
        assert want in lines, want
    # every #SBATCH line comes before the first command, as sbatch requires
    first_cmd = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert all(i < first_cmd for i, ln in enumerate(lines) if ln.startswith("#SBATCH"))
    exec_line = lines[-1]
    assert exec_line.startswith(f"exec {PY} -m spool.cli.main --spool {SPOOL} runner --exit-when-idle ")
    assert f'--name "{SLURM_RUNNER_NAME}"' in exec_line
    assert "--slots 2 --tag cluster --scripts '/home/ana/code/my scripts'" in exec_line
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert "%" not in slurm_script(interpreter=PY, spool=SPOOL, array=1).split("--array=")[1].splitlines()[0]
    assert "--signal" not in slurm_script(interpreter=PY, spool=SPOOL, array=2, grace=0)
    with pytest.raises(UsageError):
        slurm_script(interpreter=PY, spool=SPOOL, array=0)


def test_condor_submit_description_content() -> None:
    text = condor_submit_description(
        interpreter=PY,
        spool=SPOOL,
        count=5,
        runner_flags=["--slots", "2", "--scripts", "/home/ana/my scripts", "--exit-when-idle"],
        request_cpus=2,
        request_memory="8 GB",
        request_gpus=1,
        requirements='(OpSysAndVer == "AlmaLinux9")',
        extra=["+MaxRuntime = 7200"],
    )
    kv = {}
    for ln in text.splitlines():
        if "=" in ln and not ln.startswith(("#", "+")):
            k, _, v = ln.partition("=")
            kv[k.strip()] = v.strip()
    assert kv["executable"] == PY and kv["universe"] == "vanilla"
    assert kv["transfer_executable"] == "false"
    assert kv["arguments"] == (
        f'"-m spool.cli.main --spool {SPOOL} runner --exit-when-idle --name {CONDOR_RUNNER_NAME} '
        "--slots 2 --scripts '/home/ana/my scripts'\""
    )
    assert kv["request_cpus"] == "2" and kv["request_memory"] == "8 GB" and kv["request_gpus"] == "1"
    assert kv["requirements"] == '(OpSysAndVer == "AlmaLinux9")'
    assert "+MaxRuntime = 7200" in text.splitlines()
    assert text.splitlines()[-1] == "queue 5"
    assert text.count("--exit-when-idle") == 2  # once in the comment, once in the arguments
    assert condor_arguments(["it's", 'a "b"']) == "\"'it''s' 'a \"\"b\"\"'\""
    with pytest.raises(UsageError):
        condor_submit_description(interpreter=PY, spool=SPOOL, count=0)


def test_submit_without_the_tool_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="sbatch not found on PATH") as info:
        submit("#!/bin/bash\n", "sbatch", tmp_path / "x.sbatch", which=lambda name: None)
    assert info.value.exit_code == 1
    run = Recorder({("/usr/bin/sbatch",): (1, "", "sbatch: error: invalid partition\n")})
    with pytest.raises(SubmitError, match="invalid partition"):
        submit("#!/bin/bash\n", "sbatch", tmp_path / "x.sbatch", run=run, which=lambda n: "/usr/bin/" + n)
    said: list[str] = []
    run = Recorder({("/usr/bin/sbatch",): (0, "Submitted batch job 42\n", "")})
    assert (
        submit(
            "S\n", "sbatch", tmp_path / "y.sbatch", run=run, which=lambda n: "/usr/bin/" + n, say=said.append
        )
        == 0
    )
    assert run.calls == [["/usr/bin/sbatch", str(tmp_path / "y.sbatch")]]
    assert (tmp_path / "y.sbatch").read_text() == "S\n" and said[-1] == "Submitted batch job 42"


def _path_without(*tools: str) -> str:
    keep = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not any(Path(d, t).exists() for t in tools):
            keep.append(d)
    return os.pathsep.join(keep)


def test_slurm_and_condor_cli(spool_root: Any, run_cli: Any, tmp_path: Path) -> None:
    out = run_cli(
        "--spool",
        spool_root,
        "slurm",
        "--array",
        "3",
        "--time",
        "1:00:00",
        "--slots",
        "2",
        "--",
        "--qos=long",
    )
    assert out.returncode == 0, out.stderr
    assert "#SBATCH --array=0-2" in out.stdout and "#SBATCH --qos=long" in out.stdout
    exec_line = out.stdout.strip().splitlines()[-1]
    words = exec_line.split()
    assert os.path.isabs(words[1]) and words[words.index("--spool") + 1] == str(spool_root.root)
    assert "--exit-when-idle" in words and words[-2:] == ["--slots", "2"]

    out = run_cli(
        "--spool", spool_root, "condor", "--count", "4", "--request-gpus", "1", "-o", tmp_path / "r.sub"
    )
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "r.sub").read_text()
    assert "queue 4" in text and "request_gpus            = 1" in text and str(spool_root.root) in text

    env = {"PATH": _path_without("sbatch", "condor_submit")}
    for verb, tool in (("slurm", "sbatch"), ("condor", "condor_submit")):
        out = run_cli("--spool", spool_root, verb, "--array", "2", "--submit", env=env)
        assert out.returncode == 1
        assert len(out.stderr.strip().splitlines()) == 1 and f"{tool} not found on PATH" in out.stderr

    out = run_cli("--spool", spool_root, "slurm", "--array", "0")
    assert out.returncode == 2 and "at least 1" in out.stderr


def test_submit_through_a_stand_in_tool_on_path(spool_root: Any, run_cli: Any, tmp_path: Path) -> None:
    """The real `--submit` path, with an `sbatch` that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.json"
    fake = bin_dir / "sbatch"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\nprint('Submitted batch job 42')\n"
    )
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = run_cli("--spool", spool_root, "slurm", "--array", "2", "--submit", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Submitted batch job 42" in out.stdout
    script = tmp_path / "housespool-runners.sbatch"
    assert json.loads(record.read_text()) == [str(script)]
    assert "#SBATCH --array=0-1" in script.read_text()


@pytest.mark.skipif(
    shutil.which("condor_submit") is None, reason="no HTCondor here (condor_submit not on PATH)"
)
def test_real_condor_submit_accepts_the_description(spool_root: Any, tmp_path: Path) -> None:
    sub = tmp_path / "r.sub"
    sub.write_text(condor_submit_description(interpreter=sys.executable, spool=str(spool_root.root), count=2))
    p = subprocess.run(
        ["condor_submit", "-dry-run", str(tmp_path / "dry.out"), str(sub)], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
