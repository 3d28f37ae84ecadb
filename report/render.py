"""Writing pages: the jinja2 environment, atomic file writes, the static files, and small page helpers.

Every template is rendered with autoescape on and `StrictUndefined`; the page modules (`pages`,
`jobpages`, `tables`) share one `Renderer` per build.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pandas as pd

from report.data import fmt, fmt_duration
from spool.api import Spool
from spool.protocol import publish_bytes, publish_text

__all__ = ["PKG", "TAIL_LINES", "Renderer", "copy_static", "log_tail", "href", "records"]

PKG = Path(__file__).resolve().parent
TAIL_LINES = 50


_ENV: list[Any] = []


def _environment() -> Any:
    """The template environment, made once per process: compiling the templates costs more than
    a rebuild after one new job (`spool report --watch` builds many times in one process)."""
    if not _ENV:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        env = Environment(
            loader=FileSystemLoader(str(PKG / "templates")),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        env.filters["fmt"] = fmt
        env.filters["duration"] = fmt_duration
        env.filters["q"] = lambda s: quote(str(s))
        _ENV.append(env)
    return _ENV[0]


class Renderer:
    """One build's page writer: the spool, the output folder, the template environment and the build time."""

    def __init__(self, spool: Spool, out: Path, built_at: str | None = None):
        self.spool = spool
        self.out = out
        self.env = _environment()
        self.built_at = built_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    def render(self, template: str, path: Path, **ctx: Any) -> None:
        ctx.setdefault("live", None)  # a page is live only when its module says so (see `live`)
        html = self.env.get_template(template).render(
            built_at=self.built_at, spool_root=str(self.spool.root), **ctx
        )
        # the spool's one atomic write; no fsync: a page is rebuilt from the spool, and the
        # manifest (written last, with fsync) only vouches for pages whose keys still match
        publish_text(path, html, fsync=False)


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
        publish_bytes(target, data, fsync=False)


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
