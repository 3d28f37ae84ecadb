"""The FastAPI app over one spool: `create_app(spool_path, token=None, report=False)`.

Stateless: every answer is read from the spool folder when it is asked for, and every change
is a file the spool publishes atomically; any number of servers (and CLIs and runners) can
share one spool. OpenAPI docs at `/docs`, the schema at `/openapi.json`, the job form at `/`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import HTTPException
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from service import actions
from service.actions import JobOptions, LegacyRun, SweepRequest
from service.errors import BodyInvalid, Conflict, Unavailable, error_body, http_status
from service.scripts import ScriptInfo, find_script, list_scripts, params_model, validation_errors
from service.security import MAX_BODY, BodyLimit, Guard
from spool.api import Spool
from spool.errors import NotFound, SpoolError
from spool.jobs import view as job_view
from spool.layout import Entry
from spool.model import Job
from spool.states import State

__all__ = ["create_app", "MAX_WAIT", "DEFAULT_LEGACY_WAIT"]

MAX_WAIT = 3600.0
DEFAULT_LEGACY_WAIT = 600.0
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
DESCRIPTION = """\
A thin, stateless layer over a housespool spool folder: the folder stays the truth.

* Jobs: `POST /jobs` (a job file's JSON), `POST /sweeps`, `GET /jobs`, `GET /jobs/{id}`,
  logs, metrics, cancel, retry; `GET /results` (JSON or CSV); `GET /runners`; `GET /status`.
* Scripts as micro-services: `GET /scripts` lists the scripts folder with each script's
  parameters; `POST /scripts/{name}` queues the script (`202`), or with `?wait=SECONDS`
  answers with its result. Scripts whose parameters are known have their own typed operation.
* The original workers' `POST /scripts/run` body runs as an `argv4` job and answers with the
  script's result JSON.
"""


class LegacyJob(BaseModel):
    """The original system's job shape, read as an `argv4` job."""

    model_config = ConfigDict(extra="forbid", title="original job shape")

    scriptName: str
    jobParameters: dict[str, Any] = Field(default_factory=dict)
    scriptsPath: str | None = None


class RunQuery:
    """The query of `POST /scripts/{name}`: how long to wait, and the job's options."""

    def __init__(
        self,
        wait: Annotated[
            float | None, Query(ge=0, le=MAX_WAIT, description="wait up to this many seconds for the result")
        ] = None,
        priority: Annotated[int | None, Query(ge=-(10**9), le=10**9, description="higher runs first")] = None,
        timeout: Annotated[
            float | None, Query(gt=0, le=10**8, description="seconds before the script is stopped")
        ] = None,
        retries: Annotated[int | None, Query(ge=0, le=100, description="extra attempts")] = None,
        name: Annotated[str | None, Query(max_length=500, description="a label")] = None,
    ):
        self.wait = wait
        self.priority = priority
        self.timeout = timeout
        self.retries = retries
        self.name = name


# -- small helpers -------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_json(request: Request, *, empty: Any = None) -> tuple[Any, bytes]:
    """The JSON body (and its bytes); `empty` is what an empty body means (None: it is required)."""
    ctype = _content_type(request)
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise HTTPException(415, f"send JSON (Content-Type: application/json), not {ctype}")
    raw = await request.body()
    if not raw.strip():
        if empty is None:
            raise BodyInvalid([{"loc": ["body"], "msg": "a JSON body is required", "type": "missing"}])
        return empty, raw
    return actions.parse_json(raw), raw


def _options(**fields: Any) -> dict[str, Any]:
    """Job options from query parameters, checked like a job file's fields (422 at `query`)."""
    try:
        return JobOptions.model_validate({k: v for k, v in fields.items() if v is not None}).fields()
    except ValidationError as err:
        raise BodyInvalid(validation_errors(err, ("query",))) from None


def _script_status(value: Any) -> int | None:
    """A script's `status` as an HTTP status for an answer with a body (None if it cannot be one)."""
    if isinstance(value, int) and not isinstance(value, bool) and 200 <= value <= 599:
        return None if value in (204, 205, 304) else value
    return None


def _failure_status(record: dict[str, Any]) -> int:
    """A failed job's HTTP status: the script's own `status` (>= 400), 422 for an invalid job, else 502."""
    err = record.get("error") or {}
    kind = err.get("kind") if isinstance(err, dict) else None
    if kind == "status":
        status = (
            (record.get("result") or {}).get("status") if isinstance(record.get("result"), dict) else None
        )
        code = _script_status(status)
        if code is not None and code >= 400:
            return code
    if kind in ("invalid", "rev_missing"):
        return 422
    return 502


def _accepted(job_id: str) -> JSONResponse:
    url = f"/jobs/{job_id}"
    return JSONResponse(
        {"id": job_id, "state": "pending", "url": url}, status_code=202, headers={"Location": url}
    )


async def _answer_when_done(sp: Spool, job_id: str, wait: float | None, request: Request) -> JSONResponse:
    """202 at once; or, with `wait`, the job's end: 200 done, the failure's status, 504 still running."""
    if wait is None:
        return _accepted(job_id)
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
    status = 200 if v.state is State.DONE else _failure_status(record)
    return JSONResponse(body, status_code=status, headers=headers)


def _find(sp: Spool, job_id: str) -> Entry:
    entry = sp.layout.find(job_id)
    if entry is None:
        raise NotFound(f"no job {job_id!r}")
    return entry


def _script_out(info: ScriptInfo) -> dict[str, Any]:
    out = info.to_dict()
    out["url"] = f"/scripts/{info.name}"
    return out


# -- the app -----------------------------------------------------------------------------------------


def create_app(
    spool_path: str | os.PathLike[str],
    token: str | None = None,
    report: bool = False,
    *,
    max_body: int = MAX_BODY,
    extra_hosts: tuple[str, ...] = (),
    sweep_limits: tuple[int, int] = (actions.MAX_SWEEP_POINTS, actions.HARD_MAX_SWEEP_POINTS),
) -> FastAPI:
    """The server for the spool at `spool_path`.

    `token`: every request must carry it (`Authorization: Bearer`); without one, only requests
    addressed to a loopback Host are answered (bind to 127.0.0.1). `report`: also serve the
    static report at `/report` (built first if missing). `extra_hosts`: Host names accepted
    besides loopback ones when there is no token. `sweep_limits`: the most points a sweep may
    have, without and with `yes`."""
    sp = Spool(spool_path)
    sp.check()
    app = FastAPI(
        title="housespool",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "jobs", "description": "jobs and sweeps in the spool"},
            {"name": "scripts", "description": "the scripts folder, each script as a micro-service"},
            {"name": "house", "description": "runners, status and results"},
        ],
    )
    app.state.spool = sp
    app.state.report = report
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(Guard, token=token, extra_hosts=extra_hosts)

    @app.exception_handler(SpoolError)
    async def _spool_error(request: Request, exc: SpoolError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=http_status(exc))

    @app.exception_handler(BodyInvalid)
    async def _body_invalid(request: Request, exc: BodyInvalid) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    extra_models: dict[str, type[BaseModel]] = {
        m.__name__: m for m in (Job, LegacyJob, SweepRequest, LegacyRun)
    }

    # -- jobs ------------------------------------------------------------------------------------

    @app.post(
        "/jobs",
        tags=["jobs"],
        status_code=201,
        summary="Queue one job (the job file's JSON, or the original shape)",
        openapi_extra=_json_body({"anyOf": [_ref("Job"), _ref("LegacyJob")]}),
        responses={
            201: {"description": "queued"},
            400: {"description": "a path leaves its folder"},
            404: {"description": "no such script"},
            413: {"description": "body too large"},
            422: {"description": "not a valid job"},
        },
    )
    async def post_job(request: Request) -> JSONResponse:
        data, raw = await _read_json(request)
        job_id = await run_in_threadpool(actions.submit_job, sp, data, raw)
        url = f"/jobs/{job_id}"
        return JSONResponse({"id": job_id, "state": "pending", "url": url}, 201, {"Location": url})

    @app.post(
        "/sweeps",
        tags=["jobs"],
        status_code=201,
        summary="Queue a sweep: the `spool sweep` flags as JSON, or a W&B sweep file as YAML",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("SweepRequest")},
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
        ctype = _content_type(request)
        if ctype in YAML_TYPES:
            raw = await request.body()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BodyInvalid(
                    [{"loc": ["body"], "msg": "not UTF-8 text", "type": "yaml_invalid"}]
                ) from None
            plan = await run_in_threadpool(
                actions.plan_wandb,
                text,
                random_n=random,
                seeds=seeds,
                sample_seed=sample_seed,
                yes=yes,
                limits=sweep_limits,
            )
            template = _options(priority=priority, timeout=timeout, retries=retries, name=name)
            dry = dry_run
        else:
            data, _ = await _read_json(request)
            req = actions.model_from(SweepRequest, data)
            plan = await run_in_threadpool(actions.plan_sweep, req, sweep_limits)
            template = JobOptions.model_validate(
                req.model_dump(include=set(JobOptions.model_fields))
            ).fields()
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

    @app.get("/jobs", tags=["jobs"], summary="List jobs (sorted by id), by state and sweep, a page at a time")
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

    @app.get("/jobs/{job_id}", tags=["jobs"], summary="One job: its state, job, result or error, files")
    def get_job(job_id: str) -> dict[str, Any]:
        return actions.job_summary(sp.get(job_id), full=True)

    @app.get(
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
            return StreamingResponse(_follow(sp, job_id, name, request), media_type=media, headers=headers)
        if entry.state is State.PENDING or not entry.is_folder:
            return StreamingResponse(iter([b""]), media_type=media, headers=headers)
        handle = await run_in_threadpool(_open_log, sp, job_id, name)
        if handle is None:
            return StreamingResponse(iter([b""]), media_type=media, headers=headers)
        return StreamingResponse(_read_all(handle), media_type=media, headers=headers)

    @app.get("/jobs/{job_id}/metrics", tags=["jobs"], summary="Every metrics record a job printed, in order")
    def get_metrics(job_id: str) -> dict[str, Any]:
        entry = _find(sp, job_id)
        records: list[Any] = []
        for _ in range(3):  # the folder may move (claimed -> done) between find and read
            if entry.state is State.PENDING or not entry.is_folder:
                break
            try:
                raw = (entry.path / "metrics.jsonl").read_bytes()
            except FileNotFoundError:
                moved = sp.layout.find(job_id)
                if moved is None or moved.path == entry.path:
                    break
                entry = moved
                continue
            for line in raw.splitlines():
                try:
                    rec = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(rec, dict):
                    records.append(rec)
            break
        return {"id": job_id, "state": entry.state.value, "count": len(records), "metrics": records}

    @app.post(
        "/jobs/{job_id}/cancel",
        tags=["jobs"],
        summary="Cancel a job (pending: at once; running: its runner stops it)",
    )
    def cancel_job(job_id: str) -> dict[str, Any]:
        outcome = sp.cancel(job_id)[job_id]
        return {"id": job_id, "outcome": outcome, "url": f"/jobs/{job_id}"}

    @app.post("/jobs/{job_id}/retry", tags=["jobs"], summary="Re-queue a failed job as a new attempt")
    def retry_job(job_id: str) -> dict[str, Any]:
        entry = _find(sp, job_id)
        if entry.state is not State.FAILED:
            raise Conflict(f"job {job_id} is {entry.state.value}; only failed jobs can be retried")
        if not sp.retry(job_id):
            raise Conflict(f"job {job_id} moved while being retried")
        return {"id": job_id, "state": "pending", "url": f"/jobs/{job_id}"}

    # -- the house ---------------------------------------------------------------------------------

    @app.get("/status", tags=["house"], summary="Counts of jobs per state, and per sweep")
    def get_status() -> dict[str, Any]:
        return sp.status()

    @app.get("/runners", tags=["house"], summary="The runners: machine, liveness, current jobs")
    def get_runners() -> dict[str, Any]:
        from spool.cli.watch_cmds import runner_rows

        sp.check()
        return {"runners": runner_rows(sp.layout.runners)}

    @app.get(
        "/results",
        tags=["house"],
        summary="Finished jobs, one row each (params and results as columns): JSON, or CSV",
        responses={200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}},
    )
    def get_results(
        request: Request,
        sweep: str | None = Query(None, max_length=200),
        state: Literal["done", "failed", "all"] = Query("done"),
        format: Literal["json", "csv"] | None = Query(None, description="default: from Accept, else JSON"),
    ) -> Response:
        load_results = _load_results()
        df = load_results(sp.layout, sweep=sweep, state=None if state == "all" else state)
        accept = request.headers.get("accept", "")
        want_csv = format == "csv" or (
            format is None and "text/csv" in accept and "application/json" not in accept
        )
        if want_csv:
            return Response(df.to_csv(index=False), media_type="text/csv; charset=utf-8")
        rows = json.loads(
            df.to_json(orient="records", date_format="iso", date_unit="us", double_precision=15)
        )
        return JSONResponse({"count": len(rows), "columns": [str(c) for c in df.columns], "rows": rows})

    # -- scripts -------------------------------------------------------------------------------------

    @app.get("/scripts", tags=["scripts"], summary="The scripts folder, with each script's parameters")
    def get_scripts() -> dict[str, Any]:
        return {"scripts": [_script_out(i) for i in list_scripts(sp.scripts_dir)]}

    @app.get(
        "/scripts/{script:path}", tags=["scripts"], summary="One script: its parameters and their JSON Schema"
    )
    def get_script(script: str) -> dict[str, Any]:
        info = find_script(sp.scripts_dir, script)
        out = _script_out(info)
        model = params_model(info)
        out["schema"] = model.model_json_schema() if model is not None else {"type": "object"}
        return out

    @app.post(
        "/scripts/run",
        tags=["scripts"],
        summary="The original workers' endpoint: run an argv4 script, answer with its result JSON",
        openapi_extra=_json_body(_ref("LegacyRun")),
        responses={
            200: {"description": "the script's result JSON (HTTP status: its `status` field)"},
            500: {"description": "the script failed without a result"},
            504: {"description": "no result within `wait` seconds (the job goes on)"},
        },
    )
    async def legacy_run(
        request: Request,
        wait: float = Query(
            DEFAULT_LEGACY_WAIT, ge=0, le=MAX_WAIT, description="seconds to wait for the result"
        ),
    ) -> JSONResponse:
        data, _ = await _read_json(request)
        req: LegacyRun = actions.model_from(LegacyRun, data)
        info = await run_in_threadpool(find_script, sp.scripts_dir, req.scriptName)
        params = req.jobParameters.model_dump(exclude_none=True)
        job = {"script": info.name, "params": params, "contract": "argv4"}
        job_id = await run_in_threadpool(actions.submit_job, sp, job)
        return await _legacy_answer(sp, job_id, wait, request)

    async def run_script(request: Request, script: str, q: RunQuery) -> JSONResponse:
        info = await run_in_threadpool(find_script, sp.scripts_dir, script)
        body, _ = await _read_json(request, empty={})
        options = _options(priority=q.priority, timeout=q.timeout, retries=q.retries, name=q.name)
        job_id = await run_in_threadpool(actions.submit_script, sp, info, body, options)
        return await _answer_when_done(sp, job_id, q.wait, request)

    def run_script_route(fixed: str) -> Any:
        async def run_this_script(request: Request, q: Annotated[RunQuery, Depends()]) -> JSONResponse:
            return await run_script(request, fixed, q)

        return run_this_script

    async def run_any_script(
        request: Request, script: str, q: Annotated[RunQuery, Depends()]
    ) -> JSONResponse:
        return await run_script(request, script, q)

    responses: dict[int | str, dict[str, Any]] = {
        202: {"description": "queued: the job's id and URL"},
        200: {"description": "with `wait`: the job ended; its result"},
        404: {"description": "no such script"},
        422: {"description": "params that do not fit the script"},
        502: {"description": "with `wait`: the script failed (see `error.kind`)"},
        504: {"description": "with `wait`: not finished in time (the job goes on)"},
    }
    for info in list_scripts(sp.scripts_dir):
        model = params_model(info)
        if model is None:
            continue
        component, n = model.__name__, 1
        while component in extra_models:  # two names that read the same once made identifiers
            n += 1
            component = f"{model.__name__}_{n}"
        extra_models[component] = model
        app.add_api_route(
            f"/scripts/{info.name}",
            run_script_route(info.name),
            methods=["POST"],
            tags=["scripts"],
            summary=f"Run {info.name}" + (f": {info.description}" if info.description else ""),
            operation_id=f"run_{component.removeprefix('Params_')}",
            openapi_extra=_json_body(_ref(component), required=any(p.required for p in info.params or [])),
            responses=responses,
        )
    app.add_api_route(
        "/scripts/{script:path}",
        run_any_script,
        methods=["POST"],
        tags=["scripts"],
        summary="Run any script of the folder: the body is its params object",
        operation_id="run_script",
        openapi_extra=_json_body({"type": "object", "additionalProperties": True}, required=False),
        responses=responses,
    )

    # -- the job form and the report ---------------------------------------------------------------

    from service.forms import install_forms

    install_forms(app, sp)
    if report:
        _mount_report(app, sp)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for component, model in extra_models.items():
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(js.pop("$defs", {}))
            schemas[component] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# -- pieces used by the routes ---------------------------------------------------------------------


def _load_results() -> Any:
    try:
        from spool.results import load_results
    except ImportError as exc:
        raise Unavailable(
            f"results are not available: spool.results.load_results is missing ({exc})"
        ) from None
    return load_results


async def _legacy_answer(sp: Spool, job_id: str, wait: float, request: Request) -> JSONResponse:
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
        code = _script_status(status) or 200
        if v.state is not State.DONE and code < 400:
            code = 500
        return JSONResponse(result, status_code=code, headers=headers)
    err = record.get("error") or {}
    return JSONResponse(
        {"status": 500, "message": err.get("message", "the script failed"), "error": err, "job": job_id},
        status_code=500,
        headers=headers,
    )


def _open_log(sp: Spool, job_id: str, name: str) -> Any:
    """The open log file of a started job (None if it has none); follows a move between states."""
    for _ in range(3):
        entry = sp.layout.find(job_id)
        if entry is None or entry.state is State.PENDING or not entry.is_folder:
            return None
        try:
            return open(entry.path / name, "rb")  # noqa: SIM115 - closed by the reader
        except FileNotFoundError:
            if entry.state is not State.CLAIMED:
                return None
    return None


def _read_all(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(1 << 16):
            yield chunk


async def _follow(sp: Spool, job_id: str, name: str, request: Request) -> AsyncIterator[bytes]:
    """Wait for the job to start, then stream its log until it is no longer running (or the
    client goes away)."""
    while True:
        entry = await run_in_threadpool(sp.layout.find, job_id)
        if entry is None or await request.is_disconnected():
            return
        if entry.state is not State.PENDING:
            break
        await asyncio.sleep(0.25)
    deadline = time.monotonic() + 10
    handle = None
    while handle is None:
        handle = await run_in_threadpool(_open_log, sp, job_id, name)
        if handle is not None:
            break
        entry = await run_in_threadpool(sp.layout.find, job_id)
        if entry is None or entry.state is not State.CLAIMED or time.monotonic() > deadline:
            return  # ended (or never started) without this log
        await asyncio.sleep(0.1)
    with handle:
        while True:
            chunk = await run_in_threadpool(handle.read, 1 << 16)
            if chunk:
                yield chunk
                continue
            entry = await run_in_threadpool(sp.layout.find, job_id)
            if entry is None or entry.state is not State.CLAIMED:
                rest = await run_in_threadpool(handle.read)
                if rest:
                    yield rest
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.2)


def _mount_report(app: FastAPI, sp: Spool) -> None:
    """Serve `<spool>/report` at `/report`, building it first when it is missing."""
    from starlette.staticfiles import StaticFiles

    folder: Path = sp.root / "report"
    if not (folder / "index.html").is_file():
        try:  # by name: the report package is built beside this one and may be missing
            build_report = importlib.import_module("report.build").build_report
        except (ImportError, AttributeError) as exc:
            raise Unavailable(
                f"--report: no report in {folder} and report.build.build_report is not available ({exc})"
            ) from None
        build_report(sp, folder)
    app.mount("/report", StaticFiles(directory=folder, html=True), name="report")
