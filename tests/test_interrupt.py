"""Interrupted is not failed: real runner processes whose machine goes away, and scripts that
save and resume (the stop notice, the checkpoint folder, `checkpoint_exit_code`, the cap)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runner_kit import BIN, record, runner, wait_for
from test_runner import set_settings

from spool import Spool, State

REPO_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

SCRIPTS = {
    # writes what it was told, then works until stopped; on the stop notice it saves and exits
    "saver.py": (
        "import json, os, signal, sys, time\n"
        "ck = os.environ['SPOOL_CHECKPOINT_DIR']\n"
        "seen = {k: os.environ[k] for k in ('SPOOL_ATTEMPT', 'SPOOL_RESUMED', 'SPOOL_CHECKPOINT_DIR',"
        " 'SPOOL_STOP_REQUESTED')}\n"
        "open(os.path.join(ck, 'attempt-%s.json' % seen['SPOOL_ATTEMPT']), 'w').write(json.dumps(seen))\n"
        "def on_term(*_):\n"
        "    stop = os.path.exists(os.environ['SPOOL_STOP_REQUESTED'])\n"
        "    open(os.path.join(ck, 'saved'), 'w').write(json.dumps({'stop_file': stop}))\n"
        "    sys.exit(0 if '--clean' in sys.argv[1:] else 143)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "if os.path.exists(os.path.join(ck, 'saved')):\n"
        "    print(json.dumps({'resumed': True, 'attempt': seen['SPOOL_ATTEMPT']}))\n"
        "    sys.exit(0)\n"
        "print(json.dumps({'working': True}), flush=True)\n"
        "time.sleep(120)\n"
    ),
    # ignores the stop notice: only SIGKILL ends it
    "stubborn.py": (
        "import json, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(json.dumps({'working': True}), flush=True)\ntime.sleep(120)\n"
    ),
    # HTCondor's convention: the first attempt saves and exits 85 ("run me again")
    "ckpt85.py": (
        "import json, os, sys\nck = os.environ['SPOOL_CHECKPOINT_DIR']\n"
        "mark = os.path.join(ck, 'half')\n"
        "if not os.path.exists(mark):\n"
        "    open(mark, 'w').write('first half done')\n    sys.exit(85)\n"
        "print(json.dumps({'finished': open(mark).read(), 'resumed': os.environ['SPOOL_RESUMED']}))\n"
    ),
    # kills its own runner (and itself): the job that brings its machine down
    "killrunner.py": "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n",
    "sleep.py": "import json, time\nprint(json.dumps({'working': True}), flush=True)\ntime.sleep(120)\n",
}


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    s = Spool.init(tmp_path / "spool")
    for name, text in SCRIPTS.items():
        (s.scripts_dir / name).write_text(text)
    (s.scripts_dir / "train_mlp.py").write_text((REPO_SCRIPTS / "train_mlp.py").read_text())
    set_settings(s, lease_seconds=3, scan_interval=0.2)
    return s


def _claimed_folder(sp: Spool) -> Path:
    def ready() -> Path | None:
        for p in sp.layout.state_dir(State.CLAIMED).iterdir():
            if (p / "claim.json").exists() and (p / "metrics.jsonl").stat().st_size > 0:
                return p
        return None

    return wait_for(ready, timeout=120)


def _pending_record(sp: Spool, job_id: str) -> dict[str, Any]:
    view = sp.get(job_id)
    assert view.state is State.PENDING, view.state
    return json.loads((view.path / "result.json").read_text())


def test_sigterm_to_runner_and_script_group_at_once_is_an_interruption(sp: Spool) -> None:
    """What Slurm's scancel and a shutdown do: every process gets SIGTERM at the same instant."""
    jid = sp.submit("sleep.py", retries=2)
    proc = runner(sp, "--name", "house", wait=False)
    folder = _claimed_folder(sp)
    script_pid = _script_pid(folder)
    os.kill(proc.pid, signal.SIGTERM)
    os.killpg(script_pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    rec = _pending_record(sp, jid)
    assert rec["state"] == "interrupted" and rec["error"]["kind"] == "stopped", rec
    assert rec["interruptions"] == 1 and rec["runner"] == "house"
    assert "together with its runner" in rec["error"]["message"]
    # retries untouched: the next attempt still has both of its retries
    proc = runner(sp, "--name", "again", wait=False)
    folder = _claimed_folder(sp)
    assert json.loads((folder / "claim.json").read_text())["attempt"] == 2
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # two signals at once would be taken as one
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


def _script_pid(folder: Path) -> int:
    """The pid of the script running in `folder` (its cwd is the folder's outputs/)."""
    want = str(folder / "outputs")
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "cwd") == want:
                    return int(p.name)
            except OSError:
                continue
    raise AssertionError(f"no process runs in {want}")


def test_second_signal_gives_the_stop_notice_and_requeues_without_a_retry(sp: Spool) -> None:
    jid = sp.submit("saver.py", retries=0)
    proc = runner(sp, wait=False)
    folder = _claimed_folder(sp)
    proc.send_signal(signal.SIGINT)  # first: finish what runs, take nothing new
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # second: the stop notice, then back to pending/
    proc.communicate(timeout=60)
    rec = _pending_record(sp, jid)
    assert rec["state"] == "interrupted" and rec["interruptions"] == 1
    ckpt = sp.get(jid).path / "checkpoint"
    assert json.loads((ckpt / "saved").read_text()) == {"stop_file": True}  # saw the stop file
    seen = json.loads((ckpt / "attempt-1.json").read_text())
    assert seen["SPOOL_RESUMED"] == "0" and seen["SPOOL_CHECKPOINT_DIR"] == str(folder / "checkpoint")
    assert seen["SPOOL_STOP_REQUESTED"] == str(folder / "stop_requested")
    runner(sp)  # the next attempt resumes from the checkpoint, on whichever machine
    done = record(sp, jid)
    assert done["state"] == "done" and done["result"] == {"resumed": True, "attempt": "2"}
    assert done["interruptions"] == 1 and done["attempt"] == 2
    assert [p["state"] for p in done["attempts"]] == ["interrupted", "done"]
    assert (
        json.loads((sp.get(jid).path / "checkpoint" / "attempt-2.json").read_text())["SPOOL_RESUMED"] == "1"
    )
    assert done["checkpoint_bytes"] > 0
    shown = subprocess.run([str(BIN), "--spool", str(sp.root), "show", jid], capture_output=True, text=True)
    assert "attempts: 2 (1 interrupted)" in shown.stdout, shown.stdout
    assert "  1: interrupted (stopped) on " in shown.stdout
    row = Spool(sp.root).results().set_index("id").loc[jid]
    assert row["interruptions"] == 1 and row["hosts"]
    # the report's job page draws the two pieces on the run's timeline
    from report.build import build_report

    index = build_report(Spool(sp.root), processes=0)
    page = (index.parent / "jobs" / f"{jid}.html").read_text()
    assert page.count('class="attempt-piece state-interrupted"') == 1
    assert page.count('class="attempt-piece state-done"') == 1
    assert "2, 1 interrupted, on 1 machine" in page


def test_a_script_ignoring_the_notice_is_killed_after_its_stop_grace(sp: Spool) -> None:
    jid = sp.submit({"script": "stubborn.py", "stop_grace": 1.5})
    proc = runner(sp, wait=False)
    _claimed_folder(sp)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: sp.get(jid).state is State.PENDING, timeout=30, step=0.02)
    took = time.monotonic() - t0
    proc.communicate(timeout=30)
    assert 1.4 <= took < 10, took
    assert _pending_record(sp, jid)["exit_code"] == -signal.SIGKILL


def test_checkpoint_exit_code_requeues_at_once_without_counting(sp: Spool) -> None:
    jid = sp.submit({"script": "ckpt85.py", "checkpoint_exit_code": 85, "retries": 0})
    runner(sp)
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["result"] == {"finished": "first half done", "resumed": "1"}
    assert rec["attempt"] == 2 and rec["interruptions"] == 0
    first = json.loads((sp.get(jid).path / "attempts" / "1" / "result.json").read_text())
    assert first["state"] == "checkpointed" and first["exit_code"] == 85 and first["error"] is None


def test_a_job_that_kills_its_runner_every_time_stops_at_the_cap(sp: Spool) -> None:
    set_settings(sp, lease_seconds=2, scan_interval=0.2, max_interruptions=2)
    jid = sp.submit("killrunner.py")
    deadline = time.monotonic() + 240
    cmd = [str(BIN), "--spool", str(sp.root), "runner", "--nice", "0", "--exit-when-idle"]
    while sp.get(jid).state is not State.FAILED:  # a service manager restarting the runner
        assert time.monotonic() < deadline, sp.get(jid).state
        # a session of its own: the script kills its runner's whole process group
        subprocess.run(cmd, start_new_session=True, capture_output=True, timeout=120)
    rec = record(sp, jid)
    assert rec["state"] == "failed" and rec["error"]["kind"] == "interrupted", rec
    assert "max_interruptions = 2" in rec["error"]["message"] and rec["interruptions"] == 3
    attempts = sp.get(jid).path / "attempts"
    kinds = [json.loads((attempts / n / "result.json").read_text())["error"]["kind"] for n in ("1", "2")]
    assert kinds == ["lost_lease", "lost_lease"]


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="torch is not importable")
def test_train_mlp_killed_in_epoch_4_of_8_resumes_on_another_runner(sp: Spool) -> None:
    params = {"epochs": 8, "data": "synthetic", "hidden": 128, "batch_size": 16}
    jid = sp.submit("train_mlp.py", params)
    first = runner(sp, "--name", "laptop", wait=False)
    folder = _claimed_folder(sp)

    def epochs(path: Path) -> list[int]:
        return [json.loads(ln)["epoch"] for ln in path.read_text().splitlines() if '"epoch"' in ln]

    wait_for(lambda: len(epochs(folder / "metrics.jsonl")) >= 3, timeout=300, step=0.01)
    first.send_signal(signal.SIGKILL)  # in epoch 4: its script dies with it (the reaper)
    first.communicate(timeout=30)
    runner(sp, "--name", "desktop", timeout=600)
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["runner"] == "desktop", rec
    assert rec["result"]["resumed_from"] in (4, 5)
    ran_before = epochs(sp.get(jid).path / "attempts" / "1" / "metrics.jsonl")
    ran_after = epochs(sp.get(jid).path / "metrics.jsonl")
    assert ran_after == list(range(rec["result"]["resumed_from"], 9))
    assert len(ran_before) + len(ran_after) <= 8 + 1
    assert rec["interruptions"] == 1 and rec["attempt"] == 2
    assert [p["runner"] for p in rec["attempts"]] == ["laptop", "desktop"]


def test_every_job_gets_the_variables_of_resumable_work(sp: Spool) -> None:
    """The SPOOL_* variables of resumable work are set for every job, fresh or resumed."""
    (sp.scripts_dir / "env.py").write_text(
        "import json, os\nprint(json.dumps({k: v for k, v in os.environ.items() if k.startswith('SPOOL_')}))\n"
    )
    jid = sp.submit("env.py")
    runner(sp)
    env = record(sp, jid)["result"]
    assert env["SPOOL_ATTEMPT"] == "1" and env["SPOOL_RESUMED"] == "0"
    assert env["SPOOL_CHECKPOINT_DIR"].endswith("/checkpoint")
    assert env["SPOOL_STOP_REQUESTED"].endswith("/stop_requested")
    assert not (sp.get(jid).path / "checkpoint").exists()  # left empty: removed with the blanks


def test_yield_with_hours_ending_mid_job_requeues_it_with_the_notice(sp: Spool, tmp_path: Path) -> None:
    """--hours H-(H+1) and --yield, on a runner whose wall clock says the hour ends in 25 s: the
    job started inside the window gets the stop notice when it closes and goes back, interrupted."""
    import clock_kit

    shim, why = clock_kit.build(tmp_path)
    if shim is None:
        pytest.skip(why)
    now = time.time()
    local = time.localtime(now)
    next_hour = now - (local.tm_min * 60 + local.tm_sec) - (now % 1) + 3600
    skew = int(next_hour - 25 - now)  # the runner's clock: 25 s before a full hour
    hour = time.localtime(now + skew).tm_hour
    jid = sp.submit("saver.py")
    env = {**os.environ, **clock_kit.skewed(shim, skew)}
    cmd = [
        str(BIN),
        "--spool",
        str(sp.root),
        "runner",
        "--nice",
        "0",
        "--yield",
        "--hours",
        f"{hour}-{(hour + 1) % 24}",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _claimed_folder(sp)
        wait_for(lambda: sp.get(jid).state is State.PENDING, timeout=90, step=0.1)
        rec = _pending_record(sp, jid)
        assert rec["state"] == "interrupted" and rec["error"]["kind"] == "yield", rec
        assert "outside hours" in rec["error"]["message"]
        assert rec["interruptions"] == 1
        ckpt = sp.get(jid).path / "checkpoint"
        assert json.loads((ckpt / "saved").read_text()) == {"stop_file": True}  # it had the notice
        time.sleep(1.0)
        assert sp.get(jid).state is State.PENDING  # outside the hours now: not started again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_a_job_paused_longer_than_the_lease_is_handed_back_not_held(sp: Spool) -> None:
    """--pause-when-busy: the user stays on the machine past a whole lease; the paused job is
    continued, given the stop notice and handed back (interrupted), for an idle machine to run."""
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from runner.machine.capabilities import detect

    set_settings(sp, lease_seconds=2, scan_interval=0.2)
    jid = sp.submit("saver.py")
    r = Runner(
        Spool(sp.root),
        RunnerOptions(name="busy", pause_when_busy=True, nice=0),
        caps=detect(sys.executable, [], probe_torch=False),
    )
    assert r.pauser is not None
    idle = [1e9]
    r.pauser.read_idle = lambda: idle[0]
    r.pauser.read_every = 0.0
    end = time.monotonic() + 60
    # its first metrics line comes once its SIGTERM handler is in place
    while not (r.slots and (sp.get(jid).path / "metrics.jsonl").stat().st_size > 0):
        assert time.monotonic() < end
        r.run_once()
        time.sleep(0.05)
    idle[0] = 0.0  # the user is back, and stays
    while sp.get(jid).state is not State.PENDING:
        assert time.monotonic() < end, sp.get(jid).state
        r.run_once()
        time.sleep(0.05)
    rec = _pending_record(sp, jid)
    assert rec["state"] == "interrupted" and rec["error"]["kind"] == "paused", rec
    assert json.loads((sp.get(jid).path / "checkpoint" / "saved").read_text()) == {"stop_file": True}
    r.reaper.close()


def test_a_checkpoint_that_fills_the_share_fails_saying_the_share_is_full(tmp_path: Path) -> None:
    """The spool on an 8 MB tmpfs; the script's checkpoint save runs out of room (ENOSPC), it
    removes its temp file and fails: the error names the full share, kind disk_full."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        sp = Spool.init(mnt / "spool")
        (sp.scripts_dir / "hog.py").write_text(
            "import os\ntmp = os.path.join(os.environ['SPOOL_CHECKPOINT_DIR'], 'state.tmp')\n"
            "try:\n    with open(tmp, 'wb') as f:\n        while True:\n            f.write(b'x' * 65536)\n"
            "finally:\n    os.unlink(tmp)\n"
        )
        jid = sp.submit("hog.py")
        runner(sp)
        rec = record(sp, jid)
        assert rec["state"] == "failed" and rec["error"]["kind"] == "disk_full", rec["error"]
        assert "the share holding the job folder was full" in rec["error"]["message"]
        assert "exit code 1" in rec["error"]["message"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_loop_step_slower_than_the_hold_still_sees_the_same_signal(sp: Spool) -> None:
    """Runner and script signalled together, but the loop gets round to the dead script only
    2 s later (a step slowed by a loaded machine or a slow share): still an interruption. The
    moment that counts is the script's reaping, not the step that noticed it (CI under load:
    a scancel'd job went to failed/ with `exit`)."""
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from runner.core.parts import build_parts
    from runner.machine.capabilities import detect

    jid = sp.submit("sleep.py")
    opts = RunnerOptions(name="slow", nice=0)
    parts = build_parts(sp, opts, lambda _m: None, caps=detect(sys.executable, [], probe_torch=False))
    r = Runner(sp, opts, parts, log=lambda _m: None)
    try:
        folder = None
        for _ in range(600):
            r.run_once()
            if r.slots and (folder := next(iter(r.slots.values())).folder) and (folder / "metrics.jsonl").stat().st_size:
                break
            time.sleep(0.05)
        assert folder is not None
        slot = next(iter(r.slots.values()))
        assert slot.proc is not None
        os.killpg(slot.proc.pid, signal.SIGTERM)  # Slurm: every process at the same instant
        r.request_stop()
        wait_for(lambda: slot.proc is not None and slot.proc.ended is not None, timeout=30)  # reaped by its pump
        time.sleep(2 * 1.2)  # the loop's next step comes late
        for _ in range(200):
            r.run_once()
            if not r.slots:
                break
            time.sleep(0.05)
        rec = _pending_record(sp, jid)
        assert rec["state"] == "interrupted" and rec["error"]["kind"] == "stopped", rec
    finally:
        r.kits.clear()
        r.reaper.close()
        r.clock.remove()
