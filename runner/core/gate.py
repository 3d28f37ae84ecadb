"""The `after` gate: a job whose dependencies are not all done is left in `pending/`.

A dependency that failed (or that names no job or sweep: a file dropped by hand) fails the job,
kind `dependency`, naming it. What a dependency is and when it is met is `spool.deps`; this
module only decides, per scan, for the candidates that have an `after`. A dependency seen done
stays done (done is final; `spool gc` archives done jobs as done), so a long chain costs one look
per dependency until it is met; within one scan each dependency is looked at once however many
jobs wait for it (a sweep of 1,000 jobs after one sweep costs one look at that sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from spool.deps import Dep, dep_state
from spool.errors import SpoolError
from spool.jobs import new_token
from spool.layout import JOB_FILE, Entry, Layout
from spool.model import Job, parse_job
from spool.protocol import FsOps, archive_previous_attempt, claim
from spool.untrusted import read_file

__all__ = ["AfterGate", "GO", "WAIT", "fail_dependency"]

GO = "go"
WAIT = "wait"

#: fails a claimed folder: (folder, job id, job dict, kind, message, attempt, fs)
FailNow = Callable[[Path, str, "dict[str, Any] | None", str, str, int, FsOps], None]


class AfterGate:
    """Decides, for a pending job with `after`, whether it may start (`GO`), must wait (`WAIT`),
    or cannot ever start (the message naming the dependency that failed or does not exist)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self._met: set[str] = set()
        self._pass: dict[str, tuple[Dep, str]] = {}
        self.waiting = 0  # jobs the last scan left waiting: a job ending may let them go

    def new_pass(self) -> None:
        """Forget what this scan learnt of dependencies still waiting (they move on)."""
        self._pass = {}
        self.waiting = 0

    def _state(self, dep: str) -> tuple[Dep, str]:
        if dep in self._met:
            return Dep.DONE, dep
        if dep not in self._pass:
            st = dep_state(self.layout, dep)
            if st[0] is Dep.DONE:
                self._met.add(dep)
            self._pass[dep] = st
        return self._pass[dep]

    def verdict(self, job: Job) -> str:
        waiting = False
        for dep in job.after:
            st, who = self._state(dep)
            if st is Dep.FAILED:
                via = "" if who == dep else f" (its job {who} failed)"
                return f"dependency {dep} failed{via}"
            if st is Dep.UNKNOWN:
                return f"dependency {dep} names no job or sweep in this spool"
            waiting |= st is Dep.WAITING
        self.waiting += waiting
        return WAIT if waiting else GO


def fail_dependency(
    layout: Layout, entry: Entry, message: str, runner: str, fail_now: FailNow, fs: FsOps
) -> bool:
    """Claim a pending job that can never start and fail it (kind `dependency`); False if another
    runner took it first."""
    folder = claim(layout, entry, new_token(runner), fs=fs)
    if folder is None:
        return False
    attempt = (archive_previous_attempt(folder, fs=fs) if entry.is_folder else 0) + 1
    try:
        raw = read_file(folder / JOB_FILE)
        job: dict[str, Any] | None = parse_job(raw).model_dump(mode="json")
    except (OSError, SpoolError):  # the record is written whatever the file holds now
        job = None
    fail_now(folder, entry.id, job, "dependency", message, attempt, fs)
    return True
