"""Writing pages: the jinja2 environment, atomic file writes, the static files, and small page helpers.

Every template is rendered with autoescape on and `StrictUndefined`; the page modules (`pages`,
`jobpages`, `tables`) share one `Renderer` per build.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pandas as pd

from report.data import fmt, fmt_duration
from spool.api import Spool

__all__ = ["PKG", "TAIL_LINES", "Renderer", "write_atomic", "copy_static", "log_tail", "href", "records"]

PKG = Path(__file__).resolve().parent
TAIL_LINES = 50


class Renderer:
    """One build's page writer: the spool, the output folder, the template environment and the build time."""

    def __init__(self, spool: Spool, out: Path):
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        self.spool = spool
        self.out = out
        self.env = Environment(
            loader=FileSystemLoader(str(PKG / "templates")),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["fmt"] = fmt
        self.env.filters["duration"] = fmt_duration
        self.env.filters["q"] = lambda s: quote(str(s))
        self.built_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    def render(self, template: str, path: Path, **ctx: Any) -> None:
        html = self.env.get_template(template).render(
            built_at=self.built_at, spool_root=str(self.spool.root), **ctx
        )
        write_atomic(path, html)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def copy_static(out: Path) -> None:
    """The package's `static/` files into `out/static/` (a file already equal is left alone)."""
    dst = out / "static"
    dst.mkdir(parents=True, exist_ok=True)
    for src in (PKG / "static").iterdir():
        if not src.is_file():
            continue
        target = dst / src.name
        data = src.read_bytes()
        try:
            if target.read_bytes() == data:
                continue
        except OSError:
            pass
        shutil.copyfile(src, target)


def log_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = 24_000) -> str | None:
    """The last `lines` lines of a log (None if there is no such file)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace")
    parts = text.splitlines()
    if size > max_bytes and parts:
        parts = parts[1:]  # the first line is cut
    return "\n".join(parts[-lines:])


def href(target: Path, start: Path) -> str:
    return quote(os.path.relpath(target, start).replace(os.sep, "/"))


def records(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """The rows of `df` as dicts of those of `columns` it has (empty dicts when it has none)."""
    cols = [c for c in columns if c in df.columns]
    if not cols:
        return [{} for _ in range(len(df))]
    return cast(list[dict[str, Any]], df[cols].to_dict("records"))
