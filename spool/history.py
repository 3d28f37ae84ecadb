"""A job's attempts, read from its folder: what each one was, where it ran, how it ended.

Each attempt leaves a `result.json`; a new claim moves the last one's files to
`attempts/<n>/` (the checkpoint folder stays where it is). So the history of a job is
`attempts/<n>/result.json` in order, then the folder's own `result.json` when it is not the
same attempt. Counts start again after a `spool retry` (its `retry.json` says from which
attempt). Readers only: nothing here writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spool.layout import CHECKPOINT_DIR, RESULT_FILE
from spool.untrusted import read_json

__all__ = [
    "CHECKPOINT_DIR",
    "INTERRUPTED",
    "attempt_history",
    "count_since_retry",
    "hosts_spanned",
    "summary",
    "tree_bytes",
]

#: the `state` (and `error.kind`) of an attempt that ended because its machine or runner went away
INTERRUPTED = "interrupted"

_SUMMARY = ("attempt", "state", "host", "runner", "started", "ended", "duration", "exit_code")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        rec = read_json(path)
    except (OSError, ValueError, RecursionError):
        return None
    return rec if isinstance(rec, dict) else None


def summary(rec: dict[str, Any], attempt: int | None = None) -> dict[str, Any]:
    """The part of one attempt's record a history shows (a line of `spool show`, a timeline piece)."""
    out = {k: rec.get(k) for k in _SUMMARY}
    if attempt is not None and not isinstance(out["attempt"], int):
        out["attempt"] = attempt
    err = rec.get("error")
    out["kind"] = err.get("kind") if isinstance(err, dict) else None
    if isinstance(rec.get("checkpoint_bytes"), int):
        out["checkpoint_bytes"] = rec["checkpoint_bytes"]
    return out


def attempt_history(folder: Path) -> list[dict[str, Any]]:
    """Every attempt of the job in `folder` that left a record, oldest first (see `summary`)."""
    pieces: list[dict[str, Any]] = []
    attempts = folder / "attempts"
    try:
        numbers = sorted(int(p.name) for p in attempts.iterdir() if p.name.isdigit())
    except OSError:
        numbers = []
    for n in numbers:
        rec = _load(attempts / str(n) / RESULT_FILE)
        if rec is not None:
            pieces.append(summary(rec, n))
    last = _load(folder / RESULT_FILE)
    if last is not None:
        piece = summary(last, (numbers[-1] if numbers else 0) + 1)
        if not pieces or piece["attempt"] != pieces[-1]["attempt"]:
            pieces.append(piece)
    return pieces


def _retry_base(folder: Path) -> int:
    rec = _load(folder / "retry.json")
    try:
        return int((rec or {}).get("base", 0))
    except (TypeError, ValueError):
        return 0


def count_since_retry(folder: Path, state: str) -> int:
    """Attempts of the job in `folder` that ended in `state` since the user last retried it by
    hand (a runner asks while its own attempt has no record yet, so it counts the earlier ones)."""
    base = _retry_base(folder)
    return sum(
        1
        for p in attempt_history(folder)
        if p["state"] == state and isinstance(p["attempt"], int) and p["attempt"] > base
    )


def hosts_spanned(pieces: list[dict[str, Any]]) -> list[str]:
    """The machines a run's attempts ran on, in the order first seen."""
    return list(dict.fromkeys(str(p["host"]) for p in pieces if p.get("host")))


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 if it is missing); unreadable entries are skipped."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(stack.pop().iterdir())
        except OSError:
            continue
        for p in entries:
            try:
                st = p.lstat()
            except OSError:
                continue
            if p.is_dir() and not p.is_symlink():
                stack.append(p)
            else:
                total += st.st_size
    return total
