"""A W&B sweep's `command` read into what a job holds: the script, fixed `args`, a contract.

The runner always starts the script with its own Python, so only words that name an
interpreter (`${env}`, `${interpreter}`, `env`, `python3`, ...) may come before the script.
The script is `${program}` (the `program` key) or, in files written without `program`, the
first word after the interpreter (`python train.py ${args}`). Where the parameters go is said
by one macro: `${args}` (flags), `${args_no_hyphens}` (Hydra-style `key=value` words),
`${args_json}` / `${args_json_file}` (JSON). Other words are kept, in order, as fixed `args`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from spool.errors import SweepError

__all__ = ["Command", "parse_command"]

_PARAM_MACROS = {
    "${args}": "flags",
    "${args_no_hyphens}": "hydra",
    "${args_json}": "json",
    "${args_json_file}": "json",
}
_INTERPRETER_RE = re.compile(r"^(env|python[0-9.]*(\.exe)?)$")


@dataclass(frozen=True)
class Command:
    """What a `command` list says: the script it names (None: `${program}`), args, contract."""

    script: str | None
    args: list[str]
    contract: str


def _fail(message: str) -> SweepError:
    return SweepError(message, field="command")


def _word(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise _fail(f"words must be strings, got {raw!r}")
    return str(raw)


def _is_interpreter(word: str) -> bool:
    return word in ("${env}", "${interpreter}") or bool(_INTERPRETER_RE.match(word.rsplit("/", 1)[-1]))


def _script_position(words: list[str]) -> tuple[int, str | None]:
    """Where the script is in `words` and its name (None for `${program}`)."""
    for i, word in enumerate(words):
        if word == "${program}":
            if "${program}" in words[i + 1 :]:
                raise _fail("${program} appears twice")
            return i, None
        if _is_interpreter(word):
            continue
        if word in _PARAM_MACROS:
            raise _fail(f"{word} must come after ${{program}} (or the script's name)")
        if "${" in word:
            raise _fail(f"unsupported macro in {word!r}")
        if word.startswith("-"):
            raise _fail(
                f"{word!r} before the script is not supported: the runner starts the script "
                "with its own Python"
            )
        if "${program}" in words[i + 1 :]:
            raise _fail(
                f"{word!r} before ${{program}} is not supported: the runner starts the script "
                "with its own Python"
            )
        return i, word
    raise _fail("has no ${program} and names no script")


def parse_command(command: Any) -> Command:
    """Read a `command` list (None: W&B's default, `${env} ${interpreter} ${program} ${args}`)."""
    if command is None:
        return Command(None, [], "flags")
    if not isinstance(command, list) or not command:
        raise _fail("must be a list of words")
    words = [_word(raw) for raw in command]
    at, script = _script_position(words)
    args: list[str] = []
    contracts: list[str] = []
    for word in words[at + 1 :]:
        if word in ("${env}", "${interpreter}"):
            raise _fail(f"{word} must come before the script")
        if word in _PARAM_MACROS:
            contracts.append(_PARAM_MACROS[word])
        elif "${" in word:
            raise _fail(f"unsupported macro in {word!r}")
        else:
            args.append(word)
    if len(contracts) > 1:
        raise _fail("passes the parameters more than once")
    # No params macro: the script does not take them as flags; JSON on stdin is harmless.
    return Command(script, args, contracts[0] if contracts else "json")
