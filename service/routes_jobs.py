"""The `/jobs` and `/sweeps` routes: queue, list, inspect, stream, cancel and retry jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from service import actions, joblogs
from service.actions import JobOptions, SweepRequest
from service.bodies import content_type, json_body, query_options, read_json, ref
from service.errors import BodyInvalid, Conflict
from spool.api import Spool
from spool.errors import NotFound
from spool.layout import Entry
from spool.states import State
from spool.untrusted import loads, read_file

__all__ = ["jobs_router", "LegacyJob", "YAML_TYPES"]

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class LegacyJob(BaseModel):
    """The original system's job shape, read as an `argv4` job."""

    model_config = ConfigDict(extra="forbid", title="original job shape")

    scriptName: str
    jobParameters: dict[str, Any] = Field(default_factory=dict)
    scriptsPath: str | None = None


def _find(sp: Spool, job_id: str) -> Entry:
    entry = sp.layout.find(job_id)
    if entry is None:
        raise NotFound(f"no job {job_id!r}")
    return entry


def jobs_router(sp: Spool, sweep_limits: tuple[int, int]) -> APIRouter:
    """The job routes over `sp`; `sweep_limits`: the most points a sweep may have, without and with `yes`."""
    router = APIRouter()
    _job_route(router, sp)
    _sweep_route(router, sp, sweep_limits)
    _read_routes(router, sp)
    _change_routes(router, sp)
    return router


def _job_route(router: APIRouter, sp: Spool) -> None:
    """POST /jobs."""

    @router.post(
        "/jobs",
        tags=["jobs"],
        status_code=201,
        summary="Queue one job (the job file's JSON, or the original shape)",
        openapi_extra=json_body({"anyOf": [ref("Job"), ref("LegacyJob")]}),
        responses={
            201: {"description": "queued"},
            400: {"description": "a path leaves its folder"},
            404: {"description": "no such script"},
            413: {"description": "body too large"},
            422: {"description": "not a valid job"},
        },
    )
    async def post_job(request: Request) -> JSONResponse:
        data, raw = await read_json(request)
        job_id = await run_in_threadpool(actions.submit_job, sp, data, raw)
        url = f"/jobs/{job_id}"
        return JSONResponse({"id": job_id, "state": "pending", "url": url}, 201, {"Location": url})


def _sweep_route(router: APIRouter, sp: Spool, sweep_limits: tuple[int, int]) -> None:
    """POST /sweeps: the `spool sweep` flags as JSON, or a W&B sweep file as YAML."""

    @router.post(
        "/sweeps",
        tags=["jobs"],
        status_code=201,
        summary="Queue a sweep: the `spool sweep` flags as JSON, or a W&B sweep file as YAML",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": ref("SweepRequest")},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
        responses={
            201: {"description": "the sweep and its job ids"},
            200: {"description": "dry run: the points, nothing written"},
        },
    )
    async def post_sweep(
        request: Request,
        random: int | None = Query(
            None, ge=1, le=actions.HARD_MAX_SWEEP_POINTS, description="YAML body: N random points"
        ),
        seeds: int = Query(1, ge=1, le=10_000, description="YAML body: repeat every point with seed=0..K-1"),
        sample_seed: int = Query(0, ge=0, le=2**32 - 1, description="YAML body: the sampler's seed"),
        dry_run: bool = Query(False, description="YAML body: answer with the points, write nothing"),
        yes: bool = Query(False, description="YAML body: allow more than 10,000 points"),
        priority: int | None = Query(None, ge=-(10**9), le=10**9, description="YAML body: job priority"),
        timeout: float | None = Query(None, gt=0, le=10**8, description="YAML body: job timeout (s)"),
        retries: int | None = Query(None, ge=0, le=100, description="YAML body: job retries"),
        name: str | None = Query(None, max_length=500, description="YAML body: a label"),
    ) -> JSONResponse:
        if content_type(request) in YAML_TYPES:
            plan = await run_in_threadpool(
                actions.plan_wandb,
                _utf8(await request.body()),
                random_n=random,
                seeds=seeds,
                sample_seed=sample_seed,
                yes=yes,
                limits=sweep_limits,
            )
            template = query_options(priority=priority, timeout=timeout, retries=retries, name=name)
            dry = dry_run
        else:
            data, _ = await read_json(request)
            req = actions.model_from(SweepRequest, data)
            plan = await run_in_threadpool(actions.plan_sweep, req, sweep_limits)
            fields = req.model_dump(include=set(JobOptions.model_fields))
            template = JobOptions.model_validate(fields).fields()
            dry = req.dry_run
        if dry:
            return JSONResponse({"script": plan.script, "count": len(plan.points), "points": plan.points})
        sid, ids = await run_in_threadpool(actions.create_sweep, sp, plan, template)
        return JSONResponse(
            {
                "sweep": sid,
                "count": len(ids),
                "jobs": ids,
                "url": f"/jobs?sweep={sid}",
                "results": f"/results?sweep={sid}",
            },
            status_code=201,
        )


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyInvalid([{"loc": ["body"], "msg": "not UTF-8 text", "type": "yaml_invalid"}]) from None


def _read_routes(router: APIRouter, sp: Spool) -> None:
    """GET /jobs, /jobs/{id}, its logs and its metrics."""

    @router.get(
        "/jobs", tags=["jobs"], summary="List jobs (sorted by id), by state and sweep, a page at a time"
    )
    def get_jobs(
        state: Annotated[State | None, Query(description="only jobs in this state")] = None,
        sweep: str | None = Query(None, max_length=200, description="only the jobs of this sweep"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=10**9),
    ) -> dict[str, Any]:
        total, views = actions.list_page(sp, state, sweep, limit, offset)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "jobs": [actions.job_summary(v) for v in views],
        }

    @router.get("/jobs/{job_id}", tags=["jobs"], summary="One job: its state, job, result or error, files")
    def get_job(job_id: str) -> dict[str, Any]:
        return actions.job_summary(sp.get(job_id), full=True)

    @router.get(
        "/jobs/{job_id}/logs",
        tags=["jobs"],
        summary="A job's stdout or stderr; `follow=1` streams until the job ends",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def get_logs(
        request: Request,
        job_id: str,
        stream: Literal["stdout", "stderr"] = Query("stdout"),
        follow: bool = Query(False, description="keep streaming until the job ends"),
    ) -> StreamingResponse:
        entry = await run_in_threadpool(_find, sp, job_id)
        name = f"{stream}.log"
        media = "text/plain; charset=utf-8"
        headers = {"X-Spool-State": entry.state.value, "Cache-Control": "no-store"}
        if follow:
            return StreamingResponse(
                joblogs.follow(sp, job_id, name, request), media_type=media, headers=headers
            )
        if entry.state is State.PENDING or not entry.is_folder:
            return StreamingResponse(iter([b""]), media_type=media, headers=headers)
        handle = await run_in_threadpool(joblogs.open_log, sp, job_id, name)
        if handle is None:
            return StreamingResponse(iter([b""]), media_type=media, headers=headers)
        return StreamingResponse(joblogs.read_all(handle), media_type=media, headers=headers)

    @router.get(
        "/jobs/{job_id}/metrics", tags=["jobs"], summary="Every metrics record a job printed, in order"
    )
    def get_metrics(job_id: str) -> dict[str, Any]:
        return _metrics(sp, job_id)


def _metrics(sp: Spool, job_id: str) -> dict[str, Any]:
    """Every metrics record of a job, following its folder if it moves while being read."""
    entry = _find(sp, job_id)
    records: list[Any] = []
    for _ in range(3):  # the folder may move (claimed -> done) between find and read
        if entry.state is State.PENDING or not entry.is_folder:
            break
        try:
            raw = read_file(entry.path / "metrics.jsonl")
        except FileNotFoundError:
            moved = sp.layout.find(job_id)
            if moved is None or moved.path == entry.path:
                break
            entry = moved
            continue
        except OSError:  # not a regular file, or unreadable: no metrics to show
            break
        for line in raw.splitlines():
            try:
                rec = loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(rec, dict):
                records.append(rec)
        break
    return {"id": job_id, "state": entry.state.value, "count": len(records), "metrics": records}


def _change_routes(router: APIRouter, sp: Spool) -> None:
    """POST /jobs/{id}/cancel and /jobs/{id}/retry."""

    @router.post(
        "/jobs/{job_id}/cancel",
        tags=["jobs"],
        summary="Cancel a job (pending: at once; running: its runner stops it)",
    )
    def cancel_job(job_id: str) -> dict[str, Any]:
        outcome = sp.cancel(job_id)[job_id]
        return {"id": job_id, "outcome": outcome, "url": f"/jobs/{job_id}"}

    @router.post("/jobs/{job_id}/retry", tags=["jobs"], summary="Re-queue a failed job as a new attempt")
    def retry_job(job_id: str) -> dict[str, Any]:
        entry = _find(sp, job_id)
        if entry.state is not State.FAILED:
            raise Conflict(f"job {job_id} is {entry.state.value}; only failed jobs can be retried")
        if not sp.retry(job_id):
            raise Conflict(f"job {job_id} moved while being retried")
        return {"id": job_id, "state": "pending", "url": f"/jobs/{job_id}"}
