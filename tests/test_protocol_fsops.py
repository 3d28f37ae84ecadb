"""Every rename and removal of a job folder goes through `FsOps`, so faults reach all of them.

`archive_previous_attempt` (a retried job's last attempt into `attempts/<n>/`) and the tidying of
a claim kit after a lost claim used to call `os.rename`, `mkdir` and `rmtree` directly; these
tests inject faults there through `FsOps` subclasses that wrap the real calls.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from spool.layout import Entry
from spool.protocol import FsOps, archive_previous_attempt, claim, drop_empty_claim, publish_json
from spool.states import State


class Recording(FsOps):
    """The real calls, each one noted."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def rename(self, src: Path, dst: Path) -> None:
        self.calls.append(("rename", src.name))
        super().rename(src, dst)

    def mkdir(self, path: Path) -> None:
        self.calls.append(("mkdir", path.name))
        super().mkdir(path)

    def rmdir(self, path: Path) -> None:
        self.calls.append(("rmdir", path.name))
        super().rmdir(path)

    def unlink(self, path: Path) -> None:
        self.calls.append(("unlink", path.name))
        super().unlink(path)


def pending_entry(sp, job_id: str) -> Entry:
    entry = sp.layout.find(job_id)
    assert entry is not None and entry.state is State.PENDING
    return entry


def claimed_with_leftovers(sp) -> tuple[str, Path]:
    job_id = sp.submit("s.py", {"n": 1})
    folder = claim(sp.layout, pending_entry(sp, job_id), "r1.0001")
    assert folder is not None
    publish_json(folder / "claim.json", {"token": "r1.0001", "runner": "r1", "attempt": 1})
    for name in ("stdout.log", "stderr.log", "metrics.jsonl"):
        (folder / name).write_text(name)
    (folder / "outputs").mkdir()
    (folder / "outputs" / "model.bin").write_bytes(b"weights")
    return job_id, folder


def test_archive_makes_every_call_through_fsops(spool_root):
    _, folder = claimed_with_leftovers(spool_root)
    fs = Recording()
    assert archive_previous_attempt(folder, fs=fs) == 1
    assert ("mkdir", "attempts") in fs.calls and ("mkdir", "1") in fs.calls
    moved = {name for op, name in fs.calls if op == "rename"}
    assert moved == {"claim.json", "stdout.log", "stderr.log", "metrics.jsonl", "outputs"}
    assert (folder / "attempts" / "1" / "outputs" / "model.bin").read_bytes() == b"weights"


def test_an_archive_that_fails_halfway_loses_nothing(spool_root):
    """EIO on the third rename: the call fails, and every file is still in one of two places."""
    _, folder = claimed_with_leftovers(spool_root)
    raw = (folder / "job.json").read_bytes()

    class EIOOnThird(FsOps):
        renames = 0

        def rename(self, src: Path, dst: Path) -> None:
            self.renames += 1
            if self.renames == 3:
                raise OSError(errno.EIO, "Input/output error")
            super().rename(src, dst)

    with pytest.raises(OSError):
        archive_previous_attempt(folder, fs=EIOOnThird())
    here = set(os.listdir(folder)) | set(os.listdir(folder / "attempts" / "1"))
    assert {"claim.json", "stdout.log", "stderr.log", "metrics.jsonl", "outputs"} <= here
    assert (folder / "job.json").read_bytes() == raw
    assert len(os.listdir(folder / "attempts" / "1")) == 2  # two moved before the fault


def test_a_file_where_attempts_should_be_is_an_error_not_a_loss(spool_root):
    _, folder = claimed_with_leftovers(spool_root)
    (folder / "attempts").write_text("not a folder")
    with pytest.raises(FileExistsError):
        archive_previous_attempt(folder, fs=Recording())
    assert (folder / "stdout.log").read_text() == "stdout.log"


def test_a_lost_claims_kit_is_removed_through_fsops_when_it_cannot_go_back(spool_root):
    """The kit cannot be renamed back (EIO): it is emptied and removed, call by call, via FsOps."""
    job_id = spool_root.submit("s.py", {"n": 1})
    entry = pending_entry(spool_root, job_id)
    entry.path.unlink()  # another runner took it a moment ago
    kit = spool_root.layout.runners / ".kit-r1.abc"
    (kit / "outputs").mkdir(parents=True)
    for name in ("stdout.log", "stderr.log", "metrics.jsonl"):
        (kit / name).write_bytes(b"")

    class NoWayBack(Recording):
        def rename(self, src: Path, dst: Path) -> None:
            if dst == kit:
                self.calls.append(("rename refused", src.name))
                raise OSError(errno.EIO, "Input/output error")
            super().rename(src, dst)

    fs = NoWayBack()
    assert claim(spool_root.layout, entry, "r1.0001", kit=kit, fs=fs) is None
    assert os.listdir(spool_root.layout.state_dir(State.CLAIMED)) == []
    assert not kit.exists()
    removed = {name for op, name in fs.calls if op in ("unlink", "rmdir")}
    assert {"stdout.log", "stderr.log", "metrics.jsonl", "outputs", f"{job_id}@r1.0001"} <= removed


def test_drop_empty_claim_removes_only_an_empty_folder(spool_root):
    claimed = spool_root.layout.state_dir(State.CLAIMED)
    empty, full = claimed / "a@r1.1", claimed / "b@r1.2"
    empty.mkdir()
    full.mkdir()
    (full / "job.json").write_text("{}")
    fs = Recording()
    drop_empty_claim(empty, fs)
    drop_empty_claim(full, fs)
    assert not empty.exists() and (full / "job.json").exists()
    assert fs.calls == [("rmdir", "a@r1.1")]  # a folder holding a job file is not even tried
