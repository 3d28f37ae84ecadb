"""The job file (version 1) as a pydantic model, and parsing of dropped bytes.

Unknown fields are errors naming the field. The original system's shape
(`scriptName` + `jobParameters`) is read as an `argv4` job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from enum import Enum
from pathlib import PurePosixPath
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from spool.errors import InvalidJob, PathEscape
from spool.ids import is_valid_id

__all__ = [
    "Contract",
    "Requires",
    "Job",
    "LegacyJob",
    "job_file_schema",
    "parse_job",
    "decode_job",
    "job_from_dict",
    "check_relative_path",
    "env_refused",
    "LEGACY_KEYS",
    "ENV_REFUSED_PREFIXES",
]

LEGACY_KEYS = frozenset({"scriptName", "jobParameters", "scriptsPath"})
MAX_JOB_BYTES = 4 * 1024 * 1024
#: deeper values parse but pydantic cannot serialize them (its limit is a few hundred levels)
MAX_JOB_DEPTH = 64
#: a git revision: a commit id, a tag or a branch name (no leading '-', no ranges)
_LABEL_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_LABELS = 64
MAX_LABEL_VALUE = 200
MAX_AFTER = 10_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: `env` names no job may set unless spool.toml's `env_allow` names them (SPOOL_* never):
#: they choose the interpreter, its modules or the loader, or forge the runner's own variables.
ENV_REFUSED_PREFIXES = ("PYTHON", "LD_", "DYLD_", "SPOOL_")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REV = re.compile(r"^(?!.*\.\.)(?!.*@\{)[A-Za-z0-9_][A-Za-z0-9._/~^-]{0,199}$")


class Contract(str, Enum):
    """How params reach the script."""

    FLAGS = "flags"
    ARGV4 = "argv4"
    JSON = "json"
    HYDRA = "hydra"  # key=value words (W&B's ${args_no_hyphens}, Hydra's overrides)


class Requires(BaseModel):
    """What a runner must have to take the job."""

    model_config = ConfigDict(extra="forbid")

    gpu: StrictBool = False
    min_memory_gb: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tags: list[str] = Field(default_factory=list)
    os: str | None = None


def check_relative_path(value: str, what: str) -> str:
    """Refuse absolute paths and `..`: job paths are relative to the scripts folder or the spool."""
    if not value or "\x00" in value:
        raise ValueError(f"{what} must be a non-empty path")
    if "\\" in value or value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"{what} must be a relative path with '/' separators, not {value!r}")
    parts = PurePosixPath(value).parts
    if any(p == ".." for p in parts):
        raise ValueError(f"{what} may not contain '..': {value!r}")
    return value


class Job(BaseModel):
    """One run of one script with one set of parameters (job file version 1)."""

    model_config = ConfigDict(extra="forbid", title="housespool job (version 1)")

    script: str = Field(description="path of a script inside the scripts folder")
    params: dict[str, Any] = Field(default_factory=dict, description="parameters for the script")
    contract: Contract = Field(default=Contract.FLAGS, description="how params reach the script")
    requires: Requires | None = Field(default=None, description="what a runner must have")
    timeout: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="seconds before the script is stopped"
    )
    retries: StrictInt = Field(default=0, ge=0, le=100, description="extra attempts after a failure")
    priority: StrictInt = Field(default=0, description="higher runs first; ties by id")
    sweep: str | None = Field(default=None, description="sweep id grouping jobs")
    name: str | None = Field(default=None, description="a label")
    rev: str | None = Field(default=None, description="git revision of the scripts to run")
    rev_diff: str | None = Field(
        default=None, description="sha256 of a patch in the spool's diffs/ applied on top of `rev`"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    args: list[str] = Field(default_factory=list, description="fixed arguments placed before the params")
    inputs: list[str] = Field(default_factory=list, description="spool-relative input files to hash")
    warm: StrictBool | None = Field(default=None, description="false opts out of a warm (fork-server) runner")
    checkpoint_exit_code: StrictInt | None = Field(
        default=None,
        ge=1,
        le=255,
        description="an exit code meaning 'saved my state, run me again' (requeued at once, not counted)",
    )
    stop_grace: float | None = Field(
        default=None,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="seconds between the stop notice (SIGTERM) and SIGKILL (default: spool.toml's)",
    )
    after: list[str] = Field(
        default_factory=list, description="job or sweep ids that must be done before this job starts"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="{key: value} for the user's own grouping (not runner capabilities)"
    )

    @field_validator("script")
    @classmethod
    def _script_inside(cls, v: str) -> str:
        return check_relative_path(v, "script")

    @field_validator("rev")
    @classmethod
    def _rev_name(cls, v: str | None) -> str | None:
        if v is not None and not _REV.match(v):
            raise ValueError(f"not a git revision (a commit id, tag or branch name): {v!r}")
        return v

    @field_validator("rev_diff")
    @classmethod
    def _rev_diff_sha(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            if not re.fullmatch(r"[0-9a-f]{64}", v):
                raise ValueError("must be the sha256 (64 hex digits) of a patch in the spool's diffs/")
            if not info.data.get("rev"):
                raise ValueError("needs a rev to apply the diff to")
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs_inside(cls, v: list[str]) -> list[str]:
        return [check_relative_path(p, "input") for p in v]

    @field_validator("after")
    @classmethod
    def _after_ids(cls, v: list[str]) -> list[str]:
        if len(v) > MAX_AFTER:
            raise ValueError(f"at most {MAX_AFTER} ids")
        for dep in v:
            if not is_valid_id(dep):
                raise ValueError(f"not a job or sweep id: {dep!r}")
        return list(dict.fromkeys(v))  # each once, in the order given

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        for key, val in v.items():
            if not _LABEL_KEY.fullmatch(key):
                raise ValueError(f"a label name is letters, digits, '_', '-', '.' (up to 64): {key!r}")
            if len(val) > MAX_LABEL_VALUE or any(ord(c) < 32 for c in val):
                raise ValueError(f"label {key!r}: one line of at most {MAX_LABEL_VALUE} characters")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        allow = (info.context or {}).get("env_allow", ())
        for key, val in v.items():
            if not _ENV_NAME.match(key) or "\x00" in val:
                raise ValueError(f"bad environment variable name or value: {key!r}")
            if allow is not None and env_refused(key, allow):
                raise ValueError(
                    f"{key} may not be set by a job (PYTHON*, LD_*, DYLD_* and SPOOL_* choose what runs;"
                    " the spool's owner can allow a name in spool.toml's env_allow, SPOOL_* never)"
                )
        return v

    def to_file_dict(self) -> dict[str, Any]:
        """The job as written to a file: defaults left out so files stay short."""
        return self.model_dump(mode="json", exclude_defaults=True)


def env_refused(name: str, allow: Collection[str] = ()) -> bool:
    """True when a job may not set the environment variable `name` (see ENV_REFUSED_PREFIXES).

    Compared in upper case: Windows reads names without regard to case."""
    upper = name.upper()
    if upper.startswith("SPOOL_"):
        return True
    return upper.startswith(ENV_REFUSED_PREFIXES) and name not in allow


class LegacyJob(BaseModel):
    """The original system's job shape, read as an `argv4` job (its `scriptsPath` is ignored)."""

    model_config = ConfigDict(extra="forbid", title="original job shape (read as argv4)")

    scriptName: str
    scriptsPath: str | None = Field(default=None, description="ignored: scripts come from the scripts folder")
    jobParameters: dict[str, Any] = Field(
        default_factory=dict, description="dataFileName, dataPath, writePath, execution"
    )


def job_file_schema() -> dict[str, Any]:
    """JSON Schema of a job file: the v1 job, or the original shape."""
    job = Job.model_json_schema(ref_template="#/$defs/{model}")
    defs = job.pop("$defs", {})
    defs["Job"] = job
    defs["LegacyJob"] = LegacyJob.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "housespool job file",
        "anyOf": [{"$ref": "#/$defs/Job"}, {"$ref": "#/$defs/LegacyJob"}],
        "$defs": defs,
    }


def _legacy_to_job(data: dict[str, Any]) -> dict[str, Any]:
    """Read the original HQ's shape as an argv4 job (its absolute scriptsPath is ignored)."""
    unknown = sorted(set(data) - LEGACY_KEYS)
    if unknown:
        raise InvalidJob(f"unknown field in an original-shape job: {unknown[0]!r}", field=unknown[0])
    params = data.get("jobParameters") or {}
    if not isinstance(params, dict):
        raise InvalidJob("jobParameters must be an object", field="jobParameters")
    return {"script": data.get("scriptName"), "params": params, "contract": "argv4"}


def _explain(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "job"
    if first["type"] == "extra_forbidden":
        return field, "unknown field"
    if first["type"] == "missing":
        return field, "is required"
    return field, first["msg"].removeprefix("Value error, ")


def _first_bad_value(key: str, value: Any, limit: int) -> tuple[str, str] | None:
    """(field, reason) of the first value no job may hold, or None.

    Refused anywhere in a job: nesting deeper than `limit`; a lone surrogate in a string or a
    key (valid JSON, but not text: it cannot reach a script, a CSV or a web page); and NaN or
    an infinity (`1e400` parses as one): JSON has no such numbers, so a job holding one would
    run with a value its own record could not keep."""
    stack: list[tuple[Any, str, int]] = [(value, key, 1)]
    while stack:
        v, where, depth = stack.pop()
        if isinstance(v, str):
            if _LONE_SURROGATE.search(v):
                return where, "holds a lone surrogate (\\ud800-\\udfff), which is not text"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return where, f"{json.dumps(v)} is not a finite number (JSON has no NaN or Infinity)"
        elif isinstance(v, (dict, list)):
            if depth > limit:  # named by its field: the path itself would be the long part
                return key, f"nested more than {limit} levels deep"
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, child in items:
                if isinstance(k, str) and _LONE_SURROGATE.search(k):
                    return where, "has a key holding a lone surrogate, which is not text"
                stack.append((child, f"{where}.{k}", depth + 1))
    return None


def job_from_dict(data: Any, file: str | None = None, *, env_allow: Collection[str] | None = ()) -> Job:
    """Validate a dict as a job; raise `InvalidJob` naming the file and the field.

    `env_allow`: the `env` names spool.toml allows beyond the rule (see `env_refused`); None
    skips the env-name rule, for showing a job already in the folder (it was checked on entry)."""
    if not isinstance(data, dict):
        raise InvalidJob("a job must be a JSON object", file=file)
    for key, value in data.items():
        bad = _first_bad_value(str(key), value, MAX_JOB_DEPTH)
        if bad is None and _LONE_SURROGATE.search(str(key)):
            bad = ("job", "has a field name holding a lone surrogate, which is not text")
        if bad is not None:
            raise InvalidJob(bad[1], file=file, field=bad[0])
    if "scriptName" in data:
        try:
            data = _legacy_to_job(data)
        except InvalidJob as exc:
            raise InvalidJob(exc.message, file=file, field=exc.field) from None
    try:
        return Job.model_validate(data, context={"env_allow": env_allow})
    except ValidationError as err:
        field, msg = _explain(err)
        cls = PathEscape if field in ("script", "inputs") or field.startswith("inputs.") else InvalidJob
        raise cls(msg, file=file, field=field) from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def decode_job(raw: bytes, file: str | None = None) -> Any:
    """The JSON of a job file's bytes, a key given twice refused (which one was meant?).

    Raises `InvalidJob` for a file over the size limit or a duplicate key, and `ValueError`
    (`UnicodeDecodeError`, `json.JSONDecodeError`) or `RecursionError` when the bytes do not
    parse: perhaps still being written, which a scanner judges by time."""
    if len(raw) > MAX_JOB_BYTES:
        raise InvalidJob(f"job file is {len(raw)} bytes; the limit is {MAX_JOB_BYTES}", file=file)
    try:
        return json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_no_duplicates)  # a BOM is fine
    except _DuplicateKey as dup:
        key = dup.key.encode("utf-8", "backslashreplace").decode()
        raise InvalidJob(f"the key {key!r} is given twice", file=file, field=key) from None


def parse_job(raw: bytes, file: str | None = None, *, env_allow: Collection[str] | None = ()) -> Job:
    """Parse and validate the bytes of a job file (see `decode_job` and `job_from_dict`)."""
    try:
        data = decode_job(raw, file)
    except UnicodeDecodeError:
        raise InvalidJob("not UTF-8 text", file=file) from None
    except RecursionError:
        raise InvalidJob("JSON nested too deeply", file=file) from None
    except json.JSONDecodeError as exc:
        raise InvalidJob(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", file=file
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits, say
        raise InvalidJob(f"not valid JSON ({exc})", file=file) from None
    return job_from_dict(data, file, env_allow=env_allow)
