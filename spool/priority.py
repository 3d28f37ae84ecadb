"""Changing the priority of pending jobs (`spool priority ID... N`), atomically.

A pending job is taken out of `pending/` by a claim (one rename, as a runner would: if a runner
wins, the job is running and keeps its priority), its `job.json` is replaced by the same job with
the new priority, the user's own bytes are kept beside it as `job.original.json` (the first
time only: they stay the bytes the user wrote), and the folder is moved back to `pending/`.
At every instant the job is whole in exactly one state; a crash in the middle leaves it in
`claimed/` without a lease, which the runners' take-over puts back in `pending/`.
"""

from __future__ import annotations

import json

from spool.errors import InvalidJob, NotFound, SpoolError
from spool.jobs import new_token
from spool.layout import JOB_FILE, Layout
from spool.model import decode_job, job_from_dict
from spool.protocol import ORIGINAL_JOB_FILE, claim, move, publish_bytes, publish_new
from spool.states import State
from spool.untrusted import read_file

__all__ = ["set_priority"]


def set_priority(layout: Layout, job_id: str, priority: int) -> str:
    """Give one pending job a new priority; returns what happened (`"priority N"`, `"already running"`...)."""
    entry = layout.find(job_id)
    if entry is None:
        raise NotFound(f"no job {job_id!r} in {layout.root}")
    if entry.state is not State.PENDING:
        return f"already {'running' if entry.state is State.CLAIMED else entry.state.value}: unchanged"
    folder = claim(layout, entry, new_token("priority"))
    if folder is None:  # a runner took it first (or another change is under way): look again
        return set_priority(layout, job_id, priority)
    try:
        raw = read_file(folder / JOB_FILE)
        data = decode_job(raw, f"{job_id}.json")
        job = job_from_dict(data, f"{job_id}.json", env_allow=None)  # checked on entry, and by the runner
        if job.priority != priority:
            if not (folder / ORIGINAL_JOB_FILE).exists():
                publish_new(folder / ORIGINAL_JOB_FILE, raw)
            new = job.model_copy(update={"priority": priority}).to_file_dict()
            publish_bytes(folder / JOB_FILE, json.dumps(new, indent=1).encode() + b"\n")
    except (OSError, ValueError, SpoolError) as exc:
        move(layout, folder, job_id, State.PENDING)  # unchanged, back where it was
        if isinstance(exc, SpoolError):
            raise
        raise InvalidJob(f"cannot change its priority: {exc}", file=f"{job_id}.json") from None
    if move(layout, folder, job_id, State.PENDING) is None:
        raise NotFound(f"job {job_id!r} was moved while its priority changed")
    return f"priority {priority}"
