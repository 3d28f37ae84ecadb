"""A job's attempts read back from its folder (spool.history): what `spool show`, results and
the report's timeline show. Real folders, laid out as runners leave them."""

from __future__ import annotations

import json
from pathlib import Path

from spool.history import attempt_history, count_since_retry, hosts_spanned, summary, tree_bytes


def _attempt(folder: Path, n: int | None, state: str, host: str, kind: str | None = None) -> None:
    where = folder if n is None else folder / "attempts" / str(n)
    where.mkdir(parents=True, exist_ok=True)
    rec = {
        "attempt": n if n is not None else 3,
        "state": state,
        "host": host,
        "runner": f"{host}-1",
        "started": "2026-12-01T10:00:00+00:00",
        "ended": "2026-12-01T10:05:00+00:00",
        "duration": 300.0,
        "error": {"kind": kind, "message": "m"} if kind else None,
        "checkpoint_bytes": 4096,
    }
    (where / "result.json").write_text(json.dumps(rec))


def test_history_lists_archived_attempts_then_the_current_record(tmp_path: Path) -> None:
    _attempt(tmp_path, 1, "interrupted", "imac", "interrupted")
    _attempt(tmp_path, 2, "interrupted", "desktop", "interrupted")
    _attempt(tmp_path, None, "done", "macbook-2015")
    (tmp_path / "attempts" / "junk").mkdir()  # not an attempt number: ignored
    pieces = attempt_history(tmp_path)
    assert [(p["attempt"], p["state"], p["host"], p["kind"]) for p in pieces] == [
        (1, "interrupted", "imac", "interrupted"),
        (2, "interrupted", "desktop", "interrupted"),
        (3, "done", "macbook-2015", None),
    ]
    assert pieces[0]["checkpoint_bytes"] == 4096
    assert hosts_spanned(pieces) == ["imac", "desktop", "macbook-2015"]


def test_an_unreadable_attempt_record_is_left_out(tmp_path: Path) -> None:
    _attempt(tmp_path, 1, "failed", "imac", "exit")
    (tmp_path / "attempts" / "2").mkdir()
    (tmp_path / "attempts" / "2" / "result.json").write_text("{torn")
    assert [p["attempt"] for p in attempt_history(tmp_path)] == [1]
    assert attempt_history(tmp_path / "nothing-here") == []


def test_counts_start_again_after_a_retry_by_hand(tmp_path: Path) -> None:
    for n, state in enumerate(["interrupted", "failed", "interrupted", "interrupted"], start=1):
        _attempt(tmp_path, n, state, "imac", state)
    assert count_since_retry(tmp_path, "interrupted") == 3
    assert count_since_retry(tmp_path, "failed") == 1
    (tmp_path / "retry.json").write_text(json.dumps({"base": 2}))
    assert count_since_retry(tmp_path, "interrupted") == 2
    assert count_since_retry(tmp_path, "failed") == 0


def test_summary_of_a_record_missing_fields() -> None:
    assert summary({"state": "failed", "error": "not an object"}, 4) == {
        "attempt": 4,
        "state": "failed",
        "host": None,
        "runner": None,
        "started": None,
        "ended": None,
        "duration": None,
        "exit_code": None,
        "kind": None,
    }


def test_tree_bytes_counts_nested_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"12345")
    (tmp_path / "y").write_bytes(b"123")
    assert tree_bytes(tmp_path) == 8
    assert tree_bytes(tmp_path / "missing") == 0
