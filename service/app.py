"""The FastAPI app over one spool: `create_app(spool_path, token=None, report=False)`.

Stateless: every answer is read from the spool folder when it is asked for, and every change
is a file the spool publishes atomically; any number of servers (and CLIs and runners) can
share one spool. OpenAPI docs at `/docs`, the schema at `/openapi.json`, the job form at `/`.

This module assembles the app: middleware (`service.security`), error handlers
(`service.errors`), the routers (`service.routes_jobs`, `service.routes_house`,
`service.routes_scripts`), the job form (`service.forms`), the report, and the OpenAPI schema.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from service import actions
from service.actions import LegacyRun, SweepRequest
from service.errors import Unavailable, install_error_handlers
from service.routes_house import house_router
from service.routes_jobs import YAML_TYPES as YAML_TYPES  # re-exported: once defined here
from service.routes_jobs import LegacyJob, jobs_router
from service.routes_scripts import DEFAULT_LEGACY_WAIT, MAX_WAIT, scripts_router
from service.routes_scripts import RunQuery as RunQuery  # re-exported: once defined here
from service.security import MAX_BODY, BodyLimit, Guard
from spool.api import Spool
from spool.model import Job

__all__ = ["create_app", "MAX_WAIT", "DEFAULT_LEGACY_WAIT"]

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
    static report at `/report` (built first if missing, then rebuilt as jobs end).
    `extra_hosts`: Host names accepted besides loopback ones when there is no token.
    `sweep_limits`: the most points a sweep may have, without and with `yes`."""
    sp = Spool(spool_path)
    sp.check()
    app = FastAPI(
        lifespan=_report_watch(sp) if report else None,
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
    install_error_handlers(app)

    # the request bodies the routes read themselves, documented as schema components
    components: dict[str, type[BaseModel]] = {
        m.__name__: m for m in (Job, LegacyJob, SweepRequest, LegacyRun)
    }
    app.include_router(jobs_router(sp, sweep_limits))
    app.include_router(house_router(sp))
    app.include_router(scripts_router(sp, components))

    from service.forms import install_forms

    install_forms(app, sp)
    if report:
        _mount_report(app, sp)
    _install_openapi(app, components)
    return app


def _install_openapi(app: FastAPI, components: dict[str, type[BaseModel]]) -> None:
    """Build the OpenAPI schema once, with `components` added under their names."""

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
        for component, model in components.items():
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(js.pop("$defs", {}))
            schemas[component] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _report_watch(sp: Spool) -> Any:
    """While the server runs, keep `<spool>/report` up to date as `spool report --watch` does (in a
    thread, no worker processes: forking a server's threads is unsafe), so its pages are live."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watch = importlib.import_module("report.watch").Watch(sp, sp.root / "report", processes=0)
        stop = threading.Event()
        thread = threading.Thread(target=watch.run, args=(stop,), name="report-watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)

    return lifespan


def _mount_report(app: FastAPI, sp: Spool) -> None:
    """Serve `<spool>/report` at `/report`, building it first when it is missing (then kept live)."""
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
