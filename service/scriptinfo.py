"""The records of what is known of a script's parameters (`Param`, `ScriptInfo`), shared by every reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Param", "ScriptInfo", "PARAM_TYPES"]

PARAM_TYPES = ("str", "int", "float", "bool", "object", "list", "any")


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
