"""Notes on jobs (`spool note ID "text"`): one file per note in `notes/<id>/`, never rewritten.

Notes live beside the state folders, not inside a job's folder, so a note can be added to a job
in any state (a pending job is a single file) and survives retries (which archive an attempt's
files) and moves. Each note is its own file published by an exclusive create, so two people
noting one job at once both keep their note. `spool gc` moves a job's notes with the job.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spool.errors import NotFound, UsageError
from spool.ids import is_valid_id
from spool.layout import Layout, is_ignored_name
from spool.protocol import publish_new
from spool.untrusted import read_file

__all__ = ["NOTES_DIR", "MAX_NOTE", "add_note", "read_notes", "notes_dir"]

NOTES_DIR = "notes"
MAX_NOTE = 64 * 1024  # bytes of one note


def notes_dir(layout: Layout, job_id: str) -> Path:
    return layout.root / NOTES_DIR / job_id


def add_note(layout: Layout, job_id: str, text: str) -> dict[str, Any]:
    """Add one note to a job that exists (in any state); returns `{"at", "text", "file"}`."""
    if not is_valid_id(job_id) or layout.find(job_id) is None:
        raise NotFound(f"no job {job_id!r} in {layout.root}")
    text = text.strip()
    if not text:
        raise UsageError("a note needs some text")
    data = text.encode("utf-8", "replace") + b"\n"
    if len(data) > MAX_NOTE:
        raise UsageError(f"a note is at most {MAX_NOTE} bytes; this one is {len(data)}")
    folder = notes_dir(layout, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    while True:
        name = f"{now:%Y%m%dT%H%M%S}-{now.microsecond:06d}-{os.urandom(2).hex()}.txt"
        if publish_new(folder / name, data):
            break
    return {"at": now.isoformat(), "text": text, "file": str(folder / name)}


def read_notes(root: Path, job_id: str) -> list[dict[str, Any]]:
    """A job's notes, oldest first: `{"at": ISO time, "text": ...}`; [] when it has none."""
    folder = root / NOTES_DIR / job_id
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".txt") and not is_ignored_name(n))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        try:
            text = read_file(folder / name)[:MAX_NOTE].decode("utf-8", "replace").rstrip("\n")
        except OSError:
            continue
        try:
            at = datetime.strptime(name[:22], "%Y%m%dT%H%M%S-%f").replace(tzinfo=timezone.utc).isoformat()
        except ValueError:
            at = None
        out.append({"at": at, "text": text})
    return out
