"""What the server does to the spool, shared by the JSON API and the job form.

Everything here goes through `spool.api.Spool` and `spool.sweeps`: the folder stays the
truth, and every file appears whole (the spool publishes by temp file and rename).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Collection
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from service.errors import BodyInvalid
from service.scripts import ScriptInfo, find_script, job_dict_for, validate_params, validation_errors
from spool.api import Spool
from spool.errors import InvalidJob, PathEscape, SweepError
from spool.jobs import JobView
from spool.layout import Entry, check_write_path
from spool.model import Job, Requires, check_relative_path, job_from_dict
from spool.states import State

__all__ = [
    "JobOptions",
    "SweepRequest",
    "LegacyRun",
    "parse_json",
    "validate_job",
    "submit_job",
    "submit_script",
    "plan_sweep",
    "plan_wandb",
    "create_sweep",
    "wait_for_end",
    "job_summary",
    "list_page",
    "job_entries",
    "MAX_SWEEP_POINTS",
    "HARD_MAX_SWEEP_POINTS",
]

MAX_SWEEP_POINTS = 10_000
HARD_MAX_SWEEP_POINTS = 100_000


# -- request bodies --------------------------------------------------------------------------


class JobOptions(BaseModel):
    """Fields of a job besides its script and params (as in the job file)."""

    model_config = ConfigDict(extra="forbid")

    contract: Annotated[str | None, Field(pattern="^(flags|argv4|json)$")] = None
    name: str | None = Field(default=None, max_length=500)
    priority: int | None = Field(default=None, ge=-(10**9), le=10**9)
    timeout: float | None = Field(default=None, gt=0, le=10**8)
    retries: int | None = Field(default=None, ge=0, le=100)
    requires: Requires | None = None
    env: dict[str, str] | None = None
    args: list[str] | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


_Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
_IntPair = Annotated[list[int], Field(min_length=2, max_length=2)]


class SweepRequest(JobOptions):
    """`POST /sweeps` as JSON: the `spool sweep` flags.

    Each space field is either an object (`{"lr": [0.1, 0.01]}`, `{"lr": [1e-4, 1e-1]}` for a
    range) or the CLI's strings (`["lr=0.1,0.01"]`, `["lr=1e-4:1e-1"]`); one request uses one form."""

    script: str = Field(description="script inside the scripts folder")
    grid: dict[str, list[Any]] | list[str] | None = Field(default=None, description="grid values")
    choice: dict[str, list[Any]] | list[str] | None = Field(default=None, description="categorical values")
    random: int | None = Field(default=None, ge=1, le=HARD_MAX_SWEEP_POINTS, description="N random points")
    uniform: dict[str, _Pair] | list[str] | None = None
    log_uniform: dict[str, _Pair] | list[str] | None = None
    int_uniform: dict[str, _IntPair] | list[str] | None = None
    seeds: int = Field(default=1, ge=1, le=10_000, description="repeat every point with seed=0..K-1")
    sample_seed: int = Field(default=0, ge=0, le=2**32 - 1)
    params: dict[str, Any] = Field(default_factory=dict, description="fixed params of every job")
    dry_run: bool = Field(default=False, description="answer with the points, write nothing")
    yes: bool = Field(default=False, description=f"allow more than {MAX_SWEEP_POINTS} points")


class LegacyParameters(BaseModel):
    """The original workers' `jobParameters`."""

    model_config = ConfigDict(extra="allow")

    dataFileName: str = Field(description="the data file's name, inside dataPath")
    dataPath: str = Field(default="data/", description="spool-relative folder of the data file")
    writePath: str | None = Field(default=None, description="spool-relative output folder")
    execution: dict[str, Any] = Field(default_factory=dict, description="the script's options")


class LegacyRun(BaseModel):
    """The original `POST /scripts/run` body (`scriptsPath` is accepted and ignored)."""

    model_config = ConfigDict(extra="forbid")

    scriptsPath: str | None = Field(default=None, description="ignored: scripts come from the spool")
    scriptName: str = Field(description="script inside the scripts folder")
    jobParameters: LegacyParameters


# -- parsing and validating ------------------------------------------------------------------


def _no_constants(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def parse_json(raw: bytes) -> Any:
    """A request body as JSON (strict: no NaN/Infinity); malformed is a 422 at `body`."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        msg = "the body is not UTF-8 text"
    except RecursionError:
        msg = "JSON nested too deeply"
    except json.JSONDecodeError as exc:
        msg = f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except ValueError as exc:
        msg = str(exc)
    raise BodyInvalid([{"loc": ["body"], "msg": msg, "type": "json_invalid"}])


def model_from(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise BodyInvalid(validation_errors(err)) from None


def _is_escape(message: str) -> bool:
    """Whether a path error says the path would leave its folder (400) rather than being malformed (422)."""
    return "relative path" in message or "may not contain '..'" in message or "leaves" in message


def validate_job(data: Any, env_allow: Collection[str] = ()) -> Job:
    """A job dict checked as the spool checks a job file: a path that leaves its folder is
    `PathEscape` (400); any other problem is one 422 listing every field at fault."""
    try:
        return job_from_dict(data, env_allow=env_allow)
    except InvalidJob as exc:
        if isinstance(data, dict) and "scriptName" not in data:
            try:
                Job.model_validate(data, context={"env_allow": env_allow})
            except ValidationError as err:
                for e in err.errors(include_url=False):
                    if e["loc"] and e["loc"][0] in ("script", "inputs") and _is_escape(e["msg"]):
                        field = ".".join(str(p) for p in e["loc"])
                        raise PathEscape(e["msg"].removeprefix("Value error, "), field=field) from None
                raise BodyInvalid(validation_errors(err)) from None
            except RecursionError:
                pass
        if isinstance(exc, PathEscape) and _is_escape(exc.message):
            raise
        loc: list[Any] = ["body"] + (exc.field.split(".") if exc.field else [])
        if isinstance(data, dict) and "scriptName" in data and exc.field == "script":
            loc = ["body", "scriptName"]
        raise BodyInvalid([{"loc": loc, "msg": exc.message, "type": "invalid_job"}]) from None


def _check_argv4_paths(sp: Spool, params: dict[str, Any]) -> None:
    """Spool-relative `dataPath`/`writePath` (one the spool lets a job write into, as the runner
    checks it), and a bare `dataFileName`, or a 400 naming the field."""
    for key in ("dataPath", "writePath"):
        value = params.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise BodyInvalid([{"loc": ["body", key], "msg": "must be a string", "type": "string_type"}])
        try:
            check_relative_path(value, key)
        except ValueError as exc:
            raise PathEscape(str(exc), field=key) from None
        if key == "writePath":
            try:
                check_write_path(sp.root, value, sp.scripts_dir)
            except PathEscape as exc:
                raise PathEscape(exc.message, field=key) from None
    name = params.get("dataFileName")
    if isinstance(name, str) and ("/" in name or "\\" in name or name in (".", "..") or "\x00" in name):
        raise PathEscape("dataFileName must be a file name, not a path", field="dataFileName")


def submit_job(sp: Spool, data: Any, raw: bytes | None = None) -> str:
    """Queue one job (a job-file dict, or the original shape); `raw` are the bytes to keep."""
    job = validate_job(data, sp.settings.env_allow)
    info = find_script(sp.scripts_dir, job.script)
    del info
    if job.contract.value == "argv4":
        _check_argv4_paths(sp, job.params)
    if raw is not None:
        return sp.submit_bytes(raw)
    return sp.submit(job)


def submit_script(sp: Spool, info: ScriptInfo, body: Any, options: dict[str, Any]) -> str:
    """Queue the script `info` with the params of a request body (checked against its definition)."""
    params = validate_params(info, body)
    if info.contract == "argv4":
        _check_argv4_paths(sp, params)
    job = validate_job(job_dict_for(info, params, **options), sp.settings.env_allow)
    return sp.submit(job)


# -- sweeps ----------------------------------------------------------------------------------

_SPACE = ("grid", "choice", "uniform", "log_uniform", "int_uniform")
_RANGE_DISTRIBUTIONS = {
    "uniform": "uniform",
    "log_uniform": "log_uniform_values",
    "int_uniform": "int_uniform",
}


def point_limit(yes: bool, limits: tuple[int, int] | None = None) -> int:
    """The most points a sweep may have: (without `yes`, with `yes`)."""
    soft, hard = limits or (MAX_SWEEP_POINTS, HARD_MAX_SWEEP_POINTS)
    return hard if yes else soft


def plan_sweep(req: SweepRequest, limits: tuple[int, int] | None = None) -> Any:
    """The points of a JSON sweep request (a `spool.sweeps.SweepPlan`)."""
    from spool.sweeps import plan_from_flags, plan_from_wandb

    max_points = point_limit(req.yes, limits)
    given = {k: getattr(req, k) for k in _SPACE if getattr(req, k)}
    forms = {isinstance(v, list) for v in given.values()}
    if len(forms) > 1:
        raise BodyInvalid(
            [
                {
                    "loc": ["body", next(k for k, v in given.items() if isinstance(v, list))],
                    "msg": "give every space field as an object, or every one as the CLI's strings",
                    "type": "mixed_forms",
                }
            ]
        )
    if forms == {True} or not given:  # the CLI's strings, or only seeds: exactly as `spool sweep`
        return plan_from_flags(
            req.script,
            req.grid or [],  # type: ignore[arg-type]
            req.random,
            req.uniform or [],  # type: ignore[arg-type]
            req.log_uniform or [],  # type: ignore[arg-type]
            req.int_uniform or [],  # type: ignore[arg-type]
            req.choice or [],  # type: ignore[arg-type]
            req.seeds,
            dict(req.params),
            req.sample_seed,
            max_points=max_points,
        )
    parameters: dict[str, Any] = {}

    def put(name: str, spec: dict[str, Any], flag: str) -> None:
        if name in parameters:
            raise SweepError(f"parameter {name!r} is given twice", field=f"{flag}.{name}")
        parameters[name] = spec

    for flag in ("grid", "choice"):
        for name, values in (getattr(req, flag) or {}).items():
            put(name, {"values": values}, flag)
    for flag, dist in _RANGE_DISTRIBUTIONS.items():
        for name, (low, high) in (getattr(req, flag) or {}).items():
            if req.random is None:
                raise SweepError(
                    f"{flag} {name}: a range cannot be gridded; give random: N to sample N points", field=name
                )
            put(name, {"distribution": dist, "min": low, "max": high}, flag)
    for name, value in req.params.items():
        put(name, {"value": value}, "params")
    doc: dict[str, Any] = {
        "program": req.script,
        "method": "random" if req.random is not None else "grid",
        "parameters": parameters,
    }
    return plan_from_wandb(
        json.dumps(doc),
        "<request>",
        random_n=req.random,
        sample_seed=req.sample_seed,
        seeds=req.seeds,
        max_points=max_points,
    )


def plan_wandb(
    text: str,
    *,
    random_n: int | None,
    seeds: int,
    sample_seed: int,
    yes: bool,
    limits: tuple[int, int] | None = None,
) -> Any:
    """The points of a W&B sweep file sent as the body."""
    from spool.sweeps import plan_from_wandb

    max_points = point_limit(yes, limits)
    return plan_from_wandb(
        text, "<request>", random_n=random_n, sample_seed=sample_seed, seeds=seeds, max_points=max_points
    )


def create_sweep(sp: Spool, plan: Any, template: dict[str, Any]) -> tuple[str, list[str]]:
    """Check the script (404/400 before anything is written), then publish the sweep."""
    from spool.sweeps.store import create_sweep as _create

    if plan.script:
        find_script(sp.scripts_dir, plan.script)
    return _create(sp, plan, template)


# -- looking -----------------------------------------------------------------------------------


async def wait_for_end(sp: Spool, job_id: str, seconds: float, request: Any = None) -> Entry | None:
    """The job's entry once it is in done/ or failed/, or None when `seconds` pass first (or the
    client of `request` went away: the job goes on, nobody is waiting for the answer)."""
    deadline = time.monotonic() + max(seconds, 0.0)
    delay = 0.05
    while True:
        entry = await run_in_threadpool(sp.layout.find, job_id)
        if entry is not None and entry.state in (State.DONE, State.FAILED):
            return entry
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (request is not None and await request.is_disconnected()):
            return None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.25)


def job_summary(view: JobView, *, full: bool = False) -> dict[str, Any]:
    """A job as the API shows it (no server paths)."""
    out = view.to_dict(files=full)
    out.pop("path", None)
    out["url"] = f"/jobs/{view.id}"
    if full:
        out["job"] = view.job
        if view.result is not None:
            out["record"] = view.result
        if view.claim is not None:
            out["claim"] = view.claim
    return out


def job_entries(sp: Spool, state: State | None, sweep: str | None) -> list[Entry]:
    """The jobs (one state's, one sweep's, or all) sorted by id, from one scandir per state."""
    from spool.layout import JOB_FILE

    sp.check()
    member = re.compile(re.escape(sweep) + r"-\d{5}\Z") if sweep else None
    entries: list[Entry] = []
    for st in [state] if state else list(State):
        for entry in sp.layout.entries(st):
            if st is State.CLAIMED and not (entry.path / JOB_FILE).exists():
                continue  # a claim in progress: the job is still pending, whole
            if member is not None and not member.match(entry.id):
                continue
            entries.append(entry)
    entries.sort(key=lambda e: e.id)
    return entries


def list_page(
    sp: Spool, state: State | None, sweep: str | None, limit: int, offset: int
) -> tuple[int, list[JobView]]:
    """One page of jobs sorted by id; job files are read for the page only."""
    from spool.jobs import view

    entries = job_entries(sp, state, sweep)
    return len(entries), [view(e) for e in entries[offset : offset + limit]]
