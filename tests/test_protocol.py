"""The spool protocol on a real folder: publishing, claiming, moving, taking over, archiving.

Faults are injected through `FsOps` subclasses that wrap the real calls (never replace them),
and crashes are real child processes killed with SIGKILL.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from spool import jobs
from spool.errors import StorageError
from spool.layout import Entry, Layout
from spool.protocol import (
    BLANKS,
    KEEP_ON_ARCHIVE,
    FsOps,
    archive_previous_attempt,
    blank_for,
    claim,
    drop_blanks,
    move,
    publish_bytes,
    publish_json,
    read_claim,
    take_over,
)
from spool.states import TRANSITIONS, State, can_move


class RenameThenEIO(FsOps):
    """The rename happens, then the call reports an I/O error (a lost NFS reply)."""

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)
        raise OSError(errno.EIO, "Input/output error")


class EIOBeforeRename(FsOps):
    """The rename fails without happening."""

    def rename(self, src: Path, dst: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")


class DiskFull(FsOps):
    def rename(self, src: Path, dst: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def pending_entry(sp, job_id: str) -> Entry:
    entry = sp.layout.find(job_id)
    assert entry is not None and entry.state is State.PENDING
    return entry


def names(folder: Path) -> set[str]:
    return set(os.listdir(folder))


def claimed_job(sp, token: str = "r1.0001", attempt: int = 1) -> tuple[str, Path]:
    """Submit a job and claim it as a runner would (claim.json written)."""
    job_id = sp.submit("s.py", {"n": 1})
    folder = claim(sp.layout, pending_entry(sp, job_id), token)
    assert folder is not None
    publish_json(folder / "claim.json", {"token": token, "runner": token.split(".")[0], "attempt": attempt})
    return job_id, folder


def requeued_job(sp) -> tuple[str, Entry]:
    """A job that failed once and was retried: `pending/<id>/` holding the old attempt."""
    job_id = sp.submit("s.py", {"n": 2})
    sp.cancel(job_id)
    assert sp.retry(job_id) == [job_id]
    entry = pending_entry(sp, job_id)
    assert entry.is_folder
    return job_id, entry


# -- publish ------------------------------------------------------------------------------------


def test_publish_bytes_writes_exactly_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.json"
    publish_bytes(target, b'{"a": 1}\n')
    assert target.read_bytes() == b'{"a": 1}\n'
    publish_bytes(target, b"second", fsync=False)
    assert target.read_bytes() == b"second"
    assert names(tmp_path) == {"x.json"}


def test_publish_json_round_trips(tmp_path):
    publish_json(tmp_path / "r.json", {"a": [1, 2], "b": None})
    assert json.loads((tmp_path / "r.json").read_bytes()) == {"a": [1, 2], "b": None}
    assert names(tmp_path) == {"r.json"}


def test_publish_failure_leaves_nothing_behind(tmp_path):
    with pytest.raises(StorageError, match="disk is full"):
        publish_bytes(tmp_path / "x.json", b"data", fs=DiskFull())
    assert names(tmp_path) == set()


def test_publish_whose_rename_reply_is_lost_still_counts(tmp_path):
    publish_bytes(tmp_path / "x.json", b"data", fs=RenameThenEIO())
    assert (tmp_path / "x.json").read_bytes() == b"data"
    assert names(tmp_path) == {"x.json"}


def test_publish_into_a_blank_uses_it_and_leaves_nothing_else(tmp_path):
    blank = blank_for(tmp_path / "claim.json")
    blank.touch()
    ino = blank.stat().st_ino
    publish_json(tmp_path / "claim.json", {"token": "r1.aaaa"}, blank=True)
    assert json.loads((tmp_path / "claim.json").read_bytes()) == {"token": "r1.aaaa"}
    assert (tmp_path / "claim.json").stat().st_ino == ino  # the blank itself, renamed: no create
    assert names(tmp_path) == {"claim.json"}
    publish_json(tmp_path / "claim.json", {"token": "r1.bbbb"}, blank=True)  # none left: a temp file
    assert json.loads((tmp_path / "claim.json").read_bytes()) == {"token": "r1.bbbb"}
    assert names(tmp_path) == {"claim.json"}


def test_publish_into_a_blank_with_ambiguous_errors(tmp_path):
    target = tmp_path / "result.json"
    blank_for(target).touch()
    with pytest.raises(StorageError):
        publish_bytes(target, b"one", fs=EIOBeforeRename(), blank=True)
    assert names(tmp_path) == set()  # not published, and the used blank is gone (not half-written)
    blank_for(target).touch()
    publish_bytes(target, b"two", fs=RenameThenEIO(), blank=True)
    assert target.read_bytes() == b"two" and names(tmp_path) == {"result.json"}


def test_drop_blanks_removes_only_blanks(tmp_path):
    for name in (*BLANKS, "result.json"):
        (tmp_path / name).touch()
    drop_blanks(tmp_path)
    drop_blanks(tmp_path)  # none left: quietly nothing
    assert names(tmp_path) == {"result.json"}


def test_readers_never_see_partial_content(tmp_path):
    target = tmp_path / "job.json"
    versions = [bytes([c]) * (256 * 1024) for c in b"ab"]
    publish_bytes(target, versions[0])
    stop = threading.Event()
    seen: list[int] = []
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            data = target.read_bytes()  # the name always exists: rename replaces it whole
            (seen if data in versions else bad).append(len(data))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(150):
            publish_bytes(target, versions[i % 2], fsync=False)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not bad, f"readers saw partial files of sizes {sorted(set(bad))[:5]}"
    assert len(seen) > 10
    assert names(tmp_path) == {"job.json"}


CRASH_BEFORE_RENAME = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from spool.protocol import FsOps, publish_bytes

    class DieBeforeRename(FsOps):
        def rename(self, src, dst):
            os.kill(os.getpid(), signal.SIGKILL)

    publish_bytes(Path(sys.argv[1]), sys.argv[2].encode(), fs=DieBeforeRename())
    """
)


def test_crash_between_temp_write_and_rename_leaves_no_half_job(spool_root):
    job_id = "20261125T034000-123456-ab12"
    raw = json.dumps({"script": "s.py", "params": {"lr": 0.1}})
    target = spool_root.layout.state_dir(State.PENDING) / f"{job_id}.json"
    proc = subprocess.run([sys.executable, "-c", CRASH_BEFORE_RENAME, str(target), raw], timeout=30)
    assert proc.returncode == -signal.SIGKILL
    left = os.listdir(target.parent)
    assert len(left) == 1 and left[0].startswith(".") and left[0].endswith(".tmp")
    assert (target.parent / left[0]).read_text() == raw  # it died after writing, before renaming
    assert spool_root.status() == {"pending": 0, "claimed": 0, "done": 0, "failed": 0, "total": 0}
    assert spool_root.jobs() == []
    assert spool_root.layout.find(job_id) is None
    assert list(spool_root.layout.entries(State.PENDING)) == []


CRASH_IN_CLAIM = textwrap.dedent(
    """
    import os, signal, sys
    from spool.api import Spool
    from spool.protocol import FsOps, claim

    class DieBeforeRename(FsOps):
        def rename(self, src, dst):
            os.kill(os.getpid(), signal.SIGKILL)

    sp = Spool(sys.argv[1])
    claim(sp.layout, sp.layout.find(sys.argv[2]), "crashy.0001", fs=DieBeforeRename())
    """
)


def test_crash_in_claim_between_mkdir_and_rename_leaves_the_job_pending_once(spool_root):
    job_id = spool_root.submit("s.py", {"x": 1})
    raw = (spool_root / "pending" / f"{job_id}.json").read_bytes()
    proc = subprocess.run([sys.executable, "-c", CRASH_IN_CLAIM, str(spool_root), job_id], timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert names(spool_root / "claimed") == {f"{job_id}@crashy.0001"}  # the empty folder it made
    assert (spool_root / "pending" / f"{job_id}.json").read_bytes() == raw
    assert spool_root.status()["pending"] == 1
    assert spool_root.status()["total"] == 1
    assert [(v.id, v.state) for v in spool_root.jobs()] == [(job_id, State.PENDING)]
    assert spool_root.get(job_id).state is State.PENDING
    # and another runner can still claim it
    assert claim(spool_root.layout, pending_entry(spool_root, job_id), "r2.0002") is not None


# -- claim --------------------------------------------------------------------------------------


def test_claim_moves_the_users_bytes_and_second_claimer_gets_none(spool_root):
    job_id = spool_root.submit("s.py", {"lr": 0.5})
    raw = (spool_root / "pending" / f"{job_id}.json").read_bytes()
    entry = pending_entry(spool_root, job_id)
    first = claim(spool_root.layout, entry, "r1.aaaa")
    assert first == spool_root / "claimed" / f"{job_id}@r1.aaaa"
    assert (first / "job.json").read_bytes() == raw
    assert names(spool_root / "pending") == set()
    assert claim(spool_root.layout, entry, "r2.bbbb") is None
    assert names(spool_root / "claimed") == {f"{job_id}@r1.aaaa"}  # the loser tidied its folder


def test_claim_of_a_requeued_folder(spool_root):
    job_id, entry = requeued_job(spool_root)
    before = names(entry.path)
    assert {"job.json", "result.json", "retry.json"} <= before
    folder = claim(spool_root.layout, entry, "r1.cccc")
    assert folder == spool_root / "claimed" / f"{job_id}@r1.cccc"
    assert names(folder) == before
    assert names(spool_root / "pending") == set()
    assert claim(spool_root.layout, entry, "r2.dddd") is None
    assert names(spool_root / "claimed") == {f"{job_id}@r1.cccc"}


def test_claim_with_dest_id(spool_root):
    junk = spool_root / "pending" / "not a job!.json"
    junk.write_bytes(b"{oops")
    entry = spool_root.layout.entry_from_name(State.PENDING, junk.name, False)
    assert entry is not None and not entry.is_job_name
    folder = claim(spool_root.layout, entry, "r1.eeee", dest_id="invalid-1")
    assert folder == spool_root / "claimed" / "invalid-1@r1.eeee"
    assert (folder / "job.json").read_bytes() == b"{oops"


RACE_CLAIMER = textwrap.dedent(
    """
    import json, os, sys, time
    from spool.api import Spool
    from spool.protocol import claim
    from spool.states import State

    sp = Spool(sys.argv[1])
    entries = sorted(sp.layout.entries(State.PENDING), key=lambda e: e.id)
    go = sp.root / "go"
    while not go.exists():
        time.sleep(0.001)
    won = []
    for e in entries:
        if claim(sp.layout, e, sys.argv[2]) is not None:
            won.append(e.id)
    print(json.dumps(won))
    """
)


def test_many_processes_racing_claim_each_job_exactly_once(spool_root):
    ids = {spool_root.submit("s.py", {"i": i}) for i in range(120)}
    requeued = {requeued_job(spool_root)[0] for _ in range(10)}
    ids |= requeued
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_CLAIMER, str(spool_root), f"racer{n}.{n:04d}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(5)
    ]
    time.sleep(0.5)  # let them all import and list pending/
    (spool_root / "go").touch()
    wins = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    flat = [w for won in wins for w in won]
    assert len(flat) == len(set(flat)), "a job was claimed twice"
    assert set(flat) == ids
    assert names(spool_root / "pending") == set()
    folders = names(spool_root / "claimed")
    assert len(folders) == len(ids)
    assert {f.partition("@")[0] for f in folders} == ids
    for f in folders:
        assert (spool_root / "claimed" / f / "job.json").is_file()
    assert spool_root.status()["claimed"] == len(ids)


# -- ambiguous rename errors ----------------------------------------------------------------------


def test_claim_whose_rename_happened_but_reported_eio_returns_the_folder(spool_root):
    job_id = spool_root.submit("s.py")
    raw = (spool_root / "pending" / f"{job_id}.json").read_bytes()
    folder = claim(spool_root.layout, pending_entry(spool_root, job_id), "r1.f00d", fs=RenameThenEIO())
    assert folder == spool_root / "claimed" / f"{job_id}@r1.f00d"
    assert (folder / "job.json").read_bytes() == raw
    assert names(spool_root / "pending") == set()


def test_claim_whose_rename_failed_is_storage_trouble_and_leaves_the_job_pending(spool_root):
    """An EIO with the job still in pending/ is the share failing, not a race lost (issue 18.11)."""
    job_id = spool_root.submit("s.py")
    raw = (spool_root / "pending" / f"{job_id}.json").read_bytes()
    with pytest.raises(StorageError, match="cannot write"):
        claim(spool_root.layout, pending_entry(spool_root, job_id), "r1.f00d", fs=EIOBeforeRename())
    assert (spool_root / "pending" / f"{job_id}.json").read_bytes() == raw
    assert names(spool_root / "claimed") == set()  # no empty claimed folder left
    assert spool_root.status()["pending"] == 1


def test_claim_of_requeued_folder_with_ambiguous_errors(spool_root):
    job_id, entry = requeued_job(spool_root)
    with pytest.raises(StorageError):
        claim(spool_root.layout, entry, "r1.0bad", fs=EIOBeforeRename())
    assert entry.path.is_dir() and names(spool_root / "claimed") == set()
    folder = claim(spool_root.layout, entry, "r1.0b0b", fs=RenameThenEIO())
    assert folder == spool_root / "claimed" / f"{job_id}@r1.0b0b"
    assert (folder / "job.json").is_file()


def test_claim_on_a_full_disk_raises_and_leaves_no_folder(spool_root):
    job_id = spool_root.submit("s.py")
    with pytest.raises(StorageError):
        claim(spool_root.layout, pending_entry(spool_root, job_id), "r1.full", fs=DiskFull())
    assert names(spool_root / "claimed") == set()
    assert (spool_root / "pending" / f"{job_id}.json").is_file()


def test_move_whose_rename_happened_but_reported_eio_returns_the_target(spool_root):
    job_id, folder = claimed_job(spool_root)
    target = move(spool_root.layout, folder, job_id, State.DONE, fs=RenameThenEIO())
    assert target == spool_root / "done" / job_id
    assert (target / "job.json").is_file() and not folder.exists()


def test_requeue_claimed_again_before_its_eio_is_checked_is_not_ours_any_more(spool_root):
    """The rename to pending/ happened, the reply was lost, and another runner claimed the job
    before the mover could look: the mover cannot prove the rename was its own, and need not.
    None tells it what matters: it no longer holds the job (and the job is held exactly once)."""
    job_id, folder = claimed_job(spool_root)
    publish_json(folder / "claim.json", {"token": "r1.aaaa"})
    layout = spool_root.layout

    class RequeueThenClaimedThenEIO(FsOps):
        def rename(self, src: Path, dst: Path) -> None:
            os.rename(src, dst)
            assert claim(layout, pending_entry(spool_root, job_id), "r2.bbbb") is not None
            raise OSError(errno.EIO, "Input/output error")

    assert move(layout, folder, job_id, State.PENDING, fs=RequeueThenClaimedThenEIO()) is None
    assert names(spool_root / "claimed") == {f"{job_id}@r2.bbbb"}
    assert names(spool_root / "pending") == set()


def test_move_whose_rename_failed_raises_and_keeps_the_folder(spool_root):
    job_id, folder = claimed_job(spool_root)
    with pytest.raises(StorageError):
        move(spool_root.layout, folder, job_id, State.DONE, fs=EIOBeforeRename())
    assert (folder / "job.json").is_file()
    assert names(spool_root / "done") == set()


def test_take_over_whose_rename_reported_eio_still_wins(spool_root):
    job_id, folder = claimed_job(spool_root)
    mine = take_over(spool_root.layout, folder, job_id, "r2.beef", fs=RenameThenEIO())
    assert mine == spool_root / "claimed" / f"{job_id}@r2.beef"
    assert names(spool_root / "claimed") == {mine.name}
    assert take_over(spool_root.layout, folder, job_id, "r3.cafe", fs=EIOBeforeRename()) is None


# -- move, take over -------------------------------------------------------------------------------


def test_move_finishes_a_claimed_job(spool_root):
    job_id, folder = claimed_job(spool_root)
    publish_json(folder / "result.json", {"state": "done"})
    target = move(spool_root.layout, folder, job_id, State.DONE)
    assert target == spool_root / "done" / job_id
    assert names(target) == {"job.json", "claim.json", "result.json"}
    assert names(spool_root / "claimed") == set()
    assert spool_root.get(job_id).state is State.DONE


def test_move_returns_none_when_the_folder_was_taken_first(spool_root):
    job_id, folder = claimed_job(spool_root, token="slow.0001")
    theirs = take_over(spool_root.layout, folder, job_id, "fast.0002")
    assert theirs is not None
    assert move(spool_root.layout, folder, job_id, State.DONE) is None
    assert names(spool_root / "done") == set()
    assert (theirs / "job.json").is_file()


def test_fenced_runner_is_not_told_it_moved_a_job_someone_else_finished(spool_root):
    job_id, folder = claimed_job(spool_root, token="old.0001")
    theirs = take_over(spool_root.layout, folder, job_id, "new.0002")
    publish_json(theirs / "claim.json", {"token": "new.0002", "attempt": 2})
    assert move(spool_root.layout, theirs, job_id, State.FAILED) == spool_root / "failed" / job_id
    # the old holder wakes up and tries to finish the same way: it must learn it lost
    assert move(spool_root.layout, folder, job_id, State.FAILED) is None
    assert read_claim(spool_root / "failed" / job_id)["token"] == "new.0002"


def race_take_over(layout, folder: Path, job_id: str, tokens: list[str]) -> dict[str, Path | None]:
    """Every token tries to take `folder` at the same instant (threads released by a barrier)."""
    barrier = threading.Barrier(len(tokens))
    results: dict[str, Path | None] = {}

    def contend(token: str) -> None:
        barrier.wait()
        results[token] = take_over(layout, folder, job_id, token)

    threads = [threading.Thread(target=contend, args=(tok,)) for tok in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_take_over_race_has_one_winner(spool_root):
    for trial in range(25):
        job_id, folder = claimed_job(spool_root, token=f"dead.{trial:04d}")
        results = race_take_over(spool_root.layout, folder, job_id, [f"r{n}.{trial:04d}" for n in range(3)])
        winners = {tok: p for tok, p in results.items() if p is not None}
        assert len(results) == 3 and len(winners) == 1, results
        ((tok, path),) = winners.items()
        assert path == spool_root / "claimed" / f"{job_id}@{tok}"
        mine = [n for n in names(spool_root / "claimed") if n.startswith(job_id)]
        assert mine == [path.name]
        assert (path / "job.json").is_file()
        move(spool_root.layout, path, job_id, State.DONE)


# -- transitions --------------------------------------------------------------------------------------

ALLOWED = {
    (State.PENDING, State.CLAIMED),
    (State.CLAIMED, State.DONE),
    (State.CLAIMED, State.FAILED),
    (State.CLAIMED, State.PENDING),
    (State.CLAIMED, State.CLAIMED),
    (State.FAILED, State.PENDING),
}


@pytest.mark.parametrize("src", list(State))
@pytest.mark.parametrize("dst", list(State))
def test_transition_table(src, dst):
    assert can_move(src, dst) is ((src, dst) in ALLOWED)
    assert (dst in TRANSITIONS[src]) is ((src, dst) in ALLOWED)


def test_move_refuses_forbidden_transitions_without_touching_disk(spool_root):
    job_id, folder = claimed_job(spool_root)
    done = move(spool_root.layout, folder, job_id, State.DONE)
    for dst in (State.PENDING, State.FAILED, State.CLAIMED):
        with pytest.raises(ValueError, match="no transition done"):
            move(spool_root.layout, done, job_id, dst)
    assert (done / "job.json").is_file()
    assert names(spool_root / "pending") == names(spool_root / "failed") == set()


def test_requeue_and_retry_moves(spool_root):
    job_id, folder = claimed_job(spool_root)
    back = move(spool_root.layout, folder, job_id, State.PENDING)
    assert back == spool_root / "pending" / job_id
    entry = pending_entry(spool_root, job_id)
    assert entry.is_folder
    again = claim(spool_root.layout, entry, "r9.0009")
    failed = move(spool_root.layout, again, job_id, State.FAILED)
    assert move(spool_root.layout, failed, job_id, State.PENDING) == spool_root / "pending" / job_id


# -- attempts --------------------------------------------------------------------------------------------


def test_archive_previous_attempt_moves_files_into_attempts(spool_root):
    job_id, folder = claimed_job(spool_root, token="r1.0001", attempt=1)
    raw = (folder / "job.json").read_bytes()
    for name, text in (
        ("stdout.log", "out 1"),
        ("stderr.log", "err 1"),
        ("metrics.jsonl", "{}\n"),
        ("lease", "3"),
    ):
        (folder / name).write_text(text)
    (folder / "outputs").mkdir()
    (folder / "outputs" / "model.bin").write_bytes(b"weights")
    publish_json(folder / "result.json", {"state": "failed", "attempt": 1})
    failed = move(spool_root.layout, folder, job_id, State.FAILED)
    jobs.retry(spool_root.layout, job_id)
    assert failed is not None and not failed.exists()

    folder2 = claim(spool_root.layout, pending_entry(spool_root, job_id), "r2.0002")
    assert archive_previous_attempt(folder2) == 1
    assert names(folder2) == {"job.json", "attempts", "retry.json"}
    assert names(folder2) <= KEEP_ON_ARCHIVE
    first = folder2 / "attempts" / "1"
    assert names(first) == {
        "stdout.log",
        "stderr.log",
        "metrics.jsonl",
        "lease",
        "outputs",
        "claim.json",
        "result.json",
    }
    assert (first / "stdout.log").read_text() == "out 1"
    assert (first / "outputs" / "model.bin").read_bytes() == b"weights"
    assert (folder2 / "job.json").read_bytes() == raw

    # a second failed attempt goes to attempts/2, the first stays as it was
    publish_json(folder2 / "claim.json", {"token": "r2.0002", "attempt": 2})
    (folder2 / "stdout.log").write_text("out 2")
    move(spool_root.layout, folder2, job_id, State.FAILED)
    jobs.retry(spool_root.layout, job_id)
    folder3 = claim(spool_root.layout, pending_entry(spool_root, job_id), "r3.0003")
    assert archive_previous_attempt(folder3) == 2
    assert names(folder3 / "attempts") == {"1", "2"}
    assert (folder3 / "attempts" / "2" / "stdout.log").read_text() == "out 2"
    assert (folder3 / "attempts" / "1" / "stdout.log").read_text() == "out 1"


def test_archive_of_a_fresh_claim_is_a_no_op(spool_root):
    _, folder = claimed_job(spool_root)
    (folder / "claim.json").unlink()
    assert archive_previous_attempt(folder) == 0
    assert names(folder) == {"job.json"}


def test_archive_never_reuses_an_attempt_number(spool_root):
    _, folder = claimed_job(spool_root, attempt=1)
    (folder / "attempts" / "1").mkdir(parents=True)
    (folder / "attempts" / "1" / "stdout.log").write_text("old")
    (folder / "stdout.log").write_text("new")
    assert archive_previous_attempt(folder) == 2  # claim.json says 1, but 1 is taken
    assert (folder / "attempts" / "1" / "stdout.log").read_text() == "old"
    assert (folder / "attempts" / "2" / "stdout.log").read_text() == "new"


def test_the_checkpoint_folder_is_carried_into_the_next_attempt_not_archived(spool_root):
    _, folder = claimed_job(spool_root, attempt=1)
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "state.pt").write_bytes(b"epoch 4")
    (folder / "stdout.log").write_text("attempt 1")
    assert archive_previous_attempt(folder) == 1
    assert (folder / "checkpoint" / "state.pt").read_bytes() == b"epoch 4"
    assert names(folder / "attempts" / "1") == {"stdout.log", "claim.json"}


def test_layout_ignores_editor_and_temp_names(spool_root):
    pending = spool_root / "pending"
    for name in (".hidden.json", "job.json.tmp", "job.part", "job.json.swp", "job.json~", ".x.json.1.ab.tmp"):
        (pending / name).write_text('{"script": "s.py"}')
    assert list(Layout(spool_root.root).entries(State.PENDING)) == []
    assert spool_root.status()["total"] == 0
