"""The scripts folder as a catalogue: each script's parameters, read without running it.

Where the parameters come from, first match wins:

1. a sidecar TOML file beside the script (`train.toml` or `train.py.toml`)::

       description = "Train the model"
       contract = "flags"            # flags | argv4 | json
       [params.lr]
       type = "float"                # str | int | float | bool | object | list | any
       default = 0.01
       help = "learning rate"
       [params.optimizer]
       choices = ["adam", "sgd"]

2. the script's argparse definition, read with `ast` (never imported, never run): every
   `<something>.add_argument(...)` call whose option strings are literals gives one parameter
   with its type (`int`, `float`, `str`, `bool`; other callables read as `any`), default,
   choices, help and whether it is required;
3. the original workers' layout (`argv4`): a script without argparse whose docstring or source
   names `dataFileName`, `dataPath` and `writePath` gets those four parameters;
4. otherwise the parameters are unknown (`params` is null) and any JSON object is accepted;
   a script that reads `sys.stdin` is taken to use the `json` contract.

A parameter's `name` is the job's params key, so the runner's `--name=value` reaches the
option: the option's `dest` when it is one of its spellings, else its first long option.
Values the flags contract cannot carry as `--name=value` become the job's `args`: positional
arguments (in order) and `store_true`/`store_false` switches (the switch, when the value
differs from its default). Options that have only short spellings (`-v`) are left out.

This module finds scripts, reads sidecars and caches what was read; the records live in
`service.scriptinfo`, source parsing (2-4) in `service.argparse_ast`, and the typed models,
checks and job dicts in `service.scriptparams`. Their public names are importable from here too.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from service.argparse_ast import parse_script_source
from service.scriptinfo import PARAM_TYPES, Param, ScriptInfo
from service.scriptparams import job_dict_for, params_model, validate_params, validation_errors
from spool.errors import NotFound, PathEscape
from spool.layout import resolve_inside
from spool.model import check_relative_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Param",
    "ScriptInfo",
    "list_scripts",
    "find_script",
    "parse_script_source",
    "params_model",
    "validate_params",
    "job_dict_for",
    "validation_errors",
    "PARAM_TYPES",
]

MAX_SCRIPTS = 1000
MAX_SOURCE_BYTES = 1024 * 1024
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", ".venv", "env"}


# -- sidecar TOML ------------------------------------------------------------------------------


def _sidecar(path: Path) -> Path | None:
    for candidate in (path.with_suffix(".toml"), path.with_name(path.name + ".toml")):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _from_toml(info: ScriptInfo, raw: bytes, where: str) -> bool:
    """Fill `info` from sidecar TOML; False (with a note) when the file is not usable."""
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        info.notes.append(f"{where}: not valid TOML ({exc}); parameters read from the script instead")
        return False
    contract = doc.get("contract", info.contract)
    if contract not in ("flags", "argv4", "json"):
        info.notes.append(f"{where}: contract must be flags, argv4 or json; ignored")
        return False
    table = doc.get("params", {})
    if not isinstance(table, dict):
        info.notes.append(f"{where}: [params] must be a table; ignored")
        return False
    params: list[Param] = []
    for pname, spec in table.items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        ptype = spec.get("type")
        if ptype is None:
            d = spec.get("default")
            ptype = {bool: "bool", int: "int", float: "float", dict: "object", list: "list"}.get(
                type(d), "str"
            )
        if ptype not in PARAM_TYPES:
            info.notes.append(f"{where}: params.{pname}: unknown type {ptype!r}; read as any")
            ptype = "any"
        choices = spec.get("choices")
        params.append(
            Param(
                name=str(pname),
                type=ptype,
                default=spec.get("default"),
                choices=list(choices) if isinstance(choices, list) and choices else None,
                help=spec.get("help") if isinstance(spec.get("help"), str) else None,
                required=spec.get("required") is True,
                items=spec.get("items") if spec.get("items") in PARAM_TYPES else None,
                flags=[f"--{pname}"] if contract == "flags" else [],
            )
        )
    info.contract, info.params, info.source = contract, params, "toml"
    info.extra_params = doc.get("extra_params") is True
    if isinstance(doc.get("description"), str):
        info.description = doc["description"]
    return True


@lru_cache(maxsize=2048)
def _read_info(path_text: str, name: str, stamp: tuple[int, int, int, int]) -> ScriptInfo:
    """Parse one script (cached by its and its sidecar's mtime and size)."""
    path = Path(path_text)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        info = ScriptInfo(name=name, path=path)
        info.notes.append(f"cannot read: {exc.strerror}")
        return info
    if len(raw) > MAX_SOURCE_BYTES:
        info = ScriptInfo(name=name, path=path)
        info.notes.append("larger than 1 MB: parameters not read")
    else:
        info = parse_script_source(raw.decode("utf-8", errors="replace"), name)
        info.path = path
    side = _sidecar(path)
    if side is not None:
        try:
            side_raw = side.read_bytes()
        except OSError:
            pass
        else:
            _from_toml(info, side_raw, side.name)
    return info


def _stamp(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    side = _sidecar(path)
    if side is None:
        return (st.st_mtime_ns, st.st_size, 0, 0)
    sst = side.stat()
    return (st.st_mtime_ns, st.st_size, sst.st_mtime_ns, sst.st_size)


def script_info(scripts_dir: Path, name: str) -> ScriptInfo:
    path = scripts_dir / name
    return _read_info(str(path), name, _stamp(path))


def list_scripts(scripts_dir: Path) -> list[ScriptInfo]:
    """Every `*.py` in the scripts folder (sub-folders too; hidden ones and caches skipped), by name."""
    root = scripts_dir.resolve()
    names: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")) and d not in _SKIP_DIRS)
        for fname in sorted(files):
            if not fname.endswith(".py") or fname.startswith((".", "_")):
                continue
            full = Path(folder) / fname
            rel = full.relative_to(root).as_posix()
            try:
                resolve_inside(root, rel, "script")  # a symlink out of the folder is not listed
            except PathEscape:
                continue
            names.append(rel)
            if len(names) >= MAX_SCRIPTS:
                break
        if len(names) >= MAX_SCRIPTS:
            break
    out = []
    for rel in sorted(names):
        try:
            out.append(script_info(root, rel))
        except OSError:
            continue
    return out


def find_script(scripts_dir: Path, name: str) -> ScriptInfo:
    """One script by its name in the scripts folder (`.py` may be left out).

    A name that would leave the folder is `PathEscape`; a missing one is `NotFound`."""
    try:
        check_relative_path(name, "script")
    except ValueError as exc:
        raise PathEscape(str(exc), field="script") from None
    root = scripts_dir.resolve()
    for candidate in (name, name + ".py") if not name.endswith(".py") else (name,):
        try:
            path = resolve_inside(root, candidate, "script")
            if path.is_file():
                return script_info(root, candidate)
        except OSError:  # a name too long for the file system, a file gone meanwhile...
            continue
    raise NotFound(f"no script {name!r} in the scripts folder", field="script")
