"""How a queued or waited-for job becomes an HTTP answer: 202 at once, its result, or its failure's status."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service import actions
from spool.api import Spool
from spool.jobs import view as job_view
from spool.states import State
from spool.untrusted import finite

__all__ = ["script_status", "failure_status", "accepted", "answer_when_done", "legacy_answer"]


def script_status(value: Any) -> int | None:
    """A script's `status` as an HTTP status for an answer with a body (None if it cannot be one)."""
    if isinstance(value, int) and not isinstance(value, bool) and 200 <= value <= 599:
        return None if value in (204, 205, 304) else value
    return None


def failure_status(record: dict[str, Any]) -> int:
    """A failed job's HTTP status: the script's own `status` (>= 400), 422 for an invalid job, else 502."""
    err = record.get("error") or {}
    kind = err.get("kind") if isinstance(err, dict) else None
    if kind == "status":
        status = (
            (record.get("result") or {}).get("status") if isinstance(record.get("result"), dict) else None
        )
        code = script_status(status)
        if code is not None and code >= 400:
            return code
    if kind in ("invalid", "rev_missing"):
        return 422
    return 502


def accepted(job_id: str) -> JSONResponse:
    url = f"/jobs/{job_id}"
    return JSONResponse(
        {"id": job_id, "state": "pending", "url": url}, status_code=202, headers={"Location": url}
    )


async def answer_when_done(sp: Spool, job_id: str, wait: float | None, request: Request) -> JSONResponse:
    """202 at once; or, with `wait`, the job's end: 200 done, the failure's status, 504 still running."""
    if wait is None:
        return accepted(job_id)
    url = f"/jobs/{job_id}"
    headers = {"Location": url, "X-Spool-Job": job_id}
    entry = await actions.wait_for_end(sp, job_id, wait, request)
    if entry is None:
        now = await run_in_threadpool(sp.layout.find, job_id)
        state = now.state.value if now is not None else "unknown"
        return JSONResponse(
            {"id": job_id, "state": state, "url": url, "detail": f"still {state} after {wait:g} s"},
            status_code=504,
            headers=headers,
        )
    v = await run_in_threadpool(job_view, entry)
    record = v.result or {}
    body = {
        "id": job_id,
        "state": v.state.value,
        "url": url,
        "result": record.get("result"),
        "error": record.get("error"),
        "duration": record.get("duration"),
        "host": record.get("host"),
    }
    status = 200 if v.state is State.DONE else failure_status(record)
    return JSONResponse(finite(body), status_code=status, headers=headers)


async def legacy_answer(sp: Spool, job_id: str, wait: float, request: Request) -> JSONResponse:
    """As the old workers answered: the script's result JSON, with its `status` as the HTTP status."""
    headers = {"X-Spool-Job": job_id, "Location": f"/jobs/{job_id}"}
    entry = await actions.wait_for_end(sp, job_id, wait, request)
    if entry is None:
        return JSONResponse(
            {"status": 504, "message": f"no result after {wait:g} s; the job goes on", "job": job_id},
            status_code=504,
            headers=headers,
        )
    v = await run_in_threadpool(job_view, entry)
    record = v.result or {}
    result = record.get("result")
    if isinstance(result, dict):
        status = result.get("status")
        code = script_status(status) or 200
        if v.state is not State.DONE and code < 400:
            code = 500
        return JSONResponse(finite(result), status_code=code, headers=headers)
    err = record.get("error") or {}  # a dict: `view` makes any other error showable
    message = err.get("message", "the script failed")
    return JSONResponse(
        finite({"status": 500, "message": message, "error": err, "job": job_id}),
        status_code=500,
        headers=headers,
    )
