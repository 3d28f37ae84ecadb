"""Issue 18's runner findings, with real runner processes and folders: logs opened without
O_APPEND (8), result.json and claim.json fsynced before the moves that publish them (6), and a
runner that stopped cleanly is not killed by a repeated SIGTERM while Python shuts down.
Instants are held open, and calls observed, with strace where a finding needs it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runner_kit import BIN, record, runner, wait_for
from test_runner import set_settings

from spool import jobs

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed (Debian: strace)")


def traced_runner(sp, trace: str, out) -> subprocess.CompletedProcess[str]:
    cmd = ["strace", "-f", "-qq", "-y", "-e", f"trace={trace}", "-o", str(out)]
    cmd += [str(BIN), "--spool", str(sp.root), "runner", "--nice", "0", "--exit-when-idle", "-q"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@needs_strace
def test_logs_are_opened_without_o_append(spool_root, tmp_path):
    """libsmbclient (smbnetfs, gvfs) cannot open a file for appending over SMB3: ENXIO, then EIO
    from the mount for seconds. The runner is its logs' only writer: it needs no O_APPEND."""
    job_id = spool_root.submit("metrics.py")
    r = traced_runner(spool_root, "openat", tmp_path / "trace")
    assert r.returncode == 0, r.stderr
    opens = [ln for ln in (tmp_path / "trace").read_text().splitlines() if re.search(r"(stdout|stderr)\.log|metrics\.jsonl", ln)]
    assert len(opens) >= 3, opens
    assert not [ln for ln in opens if "O_APPEND" in ln], opens
    assert (spool_root / "done" / job_id / "metrics.jsonl").read_text().count("\n") == 4


@needs_strace
def test_result_and_claim_are_fsynced_before_the_move_that_publishes_them(spool_root, tmp_path):
    job_id = spool_root.submit("s.py")
    r = traced_runner(spool_root, "fsync,fdatasync,rename,renameat,renameat2", tmp_path / "trace")
    assert r.returncode == 0, r.stderr
    calls = [ln.split(None, 1)[1] for ln in (tmp_path / "trace").read_text().splitlines() if " " in ln]
    claimed = f"/claimed/{job_id}@"

    def first(pred) -> int:
        return next(i for i, c in enumerate(calls) if pred(c))

    result_synced = first(lambda c: c.startswith("fsync(") and "result.json" in c and claimed in c)
    claim_synced = first(lambda c: c.startswith("fsync(") and "claim.json" in c and claimed in c)
    folder_synced = first(lambda c: c.startswith("fsync(") and re.search(re.escape(claimed) + r"[^/>]*>", c))
    moved = first(lambda c: c.startswith("rename") and f"/done/{job_id}" in c)
    assert max(result_synced, claim_synced, folder_synced) < moved, "\n".join(calls)


def test_a_second_sigterm_while_a_stopped_runner_exits_does_not_kill_it(spool_root):
    """Python's finalization puts handled signals back to SIG_DFL: a second SIGTERM in those
    ~50 ms killed a runner that had stopped cleanly (exit -15; a service manager's repeat)."""
    bad = []
    beat = spool_root / "runners" / "twice.json"
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable  # no torch probe
    for k in range(8):
        beat.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [str(BIN), "--spool", str(spool_root.root), "runner", "--nice", "0", "-q", "--name", "twice", "--python", python],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: beat.exists() and b'"idle"' in beat.read_bytes(), 60)  # running, handlers in place
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.035 * k)
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        _out, err = proc.communicate(timeout=60)
        if proc.returncode != 0 or "Traceback" in err:
            bad.append((0.035 * k, proc.returncode, err[-300:]))
    assert not bad, bad


WAKE_UNDER_SIGNALS = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from runner.core.wake import Wake
    wake = Wake()
    signal.signal(signal.SIGUSR1, lambda *_: wake.set())  # as the runner's stop handler does
    code = f"import os, signal, time\\nwhile True:\\n    os.kill({os.getpid()}, signal.SIGUSR1)\\n    time.sleep(0.001)"
    sender = subprocess.Popen([sys.executable, "-c", code])
    try:
        end, n = time.monotonic() + 3, 0
        while time.monotonic() < end:  # the loop's own use: consume, wait
            wake.clear()
            wake.wait(0)
            n += 1
    finally:
        sender.kill()
    print(n)
    """
)


def test_the_stop_handler_may_wake_the_loop_at_any_instant(tmp_path):
    """The loop's wake-up is set by the SIGINT/SIGTERM handler, which Python runs in the main
    thread between two bytecodes: with `threading.Event` a signal landing while the loop held
    the event's lock (in `wait` or `clear`) made the handler wait for that lock for ever — the
    runner hung after a service manager's repeated SIGTERM. A signal every millisecond for 3 s
    at the loop's own calls must leave it running."""
    probe = tmp_path / "probe.py"
    probe.write_text(WAKE_UNDER_SIGNALS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0 and int(p.stdout) > 0, p.stderr[-2000:]



# -- 1: a take-over finishes a folder that holds its attempt's complete result --------------------

COUNTED = "import os, uuid\nos.makedirs(os.path.join(os.environ['SPOOL_DATA_DIR'], 'runs'), exist_ok=True)\n" \
    "open(os.path.join(os.environ['SPOOL_DATA_DIR'], 'runs', os.environ['SPOOL_JOB_ID'] + '.' + uuid.uuid4().hex), 'w').close()\n" \
    "print('{\"ok\": 1}')\n"

DIE_AT = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from spool import Spool
    from spool.protocol import FsOps

    class DieAt(FsOps):
        '''At the instant this runner would rename a job folder into `where`/: SIGKILL it, or
        (`hold`) wait there until the test's `go` file appears.'''
        def rename(self, src: Path, dst: Path) -> None:
            if dst.parent.name == sys.argv[2] and src.parent.name == "claimed":
                if sys.argv[4] == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                held = Path(sys.argv[1]) / "held"
                held.touch()
                while not (Path(sys.argv[1]) / "go").exists():
                    time.sleep(0.01)
                held.unlink()
            os.rename(src, dst)

    r = Runner(Spool(sys.argv[1]), RunnerOptions(name="doomed", python=sys.argv[3], nice=0, exit_when_idle=True))
    r.fs = DieAt()
    sys.exit(r.run())
    """
)


def runs_of(sp, job_id: str) -> int:
    try:
        return sum(1 for n in os.listdir(sp.root / "data" / "runs") if n.startswith(job_id + "."))
    except FileNotFoundError:
        return 0


def die_at(sp, where: str, how: str = "kill") -> subprocess.Popen[str]:
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    return subprocess.Popen(
        [sys.executable, "-c", DIE_AT, str(sp.root), where, python, how],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("retries", [0, 2])
def test_a_take_over_finishes_a_result_its_holder_published_before_dying(spool_root, retries):
    """SIGKILL between result.json's rename into the claimed folder and the folder's move to
    done/: the next runner must move it on, not write `lost_lease` over the good result (with
    retries = 0 it was gone; with retries the script ran again)."""
    (spool_root.scripts_dir / "counted.py").write_text(COUNTED)
    set_settings(spool_root, lease_seconds=2)
    job_id = spool_root.submit("counted.py", retries=retries)
    r = die_at(spool_root, "done")
    _out, err = r.communicate(timeout=120)
    assert r.returncode == -signal.SIGKILL, err
    (folder,) = (spool_root / "claimed").iterdir()
    assert (folder / "result.json").is_file()  # the instant held: published, not moved
    runner(spool_root, "--python", sys.executable)
    rec = record(spool_root, job_id)
    assert (rec["state"], rec["result"], rec["attempt"]) == ("done", {"ok": 1}, 1), rec
    assert runs_of(spool_root, job_id) == 1


# -- 3: an answered cancel wins -----------------------------------------------------------------


def test_a_cancel_answered_between_an_exit_and_its_requeue_wins(spool_root):
    """`spool cancel` answers "stopping" while the job is still claimed, its script already
    ended and its requeue (retries left) on its way: the cancel file travels into pending/ with
    the folder. The next claim must end the job as cancelled, not run its retries."""
    (spool_root.scripts_dir / "counted_fail.py").write_text(COUNTED.replace("print('{\"ok\": 1}')", "raise SystemExit(3)"))
    set_settings(spool_root, lease_seconds=2)
    job_id = spool_root.submit("counted_fail.py", retries=3)
    r = die_at(spool_root, "pending", "hold")  # held: ended, written up, about to requeue
    wait_for(lambda: (spool_root / "held").exists(), 60)
    assert jobs.cancel(spool_root.layout, job_id, "user.0001") == "stopping"
    (spool_root / "go").touch()
    _out, err = r.communicate(timeout=120)  # it requeues, claims the job again, and drains
    assert r.returncode == 0, err
    rec = record(spool_root, job_id)
    assert rec["state"] == "failed" and rec["error"]["kind"] == "cancelled", rec
    assert runs_of(spool_root, job_id) == 1  # no retry ran


# -- 5: stray kits --------------------------------------------------------------------------------


def test_a_stray_kit_in_claimed_and_dead_runners_kits_are_tidied(spool_root):
    """A crash between the kit's rename into claimed/ and the job file's: a folder without
    job.json but with the kit's files. `--exit-when-idle` must exit (it never did), and the
    kits of runners that are gone must not pile up in runners/."""
    set_settings(spool_root, lease_seconds=2)
    stray = spool_root / "claimed" / "20260101T000000-000000-abcd@dead.0001"
    (stray / "outputs").mkdir(parents=True)
    for name in ("stdout.log", "stderr.log", "metrics.jsonl", ".claim.json.blank", ".result.json.blank"):
        (stray / name).touch()
    dead_kit = spool_root / "runners" / ".kit-deadhost.1234abcd"
    (dead_kit / "outputs").mkdir(parents=True)
    (dead_kit / "stdout.log").touch()
    old = time.time() - 600
    for p in (stray, dead_kit):
        os.utime(p, (old, old))
    r = subprocess.run(
        [str(BIN), "--spool", str(spool_root.root), "runner", "--nice", "0", "--exit-when-idle", "-q"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not stray.exists() and not dead_kit.exists()


# -- 12: the doctor probes what the spool's file system can do --------------------------------------


def test_the_doctor_probes_links_excl_fsync_and_append(spool_root):
    from house.doctor import run_doctor

    checks = {c.name: c for c in run_doctor(spool_root.root, probe_torch=False)}
    for name in ("hard links", "O_EXCL", "fsync", "O_APPEND"):
        assert checks[name].status == "ok", checks[name]
    assert "hard links work" in checks["hard links"].detail
    assert not [p for p in os.listdir(spool_root / "runners") if p.startswith(".doctor-")]  # probes tidied


# -- 4: runaway children ----------------------------------------------------------------------------

RUNAWAY = """
import subprocess, sys
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(40)"], start_new_session=True)
open("helper.pid", "w").write(str(helper.pid))
print('{"ok": true}')
"""


def test_a_helper_in_its_own_session_does_not_hold_the_job(spool_root):
    """A script starts a helper in a new session that inherits stdout, and exits: the runner
    waited for the pipes (40 s here, for ever for a server), past the job's 3 s timeout, then
    called a job that had succeeded a timeout. Now: a bounded drain, then whatever the job
    started is ended and named in result.json."""
    (spool_root.scripts_dir / "runaway.py").write_text(RUNAWAY)
    job_id = spool_root.submit("runaway.py", timeout=3)
    t0 = time.monotonic()
    runner(spool_root, "--python", sys.executable, timeout=60)
    took = time.monotonic() - t0
    rec = record(spool_root, job_id)
    assert rec["state"] == "done" and rec["result"] == {"ok": True}, rec
    pid = int((spool_root / "done" / job_id / "outputs" / "helper.pid").read_text())
    assert [k["pid"] for k in rec["leftovers_killed"]] == [pid], rec.get("leftovers_killed")
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone (or a zombie for init)
    assert took < 30, f"the runner took {took:.1f} s"
