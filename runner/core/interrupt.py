"""Interruptions: a job whose machine or runner goes away is not a failure.

Every stop this runner makes is the *stop notice*: the file `SPOOL_STOP_REQUESTED` names
appears, SIGTERM goes to the script's process group, and after a grace (the job's `stop_grace`,
else spool.toml's) SIGKILL. A job stopped because the runner stops, yields the machine or is
paused too long, a job whose script died of the same signal at the same moment as its runner
(Slurm's scancel, a shutdown: every process is signalled at once), and a job whose lease ran
out under a dead runner, are *interrupted*: back to `pending/` with a record saying where it
ran and why, counted in `interruptions`, never as a spent retry. Past `max_interruptions` it
is failed, kind `interrupted` (a job that brings its machine down cannot cycle for ever).
Exiting with the job's `checkpoint_exit_code` means "saved, run me again": requeued at once,
counted as neither.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any, Protocol

from spool.history import INTERRUPTED, count_since_retry
from spool.layout import CHECKPOINT_DIR
from spool.model import Job
from spool.settings import Settings
from spool.states import State

__all__ = [
    "STOP_FILE",
    "CHECKPOINTED",
    "SIGNAL_DEATHS",
    "HOLD_SIGNALLED",
    "grace_of",
    "give_notice",
    "interruption",
    "checkpoint_env",
    "share_full_note",
]

#: the file `SPOOL_STOP_REQUESTED` names, made in the job folder when a stop is asked
STOP_FILE = "stop_requested"
#: the `state` of an attempt that exited with its `checkpoint_exit_code`
CHECKPOINTED = "checkpointed"
#: exit statuses of a script killed by a signal that stops a whole machine or allocation
SIGNAL_DEATHS = frozenset({-signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP, -signal.SIGKILL})
#: seconds a script found dead of such a signal, not sent by us, waits to be written up: its
#: runner may be getting the same signal (Python runs the handler between two bytecodes)
HOLD_SIGNALLED = 1.0
#: free bytes under which a failure is put down to a full share
FULL_SHARE = 1 << 20


class _Stoppable(Protocol):
    kill_deadline: float | None

    def stop(self, now: float, grace: float = ...) -> None: ...


def grace_of(job: Job, settings: Settings) -> float:
    """Seconds between a stop's SIGTERM and its SIGKILL for this job."""
    return job.stop_grace if job.stop_grace is not None else settings.stop_grace


def give_notice(proc: _Stoppable, folder: Path, now: float, grace: float) -> None:
    """The stop notice: the stop file appears, SIGTERM to the group now, SIGKILL at `now + grace`.
    A second notice changes nothing (the first deadline stands)."""
    if proc.kill_deadline is not None:
        return
    try:
        (folder / STOP_FILE).touch()
    except OSError:  # a share refusing writes: the signal is the notice that matters
        pass
    proc.stop(now, grace)


def interruption(
    folder: Path, settings: Settings, cause: str, message: str
) -> tuple[str, dict[str, Any], State, int]:
    """(state, error, target, interruptions) of an interrupted attempt of the job in `folder`:
    back to pending, or failed with kind `interrupted` once interrupted more than the cap allows.
    `cause` is the error's kind while it goes back (`stopped`, `lost_lease`, `yield`, `paused`)."""
    count = count_since_retry(folder, INTERRUPTED) + 1
    cap = settings.max_interruptions
    if count > cap:
        msg = (
            f"interrupted {count} times, more than max_interruptions = {cap} (spool.toml); "
            f"the last time: {message}"
        )
        return "failed", {"kind": INTERRUPTED, "message": msg}, State.FAILED, count
    return INTERRUPTED, {"kind": cause, "message": message}, State.PENDING, count


def checkpoint_env(folder: Path, attempt: int) -> dict[str, str]:
    """SPOOL_CHECKPOINT_DIR (made if missing), SPOOL_ATTEMPT, SPOOL_RESUMED, SPOOL_STOP_REQUESTED."""
    ckpt = folder / CHECKPOINT_DIR
    ckpt.mkdir(exist_ok=True)
    resumed = attempt > 1 and any(ckpt.iterdir())
    return {
        "SPOOL_CHECKPOINT_DIR": str(ckpt),
        "SPOOL_ATTEMPT": str(attempt),
        "SPOOL_RESUMED": "1" if resumed else "0",
        "SPOOL_STOP_REQUESTED": str(folder / STOP_FILE),
    }


def share_full_note(folder: Path, stderr_tail: str = "") -> str | None:
    """A sentence for a failure when the share holding `folder` is (nearly) full, or the script
    said it found it full (ENOSPC: "No space left on device"), else None."""
    try:
        free: int | None = shutil.disk_usage(folder).free
    except OSError:
        free = None
    said = "No space left on device" in stderr_tail or "[Errno 28]" in stderr_tail
    if not said and (free is None or free >= FULL_SHARE):
        return None
    left = f"{free} bytes free now" if free is not None else "free space unknown"
    return (
        f"the share holding the job folder was full ({left}): its checkpoint folder ({CHECKPOINT_DIR}/) "
        "and outputs could not be written; free space on the spool and retry"
    )
