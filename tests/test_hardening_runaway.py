"""Issue 18, finding 4: what a job starts ends with it, wherever it went.

Real runners and real processes: a script starts a helper with `setsid` that holds its stdout,
and a daemon that double-forks into a session of its own, clears its environment, closes its
output and never exits. Whether the script succeeds, is cancelled or times out, the job ends
promptly with the script's own outcome, both helpers are gone, and `result.json` names them
(`leftovers_killed`). Each test runs twice: through a cgroup per job (where this machine's
cgroup v2 is writable: skipped elsewhere) and through the tracked process tree
(`--descendants tree`, the fallback, which must work here too).
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runner_kit import gone, record, runner, wait_for

from runner.core import cgroups


def cgroups_here() -> bool:
    """Whether a runner here gets a cgroup per job: its own cgroup v2 takes a child cgroup."""
    own = cgroups.cgroup_home()
    if own is None:
        return False
    probe = own / f"housespool-probe-{os.getpid()}"
    try:
        os.mkdir(probe)
    except OSError:
        return False
    os.rmdir(probe)
    return True


@pytest.fixture(autouse=True)
def no_helper_outlives_its_test(tmp_path):
    """A test that fails leaves its helpers running (the very thing tested): end them here."""
    yield
    for pidfile in tmp_path.rglob("*.pid"):
        try:
            pid = int(pidfile.read_text())
            if b"time.sleep(600)" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


MODES = [
    pytest.param("cgroup", marks=pytest.mark.skipif(not cgroups_here(), reason="no writable cgroup v2 here")),
    "tree",
]

# SPOOL_OUTPUT_DIR is the script's cwd. `setsid` execs the helper in a new session (the script's
# child is no group leader); the daemon forks, setsid()s, forks again, drops its environment and
# its output (it holds no pipe: nothing but the runner would ever end it), and its middle
# process lingers LINGER s so that the tree's looks (every 0.25 s) see the grandchild.
HELPERS = """
import os, subprocess, sys, time
SLEEP = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
held = subprocess.Popen(["setsid", sys.executable, "-c", SLEEP])  # stdout and stderr inherited
open("held.pid", "w").write(str(held.pid))
middle = os.fork()
if middle == 0:
    os.setsid()
    daemon = os.fork()
    if daemon == 0:
        fd = os.open(os.devnull, os.O_RDWR)
        for n in (0, 1, 2):
            os.dup2(fd, n)
        os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"], {})
    open("daemon.pid", "w").write(str(daemon))
    time.sleep(LINGER)
    os._exit(0)
os.waitpid(middle, 0)
"""


def script(tail: str, linger: float = 0.8) -> str:
    return HELPERS.replace("LINGER", repr(linger)) + textwrap.dedent(tail)


def helpers_of(folder: Path) -> dict[str, int]:
    return {name: int((folder / "outputs" / f"{name}.pid").read_text()) for name in ("held", "daemon")}


def run(sp, mode: str, *args: str, timeout: float = 90):
    t0 = time.monotonic()
    proc = runner(sp, "--python", sys.executable, "--descendants", mode, *args, timeout=timeout)
    return proc, time.monotonic() - t0


def check_ended(rec: dict, pids: dict[str, int], mode: str) -> None:
    """Both helpers gone, and named in the record as found by `mode`."""
    for name, pid in pids.items():
        assert wait_for(lambda pid=pid: gone(pid), timeout=5), f"the {name} helper {pid} still runs"
    killed = {k["pid"]: k for k in rec.get("leftovers_killed") or []}
    assert set(pids.values()) <= set(killed), rec.get("leftovers_killed")
    for k in killed.values():
        assert k["cmd"] and k["signal"] in ("SIGTERM", "SIGKILL"), k
    # the daemon has no marker and left every group: only the cgroup or the tree can know it
    assert killed[pids["daemon"]]["by"] == mode, killed
    assert killed[pids["held"]]["by"] in (mode, "environment"), killed


@pytest.mark.parametrize("mode", MODES)
def test_helpers_end_with_a_script_that_succeeds(spool_root, mode):
    """The script succeeds at once; the held pipe is drained for 2 s, not 600 s, and the job is
    done with its own result, not the timeout it would have been held past."""
    (spool_root.scripts_dir / "helpers.py").write_text(script('print(\'{"ok": true}\')\n'))
    job_id = spool_root.submit("helpers.py", timeout=4)
    proc, took = run(spool_root, mode)
    rec = record(spool_root, job_id)
    assert rec["state"] == "done" and rec["result"] == {"ok": True} and rec["error"] is None, rec
    check_ended(rec, helpers_of(spool_root / "done" / job_id), mode)
    assert all(k["signal"] == "SIGKILL" for k in rec["leftovers_killed"]), rec["leftovers_killed"]
    assert took < 20, f"the runner took {took:.1f} s"
    if mode == "cgroup":
        assert "in a cgroup of its own" in proc.stderr_text, proc.stderr_text
        own = cgroups.cgroup_home()
        assert own is not None and not (own / f"housespool-{proc.pid}").exists()  # removed


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_ends_the_helpers(spool_root, mode):
    (spool_root.scripts_dir / "slow.py").write_text(script("time.sleep(60)\n"))
    job_id = spool_root.submit("slow.py", timeout=2)
    _, took = run(spool_root, mode)
    rec = record(spool_root, job_id)
    assert rec["state"] == "failed" and rec["error"]["kind"] == "timeout", rec
    check_ended(rec, helpers_of(spool_root / "failed" / job_id), mode)
    assert took < 25, f"the runner took {took:.1f} s"


@pytest.mark.parametrize("mode", MODES)
def test_a_cancel_ends_the_helpers(spool_root, mode):
    """`spool cancel` while the script and its helpers run: SIGTERM to the group and to the
    helpers outside it, SIGKILL after the grace to the one that ignores it."""
    (spool_root.scripts_dir / "slow.py").write_text(script("time.sleep(60)\n"))
    job_id = spool_root.submit("slow.py")
    proc = runner(spool_root, "--python", sys.executable, "--descendants", mode, "--exit-when-idle", wait=False)
    claimed = spool_root / "claimed"
    folder = wait_for(lambda: next(iter(claimed.glob(f"{job_id}@*")), None), timeout=60)
    wait_for(lambda: (folder / "outputs" / "daemon.pid").exists(), timeout=30)
    time.sleep(1.0)  # the daemon's middle process has gone: it is init's now
    t0 = time.monotonic()
    spool_root.cancel(job_id)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, err
    rec = record(spool_root, job_id)
    assert rec["state"] == "failed" and rec["error"]["kind"] == "cancelled", rec
    pids = helpers_of(spool_root / "failed" / job_id)
    check_ended(rec, pids, mode)
    killed = {k["pid"]: k for k in rec["leftovers_killed"]}
    assert killed[pids["held"]]["signal"] == "SIGKILL", killed  # it ignored the SIGTERM
    assert took < 20, f"the cancel took {took:.1f} s"
