"""Many submitters at once: every job lands once, whole, with a distinct id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from spool.ids import is_valid_id
from spool.model import parse_job

PROCS = 6
PER_PROC = 50

SUBMITTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from spool.api import Spool

    sp = Spool(sys.argv[1])
    proc = int(sys.argv[2])
    sp.settings  # read spool.toml before the start signal
    go = Path(sys.argv[1]) / "go"
    while not go.exists():
        time.sleep(0.001)
    for i in range(int(sys.argv[3])):
        print(sp.submit("s.py", {"proc": proc, "i": i}))
    """
)


def check_pending(root, expected_pairs: set[tuple[int, int]], printed: list[str]) -> None:
    names = os.listdir(root / "pending")
    assert len(names) == len(expected_pairs), "jobs were lost or duplicated"
    assert all(n.endswith(".json") and not n.startswith(".") for n in names), "temp files left"
    ids = {n[:-5] for n in names}
    assert all(is_valid_id(i) for i in ids)
    assert sorted(ids) == sorted(printed), "the printed ids are the ids on disk"
    pairs = set()
    for name in names:
        job = parse_job((root / "pending" / name).read_bytes(), name)
        pairs.add((job.params["proc"], job.params["i"]))
    assert pairs == expected_pairs


def test_six_api_processes_submitting_at_once(spool_root):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, str(spool_root), str(p), str(PER_PROC)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCS)
    ]
    time.sleep(0.5)
    (spool_root / "go").touch()
    printed: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        printed += out.split()
    assert len(printed) == len(set(printed)) == PROCS * PER_PROC
    check_pending(spool_root, {(p, i) for p in range(PROCS) for i in range(PER_PROC)}, printed)
    assert spool_root.status() == {"pending": 300, "claimed": 0, "done": 0, "failed": 0, "total": 300}
    assert len(spool_root.jobs()) == 300


def test_six_cli_processes_submitting_fifty_files_each(spool_root, tmp_path):
    spool_exe = os.path.join(os.path.dirname(sys.executable), "spool")
    batches = []
    for p in range(PROCS):
        folder = tmp_path / f"batch{p}"
        folder.mkdir()
        files = []
        for i in range(PER_PROC):
            path = folder / f"job{i:02d}.json"
            path.write_text(json.dumps({"script": "s.py", "params": {"proc": p, "i": i}}))
            files.append(str(path))
        batches.append(files)
    procs = [
        subprocess.Popen(
            [spool_exe, "--spool", str(spool_root), "submit", *files],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for files in batches
    ]
    printed: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "Traceback" not in err
        printed += out.split()
    assert len(printed) == len(set(printed)) == PROCS * PER_PROC
    check_pending(spool_root, {(p, i) for p in range(PROCS) for i in range(PER_PROC)}, printed)
    # the user's bytes, unchanged
    by_pair = {}
    for name in os.listdir(spool_root / "pending"):
        raw = (spool_root / "pending" / name).read_bytes()
        params = json.loads(raw)["params"]
        by_pair[(params["proc"], params["i"])] = raw
    for p, files in enumerate(batches):
        for i, path in enumerate(files):
            assert by_pair[(p, i)] == Path(path).read_bytes()


MOVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    root = Path(sys.argv[1])
    go = root / "go"
    while not go.exists():
        time.sleep(0.001)
    for name in sorted(os.listdir(root / "claimed")):  # each job moves once, as a finishing run does
        time.sleep(0.002)
        os.rename(root / "claimed" / name, root / "failed" / name.split("@")[0])
    """
)


def test_a_job_is_found_while_it_moves(spool_root):
    """`find` looks in one state folder after another: a job that moves from claimed/ to failed/
    between two looks is still found (`spool show` at the instant a job ends)."""
    ids = [spool_root.submit("s.py", {"i": i}) for i in range(150)]
    for job_id in ids:  # claimed as a runner claims: a folder with job.json
        folder = spool_root / "claimed" / f"{job_id}@r1.aaaa"
        folder.mkdir()
        os.rename(spool_root / "pending" / f"{job_id}.json", folder / "job.json")
    mover = subprocess.Popen([sys.executable, "-c", MOVER, str(spool_root)])
    (spool_root / "go").touch()
    missed = []
    try:
        for job_id in ids:
            while True:
                entry = spool_root.layout.find(job_id)
                if entry is None:
                    missed.append(job_id)
                    break
                if entry.state.value == "failed":
                    break
    finally:
        assert mover.wait(60) == 0
    assert not missed, f"{len(missed)} of {len(ids)} jobs not found while they moved"
