"""Reads a script's parameters from its source with `ast` (argparse, the argv4 layout), never running it.

Every `<something>.add_argument(...)` call whose option strings are literals gives one
parameter with its type (`int`, `float`, `str`, `bool`; other callables read as `any`),
default, choices, help and whether it is required. A script without argparse whose docstring
or source names `dataFileName`, `dataPath` and `writePath` gets the original workers' four
`argv4` parameters; otherwise the parameters are unknown, and a script that reads `sys.stdin`
is taken to use the `json` contract.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from service.scriptinfo import Param, ScriptInfo

__all__ = ["parse_script_source"]

_ARGV4_NAMES = ("dataFileName", "dataPath", "writePath")
_NAMED_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool"}
_NO_DEFAULT = object()


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
