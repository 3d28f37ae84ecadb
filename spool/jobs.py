"""Operations on jobs built from protocol moves: submit, reject, cancel, retry, inspect."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spool.errors import InvalidJob, NotFound, SpoolError
from spool.ids import is_valid_id, new_id
from spool.layout import CLAIM_FILE, DROPPED, JOB_FILE, RESULT_FILE, Entry, Layout, resolve_inside
from spool.model import MAX_JOB_BYTES, Job, parse_job
from spool.protocol import (
    FsOps,
    archive_previous_attempt,
    claim,
    move,
    publish_bytes,
    publish_json,
    publish_reserved,
    read_claim,
)
from spool.states import State
from spool.untrusted import read_file, read_json

__all__ = [
    "JobView",
    "new_token",
    "utc_now",
    "failure_record",
    "check_script",
    "publish_job",
    "reject",
    "cancel",
    "retry",
    "view",
    "CANCEL_FILE",
    "flat_row",
]

CANCEL_FILE = "cancel"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


def new_token(runner: str) -> str:
    """A claim token: the runner's name and random bits, unique per claim."""
    return f"{runner}.{os.urandom(4).hex()}"


def failure_record(
    job_id: str, job: dict[str, Any] | None, kind: str, message: str, **extra: Any
) -> dict[str, Any]:
    """The `result.json` of a job that ended without running to a result."""
    rec: dict[str, Any] = {
        "format": 1,
        "id": job_id,
        "state": "failed",
        "job": job,
        "result": None,
        "error": {"kind": kind, "message": message},
        "host": socket.gethostname(),
        "ended": utc_now(),
    }
    rec.update(extra)
    return rec


def check_script(scripts_dir: Path, job: Job, file: str | None = None) -> Path:
    """The script's absolute path, refused if it leaves the scripts folder or does not exist."""
    try:
        path = resolve_inside(scripts_dir, job.script, "script")
    except SpoolError as exc:
        raise type(exc)(exc.message, file=file, field="script") from None
    if not path.is_file():
        raise InvalidJob(f"no script {job.script!r} in {scripts_dir}", file=file, field="script")
    return path


def publish_job(
    layout: Layout, raw: bytes, job_id: str | None = None, *, fsync: bool = True, fs: FsOps | None = None
) -> str:
    """Publish job bytes as `pending/<id>.json` (temp, fsync, rename); returns the id.

    An explicit `job_id` is reserved once for the life of the spool (`ids/<id>/`): a second
    publish of it is refused whatever became of the first job (claimed, requeued, finished)."""
    target = layout.state_dir(State.PENDING) / f"{job_id or new_id()}.json"
    if job_id is None:
        publish_bytes(target, raw, fsync=fsync)  # a fresh id: nothing to collide with
        return target.name[:-5]
    if not is_valid_id(job_id):
        raise InvalidJob(f"{job_id!r} cannot be a job id (letters, digits, . _ -; no separators)", field="id")
    # find: a job of this id from before reservations (or a file dropped under that name)
    if layout.find(job_id) is not None or not publish_reserved(
        layout.reserved, job_id, target, raw, fsync=fsync, fs=fs or FsOps()
    ):
        raise InvalidJob(f"a job {job_id!r} already exists; ids are never reused", field="id")
    return job_id


def _finish_failed(layout: Layout, folder: Path, job_id: str, record: dict[str, Any]) -> Path | None:
    publish_json(folder / RESULT_FILE, record)
    return move(layout, folder, job_id, State.FAILED)


def reject(layout: Layout, entry: Entry, reason: str, token: str) -> Path | None:
    """Move a pending file that is not a valid job to failed/, its bytes kept, with the reason."""
    dest_id = entry.id if entry.is_job_name else f"invalid-{new_id()}"
    # a folder that is no job (no id for a name, or no job.json) is kept whole, beside the record
    alien = entry.is_folder and not (entry.is_job_name and os.path.lexists(entry.path / JOB_FILE))
    inside = DROPPED if alien else None
    folder = claim(layout, entry, token, dest_id=dest_id, inside=inside)
    if folder is None:
        return None
    rec = failure_record(dest_id, None, "invalid", reason, original_name=entry.path.name)
    return _finish_failed(layout, folder, dest_id, rec)


def cancel(layout: Layout, job_id: str, token: str) -> str:
    """Cancel one job: a pending one moves to failed/; a running one is marked for its runner."""
    entry = layout.find(job_id)
    if entry is None:
        raise NotFound(f"no job {job_id!r}")
    if entry.state is State.PENDING:
        folder = claim(layout, entry, token)
        if folder is None:
            return cancel(layout, job_id, token)  # it moved under us: look again
        if entry.is_folder:  # a retried job: keep the earlier attempt's result.json and logs
            archive_previous_attempt(folder)
        job = _job_dict(folder / JOB_FILE)
        _finish_failed(
            layout, folder, job_id, failure_record(job_id, job, "cancelled", "cancelled while pending")
        )
        return "cancelled"
    if entry.state is State.CLAIMED:
        try:
            publish_bytes(entry.path / CANCEL_FILE, utc_now().encode())
        except SpoolError:
            return cancel(layout, job_id, token)
        return "stopping"
    return f"already {entry.state.value}"


def retry(layout: Layout, job_id: str) -> Path | None:
    """Put a failed job back in pending/ as a new attempt; the old attempt's files are kept."""
    src = layout.state_dir(State.FAILED) / job_id
    if not (src / JOB_FILE).exists():
        raise NotFound(f"no failed job {job_id!r}")
    attempt = (read_claim(src) or {}).get("attempt", 0)
    publish_json(src / "retry.json", {"base": attempt, "at": utc_now()})
    for name in (CANCEL_FILE,):
        try:
            os.unlink(src / name)
        except FileNotFoundError:
            pass
    return move(layout, src, job_id, State.PENDING)


def _job_dict(path: Path) -> dict[str, Any] | None:
    try:
        return parse_job(read_file(path, MAX_JOB_BYTES), env_allow=None).model_dump(mode="json")
    except (OSError, SpoolError):
        return None


@dataclass
class JobView:
    """What one job looks like right now: for `ls`, `show` and the API."""

    id: str
    state: State
    path: Path
    job: dict[str, Any] | None = None
    problem: str | None = None
    result: dict[str, Any] | None = None
    claim: dict[str, Any] | None = None
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, files: bool = False) -> dict[str, Any]:
        job = self.job or {}
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state.value,
            "script": job.get("script"),
            "params": job.get("params"),
            "name": job.get("name"),
            "sweep": job.get("sweep"),
            "labels": job.get("labels") or {},
            "created": self.created,
        }
        if job.get("after"):
            out["after"] = job["after"]
        if self.problem:
            out["problem"] = self.problem
        if self.result is not None:
            for key in (
                "result",
                "error",
                "host",
                "device",
                "duration",
                "attempt",
                "started",
                "ended",
                "exit_code",
                "usage",
                "stopped",
                "early_terminate",
            ):
                if key in self.result:
                    out[key] = self.result[key]
        elif self.claim is not None:
            out["runner"] = self.claim.get("runner")
            out["host"] = self.claim.get("host")
            out["attempt"] = self.claim.get("attempt")
            out["started"] = self.claim.get("claimed_at")
        if files:
            out["path"] = str(self.path)
            if self.path.is_dir():
                out["files"] = sorted(p.name for p in self.path.iterdir())
        return out


def flat_row(d: dict[str, Any]) -> dict[str, Any]:
    """A job's `to_dict()` as one flat row, columns named as `spool results` names them (for `--where`)."""
    row = {k: v for k, v in d.items() if not isinstance(v, (dict, list))}
    for prefix, key in (("param.", "params"), ("label.", "labels"), ("usage.", "usage")):
        if isinstance(d.get(key), dict):
            _flatten(row, prefix, d[key])
    if isinstance(d.get("result"), dict):
        _flatten(row, "result.", d["result"])
    if isinstance(d.get("error"), dict):
        row["error.kind"] = d["error"].get("kind")
        row["error.message"] = d["error"].get("message")
    return row


def _flatten(row: dict[str, Any], prefix: str, obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        if isinstance(value, dict):
            _flatten(row, f"{prefix}{key}.", value)
        else:
            row[prefix + key] = value


def _created_from_id(job_id: str) -> str | None:
    try:
        return datetime.strptime(job_id[:22], "%Y%m%dT%H%M%S-%f").replace(tzinfo=timezone.utc).isoformat()
    except ValueError:
        return None


def _result_record(entry: Entry) -> dict[str, Any] | None:
    """A finished job's result.json, made safe to show; a missing or odd one is described
    (a failed job always has an error to show, a done one keeps None: its result is unknown)."""
    try:
        rec = read_json(entry.path / RESULT_FILE)
        problem = None if isinstance(rec, dict) else "result.json is not a JSON object"
    except FileNotFoundError:
        rec, problem = None, "no result.json"
    except OSError as exc:
        rec, problem = None, f"cannot read result.json: {exc.strerror}"
    except (ValueError, RecursionError):
        rec, problem = None, "result.json is not valid JSON"
    if problem is None:
        err = rec.get("error")
        if err is not None and not isinstance(err, dict):  # a hand-made record: keep it showable
            rec["error"] = {"kind": "unknown", "message": str(err)}
        return rec
    if entry.state is State.FAILED:
        return {"error": {"kind": "unknown", "message": problem}}
    return None


def view(entry: Entry, *, with_result: bool = True) -> JobView:
    """Read one entry's job (and result, claim) from disk; unreadable parts are reported, not raised."""
    v = JobView(entry.id, entry.state, entry.path, created=_created_from_id(entry.id))
    try:
        raw = read_file(entry.job_file, MAX_JOB_BYTES)
        v.job = parse_job(raw, env_allow=None).model_dump(mode="json")
    except SpoolError as exc:
        v.problem = exc.message
    except OSError as exc:
        v.problem = f"cannot read job file: {exc.strerror}"
    if entry.is_folder and with_result:
        if entry.state in (State.DONE, State.FAILED):
            v.result = _result_record(entry)

        if entry.state is State.CLAIMED and (entry.path / CLAIM_FILE).exists():
            v.claim = read_claim(entry.path)
    return v
