"""The house routes: `/status`, `/runners` and `/results` (the whole spool, not one job)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from service.errors import Unavailable
from spool.api import Spool
from spool.untrusted import finite

__all__ = ["house_router"]


def house_router(sp: Spool) -> APIRouter:
    """The house routes over `sp`."""
    router = APIRouter()

    @router.get("/status", tags=["house"], summary="Counts of jobs per state, and per sweep")
    def get_status() -> dict[str, Any]:
        return sp.status()

    @router.get("/runners", tags=["house"], summary="The runners: machine, liveness, current jobs")
    def get_runners() -> dict[str, Any]:
        return {"runners": sp.runners()}

    @router.get(
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
        where: Annotated[
            list[str] | None,
            Query(
                max_length=2000,
                description="keep rows where this holds, e.g. `param.lr < 0.01` or `label.group == a`; "
                "repeatable (all must hold); the language of `spool results --where`",
            ),
        ] = None,
    ) -> Response:
        load_results = _load_results()
        df = load_results(sp.layout, sweep=sweep, state=None if state == "all" else state, where=where)
        accept = request.headers.get("accept", "")
        want_csv = format == "csv" or (
            format is None and "text/csv" in accept and "application/json" not in accept
        )
        if want_csv:
            from spool.csvsafe import to_csv

            return Response(to_csv(df), media_type="text/csv; charset=utf-8")
        rows = json.loads(
            df.to_json(orient="records", date_format="iso", date_unit="us", double_precision=15)
        )
        rows = finite(rows)  # pandas writes an infinity inside a list cell as Infinity: strict JSON has none
        return JSONResponse({"count": len(rows), "columns": [str(c) for c in df.columns], "rows": rows})

    return router


def _load_results() -> Any:
    try:
        from spool.results import load_results
    except ImportError as exc:
        raise Unavailable(
            f"results are not available: spool.results.load_results is missing ({exc})"
        ) from None
    return load_results
