"""How errors become HTTP answers: one table for every `SpoolError` subclass.

Bodies follow FastAPI's conventions: a 422 is `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`
(the `loc` is the field path, starting with `body`, `query` or `path`); every other error is
`{"detail": "<message>", "error": "<kind>"}`, plus `field` when one field is to blame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spool.errors import (
    ConfigError,
    InvalidJob,
    JobFailed,
    NotFound,
    PathEscape,
    SpoolError,
    SpoolExists,
    StorageError,
    SweepError,
    UsageError,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "BodyInvalid",
    "Conflict",
    "Unavailable",
    "http_status",
    "error_body",
    "error_kind",
    "invalid_detail",
    "install_error_handlers",
]


class BodyInvalid(Exception):
    """A request whose content does not validate; `errors` are in FastAPI's 422 shape."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(errors[0]["msg"] if errors else "invalid request")
        self.errors = errors


class Conflict(SpoolError):
    """The job is not in a state where this can be done (e.g. retrying a job that did not fail)."""


class Unavailable(SpoolError):
    """A part of housespool the server needs is not installed or not written yet."""


#: most specific first: the first class an error is an instance of gives its status and kind.
_TABLE: tuple[tuple[type[SpoolError], int, str], ...] = (
    (PathEscape, 400, "path_escape"),
    (InvalidJob, 422, "invalid_job"),
    (SweepError, 422, "invalid_sweep"),
    (UsageError, 400, "bad_request"),
    (NotFound, 404, "not_found"),
    (SpoolExists, 409, "exists"),
    (Conflict, 409, "conflict"),
    (JobFailed, 409, "job_failed"),
    (StorageError, 503, "storage"),
    (Unavailable, 501, "unavailable"),
    (ConfigError, 500, "config"),
)


def _row(exc: SpoolError) -> tuple[int, str]:
    for cls, status, kind in _TABLE:
        if isinstance(exc, cls):
            return status, kind
    return 400, "error"


def http_status(exc: SpoolError) -> int:
    return _row(exc)[0]


def error_kind(exc: SpoolError) -> str:
    return _row(exc)[1]


def invalid_detail(exc: SpoolError, where: str = "body") -> list[dict[str, Any]]:
    """A 422 detail list for one spool error, its field as the path."""
    loc: list[Any] = [where]
    if exc.field:
        loc += [int(p) if p.isdigit() else p for p in exc.field.split(".")]
    return [{"loc": loc, "msg": exc.message, "type": error_kind(exc)}]


def error_body(exc: SpoolError) -> dict[str, Any]:
    """The JSON body for a spool error (no server paths: `file` is left out)."""
    status, kind = _row(exc)
    if status == 422:
        return {"detail": invalid_detail(exc)}
    body: dict[str, Any] = {"detail": exc.message, "error": kind}
    if exc.field:
        body["field"] = exc.field
    return body


def install_error_handlers(app: FastAPI) -> None:
    """Answer every `SpoolError` by the table above, and every `BodyInvalid` as a 422."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.exception_handler(SpoolError)
    async def _spool_error(request: Request, exc: SpoolError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=http_status(exc))

    @app.exception_handler(BodyInvalid)
    async def _body_invalid(request: Request, exc: BodyInvalid) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)
