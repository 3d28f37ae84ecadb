"""Claim kits on a real spool folder: a claim renames a prepared folder into place, a lost
claim puts it back, ambiguous errors leave nothing stray, and runners leave no kit behind.

Faults are injected through `FsOps` subclasses that wrap the real calls (as in test_protocol).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from runner_kit import runner, wait_for
from test_protocol import EIOBeforeRename, RenameThenEIO, names, pending_entry
from test_runner import set_settings

import runner.core.kits as kits_module
from runner.core.kits import KIT_FILES, Kits
from spool.errors import StorageError
from spool.protocol import FsOps, claim
from spool.states import State

LOGS = ("stdout.log", "stderr.log", "metrics.jsonl")


def kits_of(folder: Path) -> set[str]:
    return {n for n in names(folder) if n.startswith(".kit-")}


def ready_kit(sp, name: str = "r1") -> tuple[Kits, Path]:
    kits = Kits(sp.layout.runners, name, 1)
    kits.fill()
    kit = kits.take()
    assert kit is not None and kit.parent == sp.layout.runners
    return kits, kit


def test_fill_makes_folders_with_outputs_and_empty_logs(spool_root):
    kits = Kits(spool_root.layout.runners, "r1", 2)
    kits.fill()
    made = kits_of(spool_root.layout.runners)
    assert len(made) == 2
    for name in made:
        kit = spool_root.layout.runners / name
        assert names(kit) == {"outputs", "checkpoint", *KIT_FILES}
        assert all((kit / f).stat().st_size == 0 for f in KIT_FILES)
    kits.fill()  # already full: nothing more
    assert kits_of(spool_root.layout.runners) == made


def test_claim_with_a_kit_renames_it_into_place(spool_root):
    job_id = spool_root.submit("s.py", {"lr": 0.5})
    raw = (spool_root / "pending" / f"{job_id}.json").read_bytes()
    _, kit = ready_kit(spool_root)
    folder = claim(spool_root.layout, pending_entry(spool_root, job_id), "r1.aaaa", kit=kit)
    assert folder == spool_root / "claimed" / f"{job_id}@r1.aaaa"
    assert (folder / "job.json").read_bytes() == raw
    assert names(folder) == {"job.json", "outputs", "checkpoint", *KIT_FILES}
    assert not kit.exists() and kits_of(spool_root.layout.runners) == set()
    assert spool_root.status()["claimed"] == 1


def test_lost_claim_puts_the_kit_back_for_the_next_claim(spool_root):
    job_id = spool_root.submit("s.py")
    entry = pending_entry(spool_root, job_id)
    assert claim(spool_root.layout, entry, "r1.aaaa") is not None
    kits, kit = ready_kit(spool_root, "r2")
    assert claim(spool_root.layout, entry, "r2.bbbb", kit=kit) is None
    assert names(kit) == {"outputs", "checkpoint", *KIT_FILES}  # back where it was, whole
    assert names(spool_root / "claimed") == {f"{job_id}@r1.aaaa"}
    kits.put_back(kit)
    assert kits.take() == kit


def test_kit_claims_with_ambiguous_errors_leave_nothing_stray(spool_root):
    a, b = spool_root.submit("s.py", {"n": 1}), spool_root.submit("s.py", {"n": 2})
    _, kit = ready_kit(spool_root)
    # every rename fails without happening: storage trouble (not a lost race, issue 18.11); the
    # job stays pending, the kit where it was
    with pytest.raises(StorageError):
        claim(spool_root.layout, pending_entry(spool_root, a), "r1.0bad", kit=kit, fs=EIOBeforeRename())
    assert names(spool_root / "claimed") == set() and kit.is_dir()
    # every rename happens and then reports EIO: the claim is won, with the kit's contents
    folder = claim(spool_root.layout, pending_entry(spool_root, a), "r1.0b0b", kit=kit, fs=RenameThenEIO())
    assert folder == spool_root / "claimed" / f"{a}@r1.0b0b"
    assert names(folder) == {"job.json", "outputs", "checkpoint", *KIT_FILES}
    # a kit that is gone by the time of the claim: the folder is made as without one
    folder = claim(spool_root.layout, pending_entry(spool_root, b), "r1.0c0c", kit=kit)
    assert folder is not None and names(folder) == {"job.json"}


class KitCannotGoBack(FsOps):
    """Renames work, except the one that would put a kit back into runners/."""

    def rename(self, src: Path, dst: Path) -> None:
        if dst.parent.name == "runners":
            raise OSError(errno.EIO, "Input/output error")
        os.rename(src, dst)


def test_lost_claim_whose_kit_cannot_go_back_removes_it(spool_root):
    job_id = spool_root.submit("s.py")
    entry = pending_entry(spool_root, job_id)
    assert claim(spool_root.layout, entry, "r1.aaaa") is not None
    _, kit = ready_kit(spool_root, "r2")
    assert claim(spool_root.layout, entry, "r2.bbbb", kit=kit, fs=KitCannotGoBack()) is None
    assert names(spool_root / "claimed") == {f"{job_id}@r1.aaaa"}  # nothing of r2's stays
    assert not kit.exists()


def test_clear_removes_this_runners_kits_only(spool_root):
    runners = spool_root.layout.runners
    Kits(runners, "crashed", 2).fill()  # a predecessor of the same name that died
    Kits(runners, "other", 1).fill()
    mine = Kits(runners, "crashed", 1)
    mine.clear()
    assert {n.split(".")[1] for n in kits_of(runners)} == {"kit-other"}
    assert mine.take() is None


def test_runner_uses_kits_and_leaves_none_behind(spool_root):
    Kits(spool_root.layout.runners, "kitted", 3).fill()  # a crashed runner's, same name
    ids = [spool_root.submit("s.py") for _ in range(6)]
    runner(spool_root, "--name", "kitted", "--slots", "2")
    assert kits_of(spool_root.layout.runners) == set()
    for job_id in ids:
        folder = spool_root.layout.state_dir(State.DONE) / job_id
        # the blanks became claim.json and result.json: nothing hidden or temporary is left
        assert names(folder) == {"job.json", "result.json", "claim.json", "outputs", *LOGS}
        assert (folder / "stdout.log").read_text() == '{"ok": true}\n'


def test_a_job_failed_before_its_start_keeps_no_blank(spool_root):
    (spool_root / "pending" / "bad.json").write_text('{"script": "s.py", "bogus": 1}')
    (spool_root.scripts_dir / "gone.py").write_text("print('{}')\n")
    missing = spool_root.submit("gone.py")
    (spool_root.scripts_dir / "gone.py").unlink()  # deleted after the submit: fails at the start
    runner(spool_root, "--name", "kitted")
    for job_id in ("bad", missing):
        folder = spool_root.layout.state_dir(State.FAILED) / job_id
        assert (folder / "result.json").is_file()
        assert not [n for n in names(folder) if n.endswith(".blank") or n.endswith(".tmp")], names(folder)


def test_a_claim_whose_runner_died_before_claim_json_is_interrupted_and_ends_without_blanks(spool_root):
    set_settings(spool_root, lease_seconds=2, scan_interval=0.2, max_interruptions=1)
    job_id = spool_root.submit("s.py", retries=0)
    _, kit = ready_kit(spool_root, "dead")  # it claimed with a kit, then died: no claim.json
    folder = claim(spool_root.layout, pending_entry(spool_root, job_id), "dead.0001", kit=kit)
    assert folder is not None and ".claim.json.blank" in names(folder)
    runner(spool_root, "--name", "rescuer")  # takes it over (an interruption, no retry), runs it
    done = spool_root.layout.state_dir(State.DONE) / job_id
    first = json.loads((done / "attempts" / "1" / "result.json").read_text())
    assert (first["state"], first["error"]["kind"]) == ("interrupted", "lost_lease")
    assert names(done) == {"job.json", "result.json", "claim.json", "outputs", "attempts", *LOGS}


def test_the_filler_thread_makes_kits_and_stops_with_clear(spool_root, monkeypatch):
    monkeypatch.setattr(kits_module, "IDLE_EXIT", 0.3)
    runners = spool_root.layout.runners
    kits = Kits(runners, "bg", 2)

    def claim_one() -> None:  # a claim takes a kit out of runners/
        kit = kits.take()
        assert kit is not None
        shutil.rmtree(kit)

    def filler_alive() -> bool:
        return any(t.name == ".kit-bg.filler" for t in threading.enumerate())

    kits.fill_soon()
    wait_for(lambda: len(kits_of(runners)) == 2, timeout=10)
    claim_one()
    assert len(kits_of(runners)) == 1
    kits.fill_soon()  # made again in the background
    wait_for(lambda: len(kits_of(runners)) == 2, timeout=10)
    wait_for(lambda: not filler_alive(), timeout=10)  # nobody asked for a while: it ended
    claim_one()
    kits.fill_soon()  # asked again: a new filler
    wait_for(lambda: len(kits_of(runners)) == 2, timeout=10)
    kits.clear()
    assert kits_of(runners) == set() and not filler_alive()
