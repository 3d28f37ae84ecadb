"""Scenario 10, disk full: the spool lives on a tiny tmpfs that a ballast file fills mid-run.

The runner must not crash or lose a job, must say plainly what is wrong, must wait (not fail
jobs) while the disk is full, and must carry on by itself once space returns.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest
from rkit import drop_many, finished, job_bytes, size, timeout_for, wait_for

N = size(400, 80)
FULL_FOR = size(20, 6)
# room for every job's files (about 11 tmpfs pages each) and no more: full only when the ballast
# fills it (8 MB for the reduced size; a fixed 8 MB would fill up by itself at the full size)
TMPFS_MB = max(8, 4 + N * 64 // 1024)


def fill(path) -> int:
    """Write a ballast file until the filesystem says it is full; returns its size."""
    written = 0
    chunk = b"\0" * (64 * 1024)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            try:
                written += os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


@pytest.mark.slow
@timeout_for(900, 120)
def test_disk_full_then_space_returns(scenario, tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        sp, runners = scenario.spool(mnt / "spool", lease_seconds=4, scan_interval=0.2)
        jobs = {f"full-{i:04d}": job_bytes(i, params={"out": 20000, "s": 0.05}) for i in range(N)}
        submitted = drop_many(sp, jobs)
        rp = runners.start("--slots", "2", name="tiny", quiet=False)
        wait_for(lambda: finished(sp) >= N // 5, 120, 0.05, "a fifth of the jobs done")
        ballast = mnt / "ballast"
        fill(ballast)
        at_full = finished(sp)
        time.sleep(FULL_FOR)
        fill(mnt / "ballast2")  # whatever the runner freed meanwhile
        assert rp.alive(), rp.stderr()[-3000:]
        during = finished(sp) - at_full
        os.unlink(ballast)
        os.unlink(mnt / "ballast2")
        t_back = time.monotonic()
        wait_for(lambda: finished(sp) > at_full + during, 60, 0.05, "work resumed after space returned")
        resumed_after = time.monotonic() - t_back
        wait_for(lambda: finished(sp) == N, 300, 0.1, "every job ended")
        runners.stop_all()
        log = rp.stderr()
        v = scenario.check(sp, submitted)
        assert v.done == N, v.summary()
        assert "disk is full" in log, log[-3000:]
        scenario.figures(
            "10 disk full",
            f"{N} jobs on a {TMPFS_MB} MB tmpfs, full for {FULL_FOR} s",
            v,
            finished_while_full=during,
            resumed_after_s=round(resumed_after, 2),
        )
    finally:
        for rs in scenario.runner_sets:
            rs.stop_all(timeout=10)
        subprocess.run(["umount", str(mnt)], capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
