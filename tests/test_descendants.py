"""`runner.core.descendants`: a job's processes followed and ended, with real process trees.

Each source is tried here on Linux: the cgroup (where cgroup v2 is writable), the tree read from
/proc, and the tree read from `ps` (what macOS uses; Linux's procps takes the same arguments).
The end-to-end cases (a runner, cancel, timeout) are in test_hardening_runaway.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runner_kit import gone, wait_for
from test_hardening_runaway import cgroups_here, no_helper_outlives_its_test  # noqa: F401 (autouse)

from runner.core import cgroups
from runner.core.descendants import CgroupKin, Descendants, Kin, joiner
from runner.core.proctable import parse_ps, proc_table, ps_table

needs_cgroup = pytest.mark.skipif(not cgroups_here(), reason="no writable cgroup v2 here")

# a script whose daemon leaves its session and its environment behind; the middle process
# lingers `linger` s (the tree must look while it is there), the script `stay` s more
DOUBLE_FORK = """
import os, sys, time
middle = os.fork()
if middle == 0:
    os.setsid()
    daemon = os.fork()
    if daemon == 0:
        os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"], {})
    with open(sys.argv[1], "w") as f:
        f.write(str(daemon))
    time.sleep(LINGER)
    os._exit(0)
os.waitpid(middle, 0)
time.sleep(STAY)
"""


def start(tmp_path: Path, linger: float, stay: float = 0.0, fd: int | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """The double-forking script; with `fd` (a cgroup's `cgroup.procs`), born in that cgroup as
    the runner starts a cold script."""
    code = DOUBLE_FORK.replace("LINGER", repr(linger)).replace("STAY", repr(stay))
    pidfile = tmp_path / "daemon.pid"
    join = joiner(fd) if fd is not None else None
    p = subprocess.Popen([sys.executable, "-c", code, str(pidfile)], start_new_session=True, preexec_fn=join)
    return p, pidfile


def follow(kin: Kin, p: subprocess.Popen[bytes]) -> None:
    """What the pump does: start, look when due until the script exits, then reap it."""
    kin.start()
    while p.poll() is None:
        if time.monotonic() >= kin.next_look:
            kin.look()
        time.sleep(0.02)


def daemon_of(pidfile: Path) -> int:
    return int(wait_for(lambda: pidfile.exists() and pidfile.read_text()))


@pytest.mark.parametrize("source", ["proc", "ps"])
def test_the_tree_knows_a_daemon_reparented_to_init(tmp_path, source):
    table = proc_table if source == "proc" else ps_table
    p, pidfile = start(tmp_path, linger=2.5 if source == "ps" else 0.8)
    kin = Descendants("tree", table=table).track(p.pid, None)
    follow(kin, p)
    daemon = daemon_of(pidfile)
    assert proc_table()[daemon].ppid != p.pid  # the middle one exited: the daemon is init's
    killed = kin.end()
    assert [(k["pid"], k["by"], k["signal"]) for k in killed] == [(daemon, "tree", "SIGKILL")], killed
    assert "time.sleep(600)" in killed[0]["cmd"]
    assert wait_for(lambda: gone(daemon), timeout=5)


def test_a_stop_signals_what_left_the_group_and_leaves_the_group_to_killpg(tmp_path):
    """`signal` reaches a helper in a session of its own; a child still in the script's group
    is left to the group's own signal (no second SIGTERM)."""
    code = textwrap.dedent("""
        import subprocess, sys, time
        stay = [sys.executable, "-c", "import time; time.sleep(600)"]
        inside = subprocess.Popen(stay)
        outside = subprocess.Popen(stay, start_new_session=True)
        print(inside.pid, outside.pid, flush=True)
        time.sleep(600)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
    try:
        kin = Descendants("tree").track(p.pid, None)
        assert p.stdout is not None
        inside, outside = map(int, p.stdout.readline().split())
        kin.signal(signal.SIGTERM)
        assert wait_for(lambda: gone(outside), timeout=5)
        assert not gone(inside)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        killed = {k["pid"]: k for k in kin.end()}
        assert killed[outside]["signal"] == "SIGTERM" and killed[outside]["by"] == "tree", killed
        # never a SIGTERM of its own; killed in `end` only if the killpg above had not yet taken it
        assert inside not in killed or killed[inside]["signal"] == "SIGKILL", killed
        assert wait_for(lambda: gone(inside), timeout=5)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_the_environment_marker_catches_a_double_fork_quicker_than_a_look(tmp_path):
    marker = f"SPOOL_OUTPUT_DIR={tmp_path}/claimed/x@token/outputs"
    code = textwrap.dedent("""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
            os._exit(0)
        time.sleep(0.3)
    """)
    env = {**os.environ, marker.split("=", 1)[0]: marker.split("=", 1)[1]}
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, env=env)
    kin = Descendants("tree").track(p.pid, marker.encode())
    kin.start()  # as the pump does: the script's start time (only younger processes are read)
    p.wait()  # never looked: only the marker can know the grandchild
    killed = kin.end()
    assert [k["by"] for k in killed] == ["environment"], killed
    assert wait_for(lambda: gone(killed[0]["pid"]), timeout=5)


@needs_cgroup
def test_a_cgroup_holds_a_daemon_that_never_was_seen(tmp_path):
    """No look at all, no marker, the middle process gone at once: the cgroup still has it."""
    d = Descendants("cgroup")
    born = d.cgroup_for_start()  # as the runner starts a cold script: born in it
    assert born is not None
    p, pidfile = start(tmp_path, linger=0.0, fd=born[1])
    os.close(born[1])
    kin = d.track(p.pid, None, born[0])
    assert isinstance(kin, CgroupKin) and kin.moved and d.kind == "cgroup"
    kin.start()  # what the pump does
    p.wait()
    daemon = daemon_of(pidfile)
    killed = kin.end()
    assert [(k["pid"], k["by"], k["signal"]) for k in killed] == [(daemon, "cgroup", "SIGKILL")], killed
    assert wait_for(lambda: gone(daemon), timeout=5)
    d.close()  # removes what had not emptied yet
    assert not kin.path.exists() and not kin.path.parent.exists()


def test_tree_mode_makes_no_cgroup(tmp_path):
    d = Descendants("tree")
    p = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    kin = d.track(p.pid, None)
    p.wait()
    assert type(kin) is Kin and d.kind == "tree" and kin.end() == []
    own = cgroups.cgroup_home()
    assert own is None or not (own / f"housespool-{os.getpid()}").exists()


def test_parse_ps_reads_macos_rows():
    text = (
        "    1     0     1 Ss   Tue Dec  1 08:00:01 2026     /sbin/launchd\n"
        "  501     1   501 S    Wed Dec  2 03:47:37 2026     /usr/bin/python3 -c import time; time.sleep(9)\n"
        "  502   501   501 Z    Wed Dec  2 03:47:38 2026     (python3)\n"
        "garbage line\n"
    )
    table = parse_ps(text)
    assert set(table) == {1, 501, 502}
    assert table[501].ppid == 1 and table[501].pgid == 501 and not table[501].zombie
    assert table[501].start == "Wed Dec 2 03:47:37 2026"
    assert table[501].cmd == "/usr/bin/python3 -c import time; time.sleep(9)"
    assert table[502].zombie


def test_a_mode_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="auto, cgroup, tree"):
        Descendants("cgroups")


@needs_cgroup
def test_a_script_that_cannot_be_moved_is_followed_by_its_tree_and_so_are_the_next(tmp_path):
    """The move is refused (here: the script is gone before it, ESRCH): said once, and this job
    and every later one get the tree."""
    said: list[str] = []
    d = Descendants("cgroup", said.append)
    p = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    p.wait()
    kin = d.track(p.pid, None)
    kin.start()
    assert isinstance(kin, CgroupKin) and not kin.moved and not kin.path.exists()
    assert kin.next_look < float("inf") and kin.end() == []
    assert d.kind == "tree" and len(said) == 1 and "could not be moved" in said[0], said
    assert type(d.track(os.getpid(), None)) is Kin
    d.close()
