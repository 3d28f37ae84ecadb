"""Runners under a real single-node Slurm (`slurm_kit`), and HTCondor's own submit parser.

The cluster is this machine: munged, slurmctld and slurmd started by the test with a private
slurm.conf, stopped once the queue is empty. Each test submits `spool slurm`'s script with
`sbatch` and watches what Slurm's own signals (scancel, the time limit) do to the jobs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_kit import wait_for
from slurm_kit import SlurmCluster

from house.cluster import condor_submit_description, slurm_script
from spool import Spool


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    why = SlurmCluster.unavailable()
    if why is not None:
        pytest.skip(why)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except RuntimeError as exc:  # e.g. a kernel or container that will not run slurmd
        cluster.stop()
        pytest.skip(f"could not start a single-node Slurm: {exc}")
    yield cluster
    cluster.stop()


def _script(sp: Spool, tmp_path: Path, **kw: Any) -> Path:
    path = tmp_path / "runners.sbatch"
    path.write_text(
        slurm_script(
            interpreter=sys.executable,
            spool=str(sp.root),
            output=str(tmp_path / "slurm-%A_%a.out"),
            runner_flags=["--nice", "0", "--scan-interval", "0.2"],
            **kw,
        )
    )
    return path


def _claimed(sp: Spool) -> list[Path]:
    return [p for p in (sp.root / "claimed").iterdir() if (p / "claim.json").exists()]


def _outputs(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("slurm-*.out")))


def _said(view: Any, tmp_path: Path) -> str:
    """A job in the wrong state: its record and the runners' output, whole (not a truncated repr)."""
    rec = view.path / "result.json"
    record = rec.read_text(errors="replace") if rec.exists() else "(no result.json)"
    return f"{view.id} is {view.state.value}\nresult.json: {record}\nrunners said:\n{_outputs(tmp_path)}"


def test_real_sbatch_accepts_the_script(slurm: SlurmCluster, spool_root: Any, tmp_path: Path) -> None:
    script = _script(spool_root, tmp_path, array=2, time="0:05:00")
    p = slurm._run("sbatch", "--test-only", str(script))
    assert p.returncode == 0, p.stderr


def test_an_array_drains_the_spool_and_its_runners_exit(
    slurm: SlurmCluster, spool_root: Any, tmp_path: Path
) -> None:
    ids = [spool_root.submit("sleep.py", {"seconds": 0.3}) for _ in range(6)]
    slurm.sbatch(_script(spool_root, tmp_path, array=2))
    slurm.wait_empty(120)  # the runners ended by themselves: nothing was cancelled
    states = {i: spool_root.get(i).state.value for i in ids}
    assert set(states.values()) == {"done"}, (states, _outputs(tmp_path))
    runners = {spool_root.get(i).result["runner"] for i in ids}
    assert runners and all(r.startswith("slurm-") for r in runners), runners


def test_scancel_mid_run_loses_nothing_and_spends_no_retry(
    slurm: SlurmCluster, spool_root: Any, tmp_path: Path
) -> None:
    """scancel with Slurm's default signals: SIGTERM to every process of the job at once (the
    runner and its script together), SIGKILL after KillWait."""
    ids = [spool_root.submit("sleep.py", {"seconds": 300}) for _ in range(3)]
    job = slurm.sbatch(_script(spool_root, tmp_path, array=2))
    wait_for(lambda: len(_claimed(spool_root)) == 2, timeout=60)
    slurm.scancel(job)
    slurm.wait_empty(60)
    for i in ids:
        view = spool_root.get(i)
        assert view.state.value == "pending", _said(view, tmp_path)
    folders = [p for p in (spool_root.root / "pending").iterdir() if p.is_dir()]
    interrupted = [json.loads((p / "result.json").read_text()) for p in folders]
    assert len(interrupted) == 2
    for rec in interrupted:
        assert rec["state"] == "interrupted" and rec["error"]["kind"] == "stopped", rec
        assert rec["interruptions"] == 1
        assert rec["runner"].startswith("slurm-")
    assert not list((spool_root.root / "failed").iterdir())


def test_the_time_limit_hands_the_running_job_back(
    slurm: SlurmCluster, spool_root: Any, tmp_path: Path
) -> None:
    """`--signal=B:INT@40` with a one-minute limit: SIGINT to the runner first (no new work), then
    Slurm's SIGTERM to everything at the limit."""
    jid = spool_root.submit("sleep.py", {"seconds": 600})
    slurm.sbatch(_script(spool_root, tmp_path, array=1, time="0:01:00", grace=40))
    wait_for(lambda: len(_claimed(spool_root)) == 1, timeout=60)
    slurm.wait_empty(180)
    view = spool_root.get(jid)
    assert view.state.value == "pending", _said(view, tmp_path)
    rec = json.loads((view.path / "result.json").read_text())
    assert rec["state"] == "interrupted" and rec["interruptions"] == 1, rec


# -- HTCondor: its own parser, no pool needed -------------------------------------------------


def _v2_words(text: str) -> list[str]:
    """Split HTCondor's job-ad `Arguments` (its "V2" syntax: blanks separate words, '...' groups,
    '' inside a group is one quote)."""
    words: list[str] = []
    word, quoted, started, i = "", False, False, 0
    while i < len(text):
        c = text[i]
        if c == "'":
            if quoted and text[i + 1 : i + 2] == "'":
                word, i = word + "'", i + 2
                continue
            quoted, started = not quoted, True
        elif c.isspace() and not quoted:
            if started:
                words.append(word)
            word, started = "", False
        else:
            word, started = word + c, True
        i += 1
    if started:
        words.append(word)
    return words


def test_htcondor_parses_the_submit_description(tmp_path: Path) -> None:
    htcondor = pytest.importorskip(
        "htcondor", reason="HTCondor's bindings (pip install 'htcondor<24') are absent"
    )
    spool = str(tmp_path / "it's a spool")
    flags = ["--tag", 'say "hi"']
    text = condor_submit_description(interpreter=sys.executable, spool=spool, count=3, runner_flags=flags)
    ads = list(htcondor.Submit(text).jobs(count=3, clusterid=7))
    assert len(ads) == 3
    assert ads[2]["Cmd"] == sys.executable
    assert _v2_words(ads[2]["Arguments"]) == [
        "-m",
        "spool.cli.main",
        "--spool",
        spool,
        "runner",
        "--exit-when-idle",
        "--name",
        "condor-7-2",
        *flags,
    ]
    assert ads[0]["Environment"] == "PYTHONUNBUFFERED=1"
    assert ads[1]["JobUniverse"] == 5  # vanilla
