"""Typed script parameters: a pydantic model per script, checking requests with it, the job they become."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from service.errors import BodyInvalid
from service.scriptinfo import Param, ScriptInfo

__all__ = ["params_model", "validate_params", "validation_errors", "job_dict_for"]

_SIMPLE: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "object": dict[str, Any]}


def _annotation(p: Param) -> Any:
    if p.choices is not None and all(isinstance(c, (str, int, float, bool)) for c in p.choices):
        return Literal[tuple(p.choices)]
    if p.type == "list":
        item = _SIMPLE.get(p.items or "any", Any)
        return list[item]  # type: ignore[valid-type]
    return _SIMPLE.get(p.type, Any)


def _model_name(script: str) -> str:
    return "Params_" + re.sub(r"\W", "_", script)


def _build_model(script: str, extra: bool, params: tuple[Param, ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for i, p in enumerate(params):
        ann = _annotation(p)
        if p.required:
            default: Any = ...
        else:
            ann = ann | None
            default = p.default
        fields[f"p{i}"] = (ann, Field(default, alias=p.name, title=p.name, description=p.help))
    config = ConfigDict(
        extra="allow" if extra else "forbid",
        title=f"{script} parameters",
        populate_by_name=False,
        hide_input_in_errors=True,
    )
    model: type[BaseModel] = create_model(_model_name(script), __config__=config, **fields)
    return model


class _FrozenParam:
    """A hashable view of a `Param`, so models are built once per definition."""

    __slots__ = ("p", "_key")

    def __init__(self, p: Param):
        self.p = p
        self._key = repr(p.to_dict())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FrozenParam) and other._key == self._key


@lru_cache(maxsize=1024)
def _cached_model(script: str, extra: bool, frozen: tuple[_FrozenParam, ...]) -> type[BaseModel]:
    return _build_model(script, extra, tuple(f.p for f in frozen))


def params_model(info: ScriptInfo) -> type[BaseModel] | None:
    """A pydantic model of the script's params (None when they are unknown)."""
    if info.params is None:
        return None
    return _cached_model(info.name, info.extra_params, tuple(_FrozenParam(p) for p in info.params))


def validation_errors(err: ValidationError, prefix: tuple[str, ...] = ("body",)) -> list[dict[str, Any]]:
    return [
        {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False, include_input=False, include_context=False)
    ]


def validate_params(info: ScriptInfo, data: Any, prefix: tuple[str, ...] = ("body",)) -> dict[str, Any]:
    """The params a request gives, checked against the script's definition (where it is known).

    Only values given are kept (the script's own defaults apply to the rest); null means
    "the default"."""
    if not isinstance(data, dict):
        raise BodyInvalid([{"loc": list(prefix), "msg": "must be a JSON object", "type": "dict_type"}])
    model = params_model(info)
    if model is None:
        return {k: v for k, v in data.items() if v is not None}
    try:
        obj = model.model_validate(data)
    except ValidationError as err:
        raise BodyInvalid(validation_errors(err, prefix)) from None
    values = obj.model_dump(by_alias=True, exclude_unset=True)
    values.update(obj.model_extra or {})
    return {k: v for k, v in values.items() if v is not None}


def job_dict_for(info: ScriptInfo, params: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A job dict running `info` with validated `params` (positionals and switches become `args`)."""
    args: list[str] = []
    kept: dict[str, Any] = {}
    for key, value in params.items():
        p = info.param(key)
        if p is not None and info.contract == "flags" and p.positional:
            continue
        if p is not None and p.switch:
            if bool(value) != bool(p.default):
                args.append(next(f for f in p.flags if f.startswith("--")))
            continue
        kept[key] = value
    if info.contract == "flags":
        for p in info.params or []:
            if p.positional and p.name in params:
                value = params[p.name]
                words = value if isinstance(value, list) else [value]
                args += [w if isinstance(w, str) else _word(w) for w in words]
    job: dict[str, Any] = {"script": info.name, "params": kept}
    if info.contract != "flags":
        job["contract"] = info.contract
    extra_args = list(fields.pop("args", None) or [])
    if args or extra_args:
        job["args"] = extra_args + args
    job.update({k: v for k, v in fields.items() if v is not None})
    return job


def _word(value: Any) -> str:
    return str(value) if isinstance(value, bool) else json.dumps(value)
