"""Reading JSON request bodies and job options from a query, and the OpenAPI snippets that document them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import HTTPException
from pydantic import ValidationError

from service import actions
from service.actions import JobOptions
from service.errors import BodyInvalid
from service.scripts import validation_errors

__all__ = ["ref", "json_body", "content_type", "read_json", "query_options"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json(request: Request, *, empty: Any = None) -> tuple[Any, bytes]:
    """The JSON body (and its bytes); `empty` is what an empty body means (None: it is required)."""
    ctype = content_type(request)
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise HTTPException(415, f"send JSON (Content-Type: application/json), not {ctype}")
    raw = await request.body()
    if not raw.strip():
        if empty is None:
            raise BodyInvalid([{"loc": ["body"], "msg": "a JSON body is required", "type": "missing"}])
        return empty, raw
    return actions.parse_json(raw), raw


def query_options(**fields: Any) -> dict[str, Any]:
    """Job options from query parameters, checked like a job file's fields (422 at `query`)."""
    try:
        return JobOptions.model_validate({k: v for k, v in fields.items() if v is not None}).fields()
    except ValidationError as err:
        raise BodyInvalid(validation_errors(err, ("query",))) from None
