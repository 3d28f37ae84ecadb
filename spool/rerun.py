"""Re-running a recorded run exactly, and comparing two runs.

- `rerun(spool, id)`: a new job identical to the run's (same script, params, contract, args,
  env, inputs...), pinned to the commit the run recorded (`rev`), plus its stored diff
  (`rev_diff`) when the run was dirty. Warnings (not errors) say what cannot be made identical:
  no commit recorded, an input file that changed since.
- `diff_runs(spool, a, b)`: what differed between two runs, as rows `{"key", "a", "b"}`:
  script and job fields, params, git (commit, branch, dirty, diff), python and package
  versions, machine (host, OS, CPU, GPU), input hashes, and last the results.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from spool import jobs as _jobs
from spool.diffs import SHA256_RE, patch_files, patch_path
from spool.errors import InvalidJob, NotFound, SpoolError, UsageError
from spool.layout import resolve_inside
from spool.model import MAX_JOB_BYTES, Job, job_from_dict, parse_job
from spool.states import State
from spool.untrusted import NotRegular, open_regular, read_file

if TYPE_CHECKING:
    from spool.api import Spool
    from spool.jobs import JobView

__all__ = ["rerun", "diff_runs", "run_facts", "format_value"]


def _job_of(view: JobView, env_allow: Collection[str] = ()) -> Job:
    try:
        raw = read_file(view.path / "job.json" if view.path.is_dir() else view.path, MAX_JOB_BYTES)
        return parse_job(raw, view.id, env_allow=env_allow)
    except OSError as exc:
        raise InvalidJob(f"cannot read the job file of {view.id} ({exc.strerror})") from None


def rerun(spool: Spool, job_id: str, *, force: bool = False) -> tuple[str, list[str]]:
    """Submit a job identical to `job_id`'s run; returns (new id, warnings)."""
    view = spool.get(job_id)
    job = _job_of(view, spool.settings.env_allow)
    rec = view.result or {}
    data = job.to_file_dict()
    warnings: list[str] = []
    prov = rec.get("provenance") if isinstance(rec.get("provenance"), dict) else None
    git = (prov or {}).get("git") if isinstance((prov or {}).get("git"), dict) else None
    if view.state in (State.PENDING, State.CLAIMED) or not rec.get("started"):
        if not job.rev:
            raise UsageError(
                f"job {job_id} has not run ({view.state.value}): no commit is recorded to rerun; "
                "use `spool retry` for a failed job, or submit it again"
            )
        warnings.append(f"job {job_id} has not run; the rerun uses its own rev {job.rev}")
    elif git and git.get("commit"):
        data["rev"] = git["commit"]
        data.pop("rev_diff", None)
        if git.get("dirty"):
            diff = git.get("diff")
            if diff and SHA256_RE.match(str(diff)) and patch_path(spool.root, diff).exists():
                data["rev_diff"] = diff
            elif not force:
                why = "was not stored" if not diff else f"diffs/{diff}.patch is missing from the spool"
                raise UsageError(
                    f"run {job_id} had uncommitted changes whose diff {why}; "
                    "add --force to rerun the commit without them"
                )
            else:
                warnings.append(f"run {job_id} had uncommitted changes, not stored: rerunning its commit")
    else:
        why = (git or {}).get("error") or "no provenance recorded"
        if job.rev:
            warnings.append(f"run {job_id} recorded no commit ({why}); the rerun uses its rev {job.rev}")
        else:
            warnings.append(
                f"run {job_id} recorded no commit ({why}); the rerun uses the scripts folder as it is now"
            )
    new = job_from_dict(data, env_allow=spool.settings.env_allow)
    if not new.rev:
        _jobs.check_script(spool.scripts_dir, new)
    warnings += _changed_inputs(spool, (prov or {}).get("inputs"))
    raw = json.dumps(new.to_file_dict(), indent=1).encode() + b"\n"
    return _jobs.publish_job(spool.layout, raw), warnings


def _changed_inputs(spool: Spool, inputs: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(inputs, dict):
        return out
    for rel, was in inputs.items():
        if not isinstance(was, dict) or not was.get("sha256"):
            continue
        try:
            path = resolve_inside(spool.root, rel, "input")
        except SpoolError:
            continue
        if path.is_dir():
            if "files" not in was:
                out.append(f"input {rel} is a folder now")
            continue  # folders are compared by the runner; too costly here
        h = hashlib.sha256()
        try:
            with open_regular(path) as f:  # a FIFO or device put in its place is never read
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except NotRegular:
            out.append(f"input {rel} is not a regular file now")
            continue
        except FileNotFoundError:
            out.append(f"input {rel} is missing now")
            continue
        if h.hexdigest() != was["sha256"]:
            now = h.hexdigest()
            out.append(f"input {rel} changed since the run (sha256 {was['sha256'][:12]} -> {now[:12]})")
    return out


# -- diff -------------------------------------------------------------------------


def _flatten(out: dict[str, Any], prefix: str, obj: Any) -> None:
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            _flatten(out, f"{prefix}.{k}" if prefix else str(k), v)
    else:
        out[prefix] = obj


_JOB_KEYS = ("script", "contract", "args", "env", "rev", "rev_diff", "inputs", "timeout", "requires")
_GIT_KEYS = ("commit", "branch", "detached", "shallow", "dirty", "script_dirty", "diff", "error")
_MACHINE_KEYS = ("host", "os", "arch", "cpu", "gpu", "device", "housespool")


def run_facts(spool: Spool, job_id: str) -> dict[str, Any]:
    """One run as flat, comparable facts (ordered: job, params, git, python, machine, inputs, result)."""
    view = spool.get(job_id)
    rec = view.result or {}
    job = rec.get("job") if isinstance(rec.get("job"), dict) else view.job
    if job is None:
        raise NotFound(f"job {job_id} has no readable job: {view.problem}")
    prov: dict[str, Any] = rec["provenance"] if isinstance(rec.get("provenance"), dict) else {}
    f: dict[str, Any] = {"state": view.state.value}
    for key in _JOB_KEYS:
        if key in ("env", "requires"):
            _flatten(f, key, job.get(key) or {})
        else:
            f[key] = job.get(key)
    _flatten(f, "param", job.get("params") or {})
    git: dict[str, Any] = prov["git"] if isinstance(prov.get("git"), dict) else {}
    for key in _GIT_KEYS:
        if key in git or key == "commit":
            f[f"git.{key}"] = git.get(key)
    py: dict[str, Any] = prov["python"] if isinstance(prov.get("python"), dict) else {}
    f["python.version"] = py.get("version", rec.get("python_version"))
    f["python.executable"] = py.get("executable", rec.get("python"))
    _flatten(f, "package", prov.get("packages") or {})
    _flatten(f, "torch", prov.get("torch") or {})
    for key in _MACHINE_KEYS:
        f[key] = prov.get(key, rec.get(key))
    for rel, h in (prov.get("inputs") or {}).items():
        f[f"input.{rel}"] = h.get("sha256") or f"({h.get('error')})" if isinstance(h, dict) else h
    _flatten(f, "result", rec.get("result") if isinstance(rec.get("result"), dict) else {})
    err = rec.get("error")
    if isinstance(err, dict):
        f["error.kind"] = err.get("kind")
    return {k: v for k, v in f.items() if not (k.startswith(("env", "requires")) and v in ({}, None))}


def diff_runs(spool: Spool, a: str, b: str) -> list[dict[str, Any]]:
    """Rows `{"key", "a", "b"}` for every fact that differs between runs `a` and `b`."""
    fa, fb = run_facts(spool, a), run_facts(spool, b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in keys if fa.get(k) != fb.get(k)]


def format_value(spool: Spool, key: str, value: Any) -> str:
    """A fact for people: short commits and hashes, the files a stored diff touches."""
    if value is None:
        return "-"
    if key == "git.commit" and isinstance(value, str):
        return value[:12]
    if key in ("git.diff", "rev_diff") and isinstance(value, str) and SHA256_RE.match(value):
        try:
            files = patch_files(patch_path(spool.root, value).read_bytes())
            shown = ", ".join(files[:4]) + (f" +{len(files) - 4}" if len(files) > 4 else "")
            return f"{value[:12]} ({shown})"
        except OSError:
            return f"{value[:12]} (missing from diffs/)"
    if key.startswith("input.") and isinstance(value, str) and SHA256_RE.match(value):
        return value[:12]
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
