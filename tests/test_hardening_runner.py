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
import time

import pytest
from runner_kit import BIN, wait_for

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

