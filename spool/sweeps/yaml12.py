"""YAML read with the YAML 1.2 core schema, as sweep files are written today.

PyYAML implements YAML 1.1, whose plain scalars surprise: `1e-4` is a string (1.1 wants
`1.0e-4`), `yes`/`no`/`on`/`off` are booleans, `010` is eight, `1:30` is ninety and
`2024-01-02` a date (which no JSON job can hold). The 1.2 core schema reads `1e-4` and `.5` as
floats, only `true`/`false` as booleans, `null`/`~`/empty as null, `0o17`/`0x1f` as octal
and hex, decimal integers as written, and everything else as a string. Merge keys (`<<`) are
kept, as anchors in sweep files use them. Safe: no Python objects are ever built.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml12"]


class _Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's implicit types instead of YAML 1.1's."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's own class attribute


_RESOLVERS = (
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    ("merge", r"^(?:<<)$", ["<"]),
)
for _tag, _pattern, _first in _RESOLVERS:
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), _first)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    """Decimal as written (`010` is ten), `0o` octal, `0x` hex: the 1.2 core forms."""
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def load_yaml12(text: str) -> Any:
    """Parse YAML text with the 1.2 core schema; raises `yaml.YAMLError` as PyYAML does."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
