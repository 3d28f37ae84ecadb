"""The job form: server-rendered HTML, no build step, no script, no external assets.

`GET /` picks a script and shows its parameters (typed inputs from `service.scripts`); the form
posts to `/ui/submit` (plain `application/x-www-form-urlencoded`) and lands on `/ui/jobs`, which
lists the new jobs and refreshes itself while any of them is waiting or running. A value left
empty means the script's default; "sweep values" (comma-separated) or seeds > 1 queue a sweep.
Jinja2 autoescapes everything; pages forbid scripts and framing by Content-Security-Policy.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from service import actions
from service.errors import BodyInvalid, error_body, http_status
from service.scripts import Param, ScriptInfo, find_script, job_dict_for, list_scripts, validate_params
from spool.api import Spool
from spool.errors import SpoolError
from spool.jobs import view as job_view
from spool.states import State

__all__ = ["install_forms", "form_values"]

HERE = Path(__file__).resolve().parent
RECENT = 100
HTML_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    return env


def _convert(p: Param, text: str) -> Any:
    """A form field's text as the parameter's type; ValueError with a message for people."""
    text = text.strip()
    if p.choices is not None:
        for c in p.choices:
            if text == str(c) or (isinstance(c, bool) and text.lower() == str(c).lower()):
                return c
        raise ValueError("pick one of " + ", ".join(str(c) for c in p.choices))
    if p.type == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if p.type == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if p.type == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("must be true or false")
    if p.type in ("object", "list"):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("must be JSON") from None
        want = dict if p.type == "object" else list
        if not isinstance(value, want):
            raise ValueError(f"must be a JSON {'object' if want is dict else 'list'}")
        return value
    if p.type == "any":
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, (int, float, str, bool)) else text
    return text


def form_values(
    info: ScriptInfo, form: dict[str, str], errors: dict[str, str]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The fixed params and the sweep values a submitted form gives (problems go to `errors`)."""
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    if info.params is None:
        text = form.get("params_json", "").strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError:
            errors["params_json"] = "must be a JSON object"
            return fixed, grid
        if not isinstance(value, dict):
            errors["params_json"] = "must be a JSON object"
            return fixed, grid
        return value, grid
    for p in info.params:
        text = form.get(f"param.{p.name}", "")
        sweep_text = form.get(f"grid.{p.name}", "").strip()
        try:
            if sweep_text:
                words = [w.strip() for w in sweep_text.split(",")]
                if any(not w for w in words):
                    raise ValueError("empty sweep value (write v1,v2,...)")
                grid[p.name] = [_convert(p, w) for w in words]
            elif text.strip():
                fixed[p.name] = _convert(p, text)
        except ValueError as exc:
            errors[p.name] = str(exc)
    return fixed, grid


def _int_field(form: dict[str, str], key: str, errors: dict[str, str], default: int | None) -> int | None:
    text = form.get(key, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        errors[key] = "must be a whole number"
        return default


def _float_field(form: dict[str, str], key: str, errors: dict[str, str]) -> float | None:
    text = form.get(key, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors[key] = "must be a number"
        return None
    if not math.isfinite(value) or value <= 0:
        errors[key] = "must be a positive number"
        return None
    return value


def _errors_by_field(exc: BodyInvalid) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors:
        loc = [str(p) for p in e.get("loc", [])]
        key = loc[1] if len(loc) > 1 and loc[0] in ("body", "query") else "form"
        out.setdefault(key, str(e.get("msg")))
    return out


def _queue(sp: Spool, info: ScriptInfo, form: dict[str, str], errors: dict[str, str]) -> str:
    """Queue what the form asks for; the URL to go to next ("" when `errors` says why not)."""
    fixed, grid = form_values(info, form, errors)
    seeds = _int_field(form, "seeds", errors, 1) or 1
    if not 1 <= seeds <= 1000:
        errors["seeds"] = "must be between 1 and 1000"
    options = {
        "priority": _int_field(form, "priority", errors, None),
        "timeout": _float_field(form, "timeout", errors),
        "name": form.get("name", "").strip() or None,
    }
    if errors:
        return ""
    fixed = validate_params(info, fixed)
    for name, values in grid.items():
        for value in values:
            validate_params(info, {**fixed, name: value})
    job = actions.validate_job(job_dict_for(info, fixed, **options))
    if not grid and seeds <= 1:
        job_id = sp.submit(job)
        return f"/ui/jobs?new={quote(job_id)}"
    template = job.model_dump(mode="json", exclude_defaults=True)
    template.pop("script", None)
    try:
        req = actions.SweepRequest.model_validate(
            {"script": info.name, "grid": grid or None, "seeds": seeds, **template}
        )
    except ValidationError as err:
        raise BodyInvalid(
            [{"loc": ["body", "form"], "msg": str(err.errors()[0]["msg"]), "type": "invalid"}]
        ) from None
    plan = actions.plan_sweep(req)
    sweep_template = actions.JobOptions.model_validate(
        req.model_dump(include=set(actions.JobOptions.model_fields))
    ).fields()
    sid, _ = actions.create_sweep(sp, plan, sweep_template)
    return f"/ui/jobs?sweep={quote(sid)}"


def _outcome(d: dict[str, Any]) -> str:
    err = d.get("error")
    if isinstance(err, dict) and err:
        return f"{err.get('kind')}: {err.get('message')}"[:300]
    if d.get("result") is not None:
        return json.dumps(d["result"], default=str)[:300]
    return d.get("problem") or ""


class _Pages:
    """Renders the form's pages for one app and spool."""

    def __init__(self, app: FastAPI, sp: Spool):
        self.env, self.app, self.sp = _environment(), app, sp

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("refresh", None)
        context.setdefault("report", bool(getattr(self.app.state, "report", False)))
        context.setdefault("spool_name", self.sp.root.name)
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=HTML_HEADERS)

    def form_page(
        self,
        selected: ScriptInfo | None,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        general: list[str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        scripts = list_scripts(self.sp.scripts_dir)
        if selected is None and scripts:
            selected = scripts[0]
        return self.page(
            "form.html.j2",
            status,
            title="Queue a job",
            scripts=scripts,
            selected=selected,
            values=values or {},
            errors=errors or {},
            general_errors=general or [],
        )


def install_forms(app: FastAPI, sp: Spool) -> None:
    """Add the form pages (left out of the OpenAPI schema) and their stylesheet to `app`."""
    pages = _Pages(app, sp)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def form(script: str | None = Query(None, max_length=500)) -> HTMLResponse:
        if not script:
            return pages.form_page(None)
        try:
            info = find_script(sp.scripts_dir, script)
        except SpoolError as exc:
            return pages.form_page(None, general=[f"{script}: {exc.message}"], status=http_status(exc))
        return pages.form_page(info)

    @app.post("/ui/submit", include_in_schema=False, response_class=HTMLResponse)
    async def submit(request: Request) -> Response:
        return await _submit(pages, request)

    @app.get("/ui/jobs", include_in_schema=False, response_class=HTMLResponse)
    def jobs(
        sweep: str | None = Query(None, max_length=200),
        new: Annotated[list[str] | None, Query()] = None,
    ) -> HTMLResponse:
        return _jobs_page(pages, sweep, new)


async def _submit(pages: _Pages, request: Request) -> Response:
    """The form posted: queue its job or sweep and go to /ui/jobs, or show it again with errors."""
    sp = pages.sp
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return pages.page(
            "form.html.j2",
            415,
            title="Queue a job",
            scripts=[],
            selected=None,
            values={},
            errors={},
            general_errors=["send the form as application/x-www-form-urlencoded"],
        )
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        return pages.form_page(None, general=["the form could not be read"], status=400)
    values = dict(pairs)
    try:
        info = await run_in_threadpool(find_script, sp.scripts_dir, values.get("script", ""))
    except SpoolError as exc:
        return pages.form_page(None, general=[exc.message], status=http_status(exc))
    errors: dict[str, str] = {}
    try:
        target = await run_in_threadpool(_queue, sp, info, values, errors)
    except BodyInvalid as exc:
        errors = _errors_by_field(exc)
        target = ""
    except SpoolError as exc:
        body = error_body(exc)
        detail = body["detail"]
        message = detail if isinstance(detail, str) else "; ".join(str(d.get("msg")) for d in detail)
        field = exc.field or ""
        if info.param(field) is not None:
            errors[field] = message
        return pages.form_page(info, values, errors, [message], status=http_status(exc))
    if not target:
        general = [f"{k}: {v}" for k, v in errors.items() if info.param(k) is None]
        general = general or ["please correct the fields marked below"]
        return pages.form_page(info, values, errors, general, 422)
    return RedirectResponse(target, status_code=303)


def _jobs_page(pages: _Pages, sweep: str | None, new: list[str] | None) -> HTMLResponse:
    """The most recent jobs (of a sweep), refreshing itself while any is waiting or running."""
    entries = actions.job_entries(pages.sp, None, sweep)
    counts = Counter(e.state.value for e in entries)
    rows = []
    for e in reversed(entries[-RECENT:]):
        v = job_view(e)
        d = v.to_dict()
        d["params_text"] = json.dumps(d.get("params"), default=str)[:300] if d.get("params") else ""
        d["outcome"] = _outcome(d)
        rows.append(d)
    active = any(e.state in (State.PENDING, State.CLAIMED) for e in entries)
    return pages.page(
        "jobs.html.j2",
        title="Jobs",
        jobs=rows,
        total=len(entries),
        shown=len(rows),
        counts={s.value: counts.get(s.value, 0) for s in State},
        sweep=sweep,
        new=new or [],
        refresh=2 if active else None,
    )
