"""A dead runner's scripts die with it: the reaper, with real processes and real SIGKILLs.

The "runner" is a real process each time: a small Python program holding a `Reaper` (for the
watcher's own rules), or `spool runner` itself (cold and warm scripts). It is killed with
SIGKILL, which no code of its own sees: only the closing pipe tells the watcher.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runner_kit import gone, proc_stat, runner, wait_for

from runner.core import reaper as reaper_module
from runner.core.reaper import Reaper
from spool import Spool

HOLDER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    from runner.core.reaper import Reaper

    # argv: grace, then what to start: "plain", "stubborn" (ignores SIGTERM), "unlisted"
    reaper = Reaper(lambda msg: print(msg, file=sys.stderr, flush=True), grace=float(sys.argv[1]))
    pids = {}
    for kind in sys.argv[2:]:
        code = "import time; time.sleep(120)"
        if kind == "stubborn":
            code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
        if kind == "family":  # a script that started a child of its own, in its group
            code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', " \\
                   "'import time; time.sleep(120)']); time.sleep(120)"
        p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        if kind != "unlisted":
            reaper.add(p.pid)
        pids[kind] = p.pid
    print(json.dumps({"pids": pids, "watcher": reaper.proc.pid if reaper.proc else None}), flush=True)
    if "--exit" in os.environ.get("HOLDER_MODE", ""):
        for pid in pids.values():
            reaper.remove(pid)
        reaper.close()
        sys.exit(0)
    time.sleep(120)
    """
)


def group_members(pgid: int) -> list[int]:
    """The live processes of group `pgid`."""
    pids = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]
    return [pid for pid in pids if (f := proc_stat(pid)) and f[0] != "Z" and int(f[2]) == pgid]


def start_holder(*kinds: str, grace: float = 5.0, mode: str = "") -> tuple[subprocess.Popen[str], dict]:
    env = dict(os.environ, HOLDER_MODE=mode)
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(grace), *kinds],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line, p.stderr.read() if p.stderr else ""
    return p, json.loads(line)


def cleanup(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture
def killed_later():
    pids: list[int] = []
    yield pids
    cleanup(pids)


def test_scripts_of_a_sigkilled_holder_are_ended_with_their_children(killed_later):
    holder, info = start_holder("plain", "family")
    killed_later.extend(info["pids"].values())
    family = info["pids"]["family"]
    wait_for(lambda: len(group_members(family)) == 2, timeout=10)  # the script and its child
    assert info["watcher"] and os.getpgid(info["watcher"]) != os.getpgid(holder.pid)
    holder.send_signal(signal.SIGKILL)
    holder.wait(5)
    wait_for(lambda: all(gone(pid) for pid in info["pids"].values()), timeout=5)
    wait_for(lambda: not group_members(family), timeout=5)
    wait_for(lambda: gone(info["watcher"]), timeout=5)  # and the watcher is gone too


def test_an_unlisted_group_is_left_alone(killed_later):
    holder, info = start_holder("unlisted", "plain")
    killed_later.extend(info["pids"].values())
    holder.send_signal(signal.SIGKILL)
    holder.wait(5)
    wait_for(lambda: gone(info["pids"]["plain"]), timeout=5)
    wait_for(lambda: gone(info["watcher"]), timeout=5)
    assert not gone(info["pids"]["unlisted"])


def test_a_script_ignoring_sigterm_is_killed_after_the_grace(killed_later):
    holder, info = start_holder("stubborn", grace=1.0)
    killed_later.extend(info["pids"].values())
    pid = info["pids"]["stubborn"]
    time.sleep(0.3)  # let it install its handler
    holder.send_signal(signal.SIGKILL)
    t = time.monotonic()
    holder.wait(5)
    time.sleep(0.5)
    assert not gone(pid)  # SIGTERM ignored: still there within the grace
    wait_for(lambda: gone(pid), timeout=5)
    assert time.monotonic() - t >= 0.9


def test_a_clean_close_with_nothing_listed_ends_the_watcher_and_nothing_else(killed_later):
    holder, info = start_holder("plain", mode="--exit")
    killed_later.extend(info["pids"].values())
    assert holder.wait(10) == 0
    wait_for(lambda: gone(info["watcher"]), timeout=5)
    assert not gone(info["pids"]["plain"])  # unlisted before the close: not the watcher's business


def test_a_stopped_watcher_never_stalls_the_runner(killed_later):
    logged: list[str] = []
    reaper = Reaper(logged.append)
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    killed_later.append(p.pid)
    reaper.add(p.pid)
    assert reaper.proc is not None
    os.kill(reaper.proc.pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        for _ in range(20000):  # far more than a pipe holds
            reaper.add(p.pid)
            reaper.remove(p.pid)
        assert time.monotonic() - t < 5
        assert len(logged) == 1 and "reaper is off" in logged[0]
    finally:
        os.kill(reaper.proc.pid, signal.SIGCONT)
        reaper.close()
    assert reaper.proc.wait(10) is not None


SLEEPER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(os.environ["SPOOL_OUTPUT_DIR"], "pids"), "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(120)
    """
)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_sigkilled_runner_leaves_no_script_running(tmp_path, killed_later, warm):
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "sleeper.py").write_text(SLEEPER)
    job_id = sp.submit("sleeper.py")
    proc = runner(sp, *(["--warm", "json"] if warm else []), wait=False)
    try:
        pids_file = wait_for(lambda: next(sp.root.glob(f"claimed/{job_id}@*/outputs/pids"), None), timeout=60)
        pids = [int(x) for x in wait_for(lambda: pids_file.read_text().split(), timeout=10)]
        killed_later.extend(pids)
        assert not any(gone(pid) for pid in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_runner_that_exits_cleanly_leaves_no_watcher(tmp_path):
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "quick.py").write_text("print('{\"ok\": true}')\n")
    for _ in range(3):
        sp.submit("quick.py")
    before = _watchers()
    runner(sp, "--slots", "2")
    assert sp.status()["done"] == 3
    wait_for(lambda: _watchers() <= before, timeout=10)


def _watchers() -> set[int]:
    """Live watchers of this checkout's reaper (another checkout's tests may run beside these)."""
    mine = os.fsencode(os.path.abspath(reaper_module.__file__))
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if mine in cmd and not gone(int(d.name)):
                out.add(int(d.name))
    return out


def test_a_watcher_signalled_while_it_starts_lives_on(tmp_path: Path) -> None:
    """Slurm's scancel sends SIGTERM to every process of the job at once: one landing while the
    watcher's interpreter was still starting (before it ignores it) killed the watcher, and the
    runner lost its protection ("the reaper is off (it stopped reading)")."""
    said: list[str] = []
    reaper = Reaper(said.append, grace=0.5)
    script = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        reaper.add(script.pid)  # starts the watcher
        assert reaper.proc is not None
        os.kill(reaper.proc.pid, signal.SIGTERM)  # at once: its interpreter is still starting
        time.sleep(1.0)
        assert reaper.proc.poll() is None, f"the watcher died: {reaper.proc.returncode}"
        reaper.add(script.pid)  # still read: no "stopped reading"
        assert not said, said
        reaper._let_go()  # what a runner's death does to the pipe
        assert script.wait(timeout=30) == -signal.SIGTERM  # ended by the watcher
    finally:
        if script.poll() is None:
            script.kill()
        reaper.close()


ESCAPER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    stay = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    helper = subprocess.Popen([sys.executable, "-c", stay], start_new_session=True)
    with open(os.path.join(os.environ["SPOOL_OUTPUT_DIR"], "pids"), "w") as f:
        f.write(f"{os.getpid()} {helper.pid}")
    time.sleep(120)
    """
)


def _cgroups_here() -> bool:
    from test_hardening_runaway import cgroups_here

    return cgroups_here()


@pytest.mark.skipif(not _cgroups_here(), reason="no writable cgroup v2 here")
def test_a_sigkilled_runner_takes_a_helper_out_of_its_scripts_session_along_through_the_cgroup(
    tmp_path, killed_later
):
    """A helper in a session of its own that ignores SIGTERM: not in any listed group, yet in the
    job's cgroup, which the watcher lists too: SIGTERM, then `cgroup.kill` after the grace."""
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "escaper.py").write_text(ESCAPER)
    job_id = sp.submit("escaper.py")
    proc = runner(sp, "--descendants", "cgroup", wait=False)
    try:
        pids_file = wait_for(lambda: next(sp.root.glob(f"claimed/{job_id}@*/outputs/pids"), None), timeout=60)
        script, helper = (int(x) for x in wait_for(lambda: pids_file.read_text().split(), timeout=10))
        killed_later.extend([script, helper])
        assert os.getsid(helper) != os.getsid(script)
        time.sleep(0.3)  # its SIGTERM handler in place
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: gone(script), timeout=10)
        assert not gone(helper)  # SIGTERM ignored: it waits for the grace (5 s)
        wait_for(lambda: gone(helper), timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
