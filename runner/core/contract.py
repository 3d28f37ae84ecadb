"""The script contract: how a job's params become argv, stdin and environment.

`flags`: `python SCRIPT [args] --key=value ...`; `hydra`: `python SCRIPT [args] key=value ...`
(W&B's `${args_no_hyphens}`, Hydra's override words); `argv4`: the original worker's
`python SCRIPT dataFileName dataPath writePath json(execution)`; `json`: params on stdin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core.interrupt import checkpoint_env
from spool.errors import InvalidJob
from spool.layout import check_write_path, resolve_inside
from spool.model import Contract, Job, env_refused

__all__ = ["Invocation", "build_invocation", "flag_value"]


@dataclass(frozen=True)
class Invocation:
    """Everything needed to start one script: never a shell, always an argument list."""

    argv: list[str]
    env: dict[str, str]
    stdin: bytes | None
    cwd: Path


def flag_value(value: Any) -> str:
    """How a param value is spelled after `--key=`: strings as they are, the rest as JSON
    (so `0.01`, `true`, `[1, 2]`); Python bools as `True`/`False`, as W&B's `${args}` does."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    return json.dumps(value)


def _dir_arg(path: Path) -> str:
    text = str(path)
    return text if text.endswith(os.sep) else text + os.sep


def _argv4(job: Job, spool_root: Path, outputs: Path, script_dir: Path) -> list[str]:
    p = job.params
    for key in ("dataFileName",):
        if not isinstance(p.get(key, ""), str):
            raise InvalidJob(f"{key} must be a string", field=f"params.{key}")
    data_rel = p.get("dataPath") or "data/"
    if not isinstance(data_rel, str) or os.path.isabs(data_rel):
        raise InvalidJob("dataPath must be a spool-relative folder such as 'data/'", field="params.dataPath")
    data_dir = resolve_inside(spool_root, data_rel, "params.dataPath")
    write_rel = p.get("writePath")
    if write_rel:
        if not isinstance(write_rel, str) or os.path.isabs(write_rel):
            raise InvalidJob(
                "writePath must be spool-relative (or left out for outputs/)", field="params.writePath"
            )
        write_dir = check_write_path(spool_root, write_rel, script_dir, own=outputs.parent)
        write_dir.mkdir(parents=True, exist_ok=True)
    else:
        write_dir = outputs
    name = p.get("dataFileName", "")
    if name and (os.sep in name or "/" in name or name in (".", "..")):
        raise InvalidJob("dataFileName must be a file name, not a path", field="params.dataFileName")
    execution = p.get("execution", {})
    return [name, _dir_arg(data_dir), _dir_arg(write_dir), json.dumps(execution)]


def build_invocation(
    job: Job,
    *,
    job_id: str,
    python: str,
    script: Path,
    spool_root: Path,
    folder: Path,
    device: str,
    base_env: dict[str, str] | None = None,
    attempt: int = 1,
    env_allow: Collection[str] = (),
    scripts_dir: Path | None = None,
) -> Invocation:
    """The argv, environment and stdin for `job` run from `folder` (cwd is its `outputs/`).

    The job's `env` is applied before the runner's own variables, so no job can forge a
    `SPOOL_*`; and a name that would choose what runs (`PYTHON*`, `LD_*`, `DYLD_*`, unless
    spool.toml's `env_allow` names it) is refused here too, whoever validated the job."""
    outputs = folder / "outputs"
    outputs.mkdir(exist_ok=True)
    stdin: bytes | None = None
    if job.contract is Contract.FLAGS:
        tail = [f"--{k}={flag_value(v)}" for k, v in job.params.items()]
    elif job.contract is Contract.HYDRA:
        tail = [f"{k}={flag_value(v)}" for k, v in job.params.items()]
    elif job.contract is Contract.ARGV4:
        tail = _argv4(job, spool_root, outputs, scripts_dir or script.parent)
    else:
        tail = []
        stdin = json.dumps(job.params).encode()
    refused = sorted(k for k in job.env if env_refused(k, env_allow))
    if refused:
        raise InvalidJob(f"{refused[0]} may not be set by a job (it chooses what runs)", field="env")
    env = dict(os.environ if base_env is None else base_env)
    env.update(job.env)
    env.update(
        {
            "SPOOL_JOB_ID": job_id,
            "SPOOL_PARAMS": json.dumps(job.params),
            "SPOOL_OUTPUT_DIR": str(outputs),
            "SPOOL_DIR": str(spool_root),
            "SPOOL_DATA_DIR": str(spool_root / "data"),
            "SPOOL_DEVICE": device,
            "PYTHONUNBUFFERED": "1",
            **checkpoint_env(folder, attempt),
        }
    )
    return Invocation([python, str(script), *job.args, *tail], env, stdin, outputs)
