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
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from service.errors import BodyInvalid
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

PARAM_TYPES = ("str", "int", "float", "bool", "object", "list", "any")
MAX_SCRIPTS = 1000
MAX_SOURCE_BYTES = 1024 * 1024
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", ".venv", "env"}
_ARGV4_NAMES = ("dataFileName", "dataPath", "writePath")
_NAMED_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool"}
_NO_DEFAULT = object()


@dataclass
class Param:
    """One parameter of a script, as a job's params key."""

    name: str
    type: str = "str"
    default: Any = None
    choices: list[Any] | None = None
    help: str | None = None
    required: bool = False
    items: str | None = None
    flags: list[str] = field(default_factory=list)
    positional: bool = False
    switch: str | None = None  # "store_true" / "store_false": passed as a bare flag in `args`

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "help": self.help,
        }
        if self.choices is not None:
            out["choices"] = self.choices
        if self.items:
            out["items"] = self.items
        if self.flags:
            out["flags"] = self.flags
        if self.positional:
            out["positional"] = True
        if self.switch:
            out["switch"] = self.switch
        return out


@dataclass
class ScriptInfo:
    """A script of the scripts folder and what is known of its parameters."""

    name: str
    path: Path
    description: str | None = None
    contract: str = "flags"
    params: list[Param] | None = None
    source: str | None = None  # "toml", "argparse", "argv4" or None (unknown)
    extra_params: bool = False  # parse_known_args: unknown params are passed on too
    notes: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.params is not None

    def param(self, name: str) -> Param | None:
        for p in self.params or []:
            if p.name == name:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "contract": self.contract,
            "params": [p.to_dict() for p in self.params] if self.params is not None else None,
            "params_from": self.source,
            "extra_params": self.extra_params,
            "notes": self.notes,
        }


# -- reading argparse definitions with ast -----------------------------------------------------


def _literal(node: ast.AST | None) -> Any:
    """The value of a literal expression, or `_NO_DEFAULT` when it is not one."""
    if node is None:
        return _NO_DEFAULT
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_DEFAULT


def _type_name(node: ast.AST | None) -> str:
    if node is None:
        return "str"
    if isinstance(node, ast.Name):
        return _NAMED_TYPES.get(node.id, "any")
    return "any"


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return not (isinstance(value, float) and value != value)
    if isinstance(value, (list, tuple)):
        return all(_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False


def _first_paragraph(text: str | None) -> str | None:
    if not text:
        return None
    para = text.strip().split("\n\n")[0]
    return " ".join(para.split()) or None


def _param_from_call(call: ast.Call, notes: list[str]) -> Param | None:
    strings = [_literal(a) for a in call.args]
    if not strings or not all(isinstance(s, str) for s in strings):
        notes.append(f"line {call.lineno}: add_argument with non-literal names is skipped")
        return None
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    action = _literal(kw.get("action"))
    action = action if isinstance(action, str) else "store"
    if action in ("help", "version", "store_const", "append_const"):
        return None
    positional = not strings[0].startswith("-")
    longs = [s for s in strings if s.startswith("--")]
    if not positional and not longs:
        notes.append(f"{strings[0]}: only short option names; the flags contract cannot pass it")
        return None
    dest_node = _literal(kw.get("dest"))
    if positional:
        name = strings[0]
    else:
        dest = dest_node if isinstance(dest_node, str) else longs[0][2:].replace("-", "_")
        name = dest if f"--{dest}" in longs else longs[0][2:]
    p = Param(name=name, flags=[] if positional else list(strings), positional=positional)
    helptext = _literal(kw.get("help"))
    p.help = " ".join(helptext.split()) if isinstance(helptext, str) else None
    default = _literal(kw.get("default")) if "default" in kw else None
    if default is _NO_DEFAULT or not _jsonable(default):
        default = None
    nargs = _literal(kw.get("nargs"))
    required = _literal(kw.get("required"))
    if action in ("store_true", "store_false"):
        p.type, p.switch = "bool", action
        p.default = action == "store_false" if default is None else bool(default)
        return p
    if action == "count":
        p.type, p.default = "int", default if isinstance(default, int) else 0
        return p
    base = _type_name(kw.get("type"))
    choices = _literal(kw.get("choices"))
    if isinstance(choices, (list, tuple)) and choices and all(_jsonable(c) for c in choices):
        p.choices = list(choices)
    if action in ("append", "extend") or nargs in ("*", "+") or (isinstance(nargs, int) and nargs > 1):
        p.type, p.items = "list", base
        if not positional:
            notes.append(f"{name}: a list option; the flags contract passes it as one JSON word")
    else:
        p.type = base
    p.default = list(default) if isinstance(default, tuple) else default
    if positional:
        p.required = nargs not in ("?", "*") and "default" not in kw
    else:
        p.required = required is True
    return p


def _parser_description(tree: ast.AST) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == (
            "ArgumentParser"
        ):
            for k in node.keywords:
                if k.arg == "description":
                    value = _literal(k.value)
                    if isinstance(value, str):
                        return _first_paragraph(value)
    return None


def parse_script_source(text: str, name: str = "script.py") -> ScriptInfo:
    """What the source of a script says about its parameters (nothing is run)."""
    info = ScriptInfo(name=name, path=Path(name))
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        info.notes.append(f"cannot parse the script: {type(exc).__name__}")
        return info
    doc = ast.get_docstring(tree)
    info.description = _parser_description(tree) or _first_paragraph(doc)
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add_argument"
    ]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    if calls:
        params: list[Param] = []
        seen: set[str] = set()
        for call in calls:
            p = _param_from_call(call, info.notes)
            if p is not None and p.name not in seen:
                seen.add(p.name)
                params.append(p)
        info.params, info.source = params, "argparse"
        info.extra_params = "parse_known_args" in text
        return info
    words = (doc or "") + "\n" + text
    if all(w in words for w in _ARGV4_NAMES):
        info.contract, info.source = "argv4", "argv4"
        info.params = [
            Param("dataFileName", "str", None, help="the data file's name, inside dataPath", required=True),
            Param("dataPath", "str", "data/", help="spool-relative folder of the data file"),
            Param(
                "writePath", "str", None, help="spool-relative output folder (default: the job's outputs/)"
            ),
            Param("execution", "object", {}, help="options for the script, passed as JSON"),
        ]
        return info
    if "sys.stdin" in text:
        info.contract = "json"
    return info


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


# -- typed parameters ----------------------------------------------------------------------------

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
