"""The `/scripts` routes: the catalogue, the original `/scripts/run`, and one typed operation per script."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from service import actions
from service.actions import LegacyRun
from service.answers import answer_when_done, legacy_answer
from service.bodies import json_body, query_options, read_json, ref
from service.scripts import ScriptInfo, find_script, list_scripts, params_model
from spool.api import Spool

__all__ = ["scripts_router", "RunQuery", "MAX_WAIT", "DEFAULT_LEGACY_WAIT"]

MAX_WAIT = 3600.0
DEFAULT_LEGACY_WAIT = 600.0


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


def _script_out(info: ScriptInfo) -> dict[str, Any]:
    out = info.to_dict()
    out["url"] = f"/scripts/{info.name}"
    return out


def scripts_router(sp: Spool, components: dict[str, type[BaseModel]]) -> APIRouter:
    """The script routes over `sp`, with a typed `POST /scripts/<name>` for each script whose
    parameters are known; each such params model is added to `components` (the OpenAPI schema
    components), under a name not already taken there."""
    router = APIRouter()
    _read_routes(router, sp)
    _legacy_route(router, sp)
    _run_routes(router, sp, components)
    return router


def _read_routes(router: APIRouter, sp: Spool) -> None:
    """GET /scripts and /scripts/{script}."""

    @router.get("/scripts", tags=["scripts"], summary="The scripts folder, with each script's parameters")
    def get_scripts() -> dict[str, Any]:
        return {"scripts": [_script_out(i) for i in list_scripts(sp.scripts_dir)]}

    @router.get(
        "/scripts/{script:path}", tags=["scripts"], summary="One script: its parameters and their JSON Schema"
    )
    def get_script(script: str) -> dict[str, Any]:
        info = find_script(sp.scripts_dir, script)
        out = _script_out(info)
        model = params_model(info)
        out["schema"] = model.model_json_schema() if model is not None else {"type": "object"}
        return out


def _legacy_route(router: APIRouter, sp: Spool) -> None:
    """POST /scripts/run: the original workers' endpoint."""

    @router.post(
        "/scripts/run",
        tags=["scripts"],
        summary="The original workers' endpoint: run an argv4 script, answer with its result JSON",
        openapi_extra=json_body(ref("LegacyRun")),
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
        data, _ = await read_json(request)
        req: LegacyRun = actions.model_from(LegacyRun, data)
        info = await run_in_threadpool(find_script, sp.scripts_dir, req.scriptName)
        params = req.jobParameters.model_dump(exclude_none=True)
        job = {"script": info.name, "params": params, "contract": "argv4"}
        job_id = await run_in_threadpool(actions.submit_job, sp, job)
        return await legacy_answer(sp, job_id, wait, request)


_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "queued: the job's id and URL"},
    200: {"description": "with `wait`: the job ended; its result"},
    404: {"description": "no such script"},
    422: {"description": "params that do not fit the script"},
    502: {"description": "with `wait`: the script failed (see `error.kind`)"},
    504: {"description": "with `wait`: not finished in time (the job goes on)"},
}


def _run_routes(router: APIRouter, sp: Spool, components: dict[str, type[BaseModel]]) -> None:
    """POST /scripts/{name}: one typed operation per script whose parameters are known, then any."""

    async def run_script(request: Request, script: str, q: RunQuery) -> JSONResponse:
        info = await run_in_threadpool(find_script, sp.scripts_dir, script)
        body, _ = await read_json(request, empty={})
        options = query_options(priority=q.priority, timeout=q.timeout, retries=q.retries, name=q.name)
        job_id = await run_in_threadpool(actions.submit_script, sp, info, body, options)
        return await answer_when_done(sp, job_id, q.wait, request)

    def run_script_route(fixed: str) -> Any:
        async def run_this_script(request: Request, q: Annotated[RunQuery, Depends()]) -> JSONResponse:
            return await run_script(request, fixed, q)

        return run_this_script

    async def run_any_script(
        request: Request, script: str, q: Annotated[RunQuery, Depends()]
    ) -> JSONResponse:
        return await run_script(request, script, q)

    responses = {k: dict(v) for k, v in _RUN_RESPONSES.items()}  # one copy per app
    for info in list_scripts(sp.scripts_dir):
        model = params_model(info)
        if model is None:
            continue
        component, n = model.__name__, 1
        while component in components:  # two names that read the same once made identifiers
            n += 1
            component = f"{model.__name__}_{n}"
        components[component] = model
        router.add_api_route(
            f"/scripts/{info.name}",
            run_script_route(info.name),
            methods=["POST"],
            tags=["scripts"],
            summary=f"Run {info.name}" + (f": {info.description}" if info.description else ""),
            operation_id=f"run_{component.removeprefix('Params_')}",
            openapi_extra=json_body(ref(component), required=any(p.required for p in info.params or [])),
            responses=responses,
        )
    router.add_api_route(
        "/scripts/{script:path}",
        run_any_script,
        methods=["POST"],
        tags=["scripts"],
        summary="Run any script of the folder: the body is its params object",
        operation_id="run_script",
        openapi_extra=json_body({"type": "object", "additionalProperties": True}, required=False),
        responses=responses,
    )
