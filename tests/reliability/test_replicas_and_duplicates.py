"""Replicated folders and one id dropped twice: what the runner detects and does.

A replicated sync folder (Syncthing, Dropbox) is not safe for claims: each replica renames on
its own, so two runners can both win one job. The runner looks for the signs (sync-tool marker
files, a rename not visible at once, one job claimed twice, a finished job's folder already
there) and says so loudly; and whatever happens, it keeps every run: nothing is lost.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from rkit import drop, job_bytes, timeout_for, wait_for

from spool.states import State


def _done_bytes(sp) -> dict[str, bytes]:
    return {p.name: (p / "job.json").read_bytes() for p in sp.layout.state_dir(State.DONE).iterdir()}


@pytest.mark.slow
@timeout_for(300, 60)
def test_redropped_ids_run_again_and_nothing_is_lost(scenario):
    sp, runners = scenario.spool(lease_seconds=2, scan_interval=0.2)
    first, second = job_bytes(1), job_bytes(2)
    drop(sp, "again", first)
    runners.start(name="one", exit_when_idle=True, quiet=False)
    runners.wait_all(60)
    drop(sp, "again", second)  # the same name, dropped again once the first has run
    r2 = runners.start(name="two", exit_when_idle=True, quiet=False)
    runners.wait_all(60)
    done = _done_bytes(sp)
    assert done["again"] == first and sorted(done.values()) == sorted([first, second])
    (new,) = [n for n in done if n != "again"]
    rec = json.loads((sp.layout.state_dir(State.DONE) / new / "result.json").read_bytes())
    assert rec["id"] == new and rec["original_name"] == "again.json"
    assert f"running this new copy as {new}" in r2.stderr()

    # dropped again while the first copy still runs: both run, both are kept, and it is said loudly
    busy1 = job_bytes(3, params={"s": 2.5})
    drop(sp, "busy", busy1)
    r3 = runners.start("--slots", "2", name="three", quiet=False)
    wait_for(
        lambda: any(p.name.startswith("busy@") for p in sp.layout.state_dir(State.CLAIMED).iterdir()),
        20,
        0.02,
    )
    busy2 = job_bytes(4, params={"s": 0.5})
    drop(sp, "busy", busy2)
    wait_for(
        lambda: len([n for n in os.listdir(sp.layout.state_dir(State.DONE)) if n.startswith("busy")]) == 2, 30
    )
    runners.stop_all()
    done = _done_bytes(sp)
    assert sorted(v for k, v in done.items() if k.startswith("busy")) == sorted([busy1, busy2])
    log = r3.stderr()
    assert "DUPLICATE" in log and "ran twice" in log, log
    assert not os.listdir(sp.layout.state_dir(State.CLAIMED)) and not os.listdir(
        sp.layout.state_dir(State.PENDING)
    )
    assert not runners.crashes()
    scenario.figures("dup ids", "an id dropped again after / while it ran", None, runs=4)


@pytest.mark.slow
@timeout_for(300, 60)
def test_replicated_folder_signs_are_reported(scenario):
    sp, runners = scenario.spool(lease_seconds=2, scan_interval=0.2)
    (sp.root / ".stfolder").mkdir()  # Syncthing marks every folder it shares with this
    # what two replicas leave once they sync after both "won" the claim of one job
    raw = job_bytes(9, params={"s": 0.1}, retries=1)
    for token in ("laptop.aaaa1111", "desktop.bbbb2222"):
        folder = sp.layout.state_dir(State.CLAIMED) / f"twice@{token}"
        folder.mkdir()
        (folder / "job.json").write_bytes(raw)
        (folder / "claim.json").write_text(
            json.dumps({"token": token, "runner": token.split(".")[0], "attempt": 1})
        )
        (folder / "lease").write_text("1")
    rp = runners.start(name="watcher", quiet=False)
    wait_for(lambda: "DUPLICATE CLAIM: job twice" in rp.stderr(), 20, 0.05, "the double claim reported")
    log = rp.stderr()
    assert "WARNING: the spool looks like a replicated sync folder" in log and ".stfolder (Syncthing)" in log
    beat = json.loads((sp.layout.runners / "watcher.json").read_bytes())
    assert any("Syncthing" in w for w in beat.get("warnings", [])), beat
    # the two claims' leases run out (their runners are on other replicas): both runs are kept
    wait_for(lambda: len(os.listdir(sp.layout.state_dir(State.DONE))) == 2, 30, 0.1, "both copies ran")
    time.sleep(0.5)
    runners.stop_all()
    assert sorted(_done_bytes(sp).values()) == [raw, raw]
    assert not os.listdir(sp.layout.state_dir(State.CLAIMED)) and not runners.crashes()
    scenario.figures("replica signs", "sync marker + one job claimed twice", None, runs=2)
