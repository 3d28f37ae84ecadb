"""Driving real `spool runner` processes from tests: start one, read a job's record, wait for a state."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from spool import Spool

__all__ = ["BIN", "runner", "record", "wait_for", "stop_leftover_runners", "proc_stat", "gone"]

BIN = Path(sys.executable).parent / "spool"
T = TypeVar("T")
_started: list[subprocess.Popen[str]] = []  # runners a test left running (it failed before stopping them)


def stop_leftover_runners() -> None:
    """Kill the runners this test started and did not stop (conftest calls it after each test)."""
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def runner(sp: Spool, *args: str, wait: bool = True, timeout: float = 180) -> subprocess.Popen[str]:
    """A runner process on `sp`; with `wait`, run it with --exit-when-idle and check it exits 0."""
    cmd = [str(BIN), "--spool", str(sp.root), "runner", "--nice", "0", *args]
    if wait:
        cmd.append("--exit-when-idle")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _started.append(proc)
    if wait:
        _out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        proc.stderr_text = err  # type: ignore[attr-defined]
    return proc


def record(sp: Spool, job_id: str) -> dict[str, Any]:
    """The job's result.json (it must have one)."""
    v = sp.get(job_id)
    assert v.result is not None, f"{job_id} in {v.state} has no result"
    return v.result


def wait_for(cond: Callable[[], T], timeout: float = 30, step: float = 0.05) -> T:
    """Poll `cond` until it returns something true; fail the test after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (the state first), or None if no
    such process (Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, not yet reaped by whoever adopted it)."""
    fields = proc_stat(pid)
    return fields is None or fields[0] == "Z"
