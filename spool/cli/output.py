"""Printing for the CLI: JSON for machines, aligned tables for people."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["print_json", "print_table", "compact", "parse_value", "parse_assignments"]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def compact(value: Any, width: int = 60) -> str:
    """A one-line rendering of a value, cut to `width`."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Columns sized to their content; the last column takes what the terminal has left."""
    cells = [[compact(c, 200) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    term = shutil.get_terminal_size((160, 24)).columns
    used = sum(widths[:-1]) + 2 * (len(widths) - 1)
    widths[-1] = max(10, min(widths[-1], term - used)) if sys.stdout.isatty() else widths[-1]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        row = row[:-1] + [compact(row[-1], widths[-1])] if row else row
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    sys.stdout.write("\n".join(out) + "\n")


def parse_value(text: str) -> Any:
    """JSON where it parses (numbers, true, null, lists...), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignments(items: Sequence[str] | None, what: str, *, raw: bool = False) -> dict[str, Any]:
    """`key=value` pairs from repeated flags."""
    from spool.errors import UsageError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} expects key=value, got {item!r}")
        out[key] = value if raw else parse_value(value)
    return out
