"""Issue 19, the runner's side: hostile jobs and scripts, run by real runners on real folders.

Each test drops the hostile thing itself (a 300 MB job file, an `env` that would choose what
runs, an argv4 `writePath` into the spool's own folders, a result line over 1 MiB, NaN
params) and checks what the runner did: one clear reason, nothing written where it must not be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runner_kit import BIN, record, runner

from spool.api import Spool
from spool.errors import InvalidJob
from spool.model import job_from_dict

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from service.app import create_app  # noqa: E402


def _settle_now(sp: Spool) -> None:
    toml = sp.root / "spool.toml"
    toml.write_text(toml.read_text().replace("settle_seconds = 10", "settle_seconds = 0"))


def _drop(sp: Spool, name: str, job: dict[str, Any] | str) -> None:
    """A job file written into pending/ by hand: it comes by no submit check, only the runner's."""
    text = job if isinstance(job, str) else json.dumps(job)
    (sp.root / "pending" / f"{name}.json").write_text(text)


# -- 3. a job file far over the limit ---------------------------------------------------------


def _peak_rss_mb(sp: Spool) -> float:
    """A runner's peak RSS over its life (its own, or its largest waited-for child's), in MB."""
    proc = subprocess.Popen(
        [str(BIN), "--spool", str(sp.root), "runner", "--exit-when-idle", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return usage.ru_maxrss / 1024


def test_a_300_mb_job_file_is_rejected_by_its_size_without_being_read(spool_root: Any, tmp_path: Path) -> None:
    """The runner's peak RSS is that of a runner without the file; the good job behind it runs."""
    base = Spool.init(tmp_path / "base")
    (base.scripts_dir / "s.py").write_text("print('{\"ok\": true}')\n")
    _drop(base, "zzz-good", {"script": "s.py"})
    baseline = _peak_rss_mb(base)
    sp = spool_root
    big = sp.root / "pending" / "aaa-big.json"
    with open(big, "wb") as f:  # sparse: 300 MB to every reader, no disk used
        f.write(b'{"script": "s.py", "params": {"x": "')
        f.truncate(300 << 20)
    _drop(sp, "zzz-good", {"script": "s.py"})
    peak = _peak_rss_mb(sp)
    assert peak - baseline < 50, f"runner peak RSS {peak:.0f} MB, {baseline:.0f} MB without the 300 MB file"
    assert sp.get("zzz-good").state.value == "done"
    rec = record(sp, "aaa-big")
    assert rec["error"]["kind"] == "invalid" and "the limit is 4194304" in rec["error"]["message"]
    assert (sp.root / "failed" / "aaa-big" / "job.json").stat().st_size == 300 << 20  # bytes kept


# -- 5. env -------------------------------------------------------------------------------------


def test_a_dropped_job_cannot_set_pythonpath_and_run_a_sitecustomize(spool_root: Any, tmp_path: Path) -> None:
    sp = spool_root
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "ran"
    (evil / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    _drop(sp, "j-pythonpath", {"script": "s.py", "env": {"PYTHONPATH": str(evil)}})
    _drop(sp, "j-preload", {"script": "s.py", "env": {"LD_PRELOAD": str(evil / "x.so")}})
    _drop(sp, "j-forge", {"script": "echo.py", "env": {"SPOOL_JOB_ID": "someone-else", "SPOOL_OUTPUT_DIR": "/tmp"}})
    runner(sp)
    assert not marker.exists()
    for job_id, name in (("j-pythonpath", "PYTHONPATH"), ("j-preload", "LD_PRELOAD"), ("j-forge", "SPOOL_JOB_ID")):
        rec = record(sp, job_id)
        assert rec["error"]["kind"] == "invalid" and name in rec["error"]["message"], rec["error"]


def test_the_runner_refuses_refused_env_however_the_job_was_validated(spool_root: Any, tmp_path: Path) -> None:
    """`build_invocation` itself: a job read with the env rule skipped still cannot set them,
    and the runner's SPOOL_* are applied after the job's env."""
    from runner.core.contract import build_invocation

    sp = spool_root
    folder = tmp_path / "f"
    folder.mkdir()
    kw = dict(job_id="j1", python=sys.executable, script=sp.scripts_dir / "s.py", spool_root=sp.root,
              folder=folder, device="cpu", base_env={})
    for env in ({"PYTHONPATH": "/x"}, {"LD_PRELOAD": "/x"}, {"SPOOL_JOB_ID": "x"}, {"Spool_Dir": "x"}):
        job = job_from_dict({"script": "s.py", "env": env}, env_allow=None)
        with pytest.raises(InvalidJob):
            build_invocation(job, **kw)  # type: ignore[arg-type]
    job = job_from_dict({"script": "s.py", "env": {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}}, env_allow=None)
    inv = build_invocation(job, env_allow=["PYTHONHASHSEED"], **kw)  # type: ignore[arg-type]
    assert inv.env["PYTHONHASHSEED"] == "0" and inv.env["SPOOL_JOB_ID"] == "j1"


def test_env_allow_reaches_the_script(spool_root: Any) -> None:
    sp = spool_root
    toml = sp.root / "spool.toml"
    toml.write_text(toml.read_text().replace("[defaults]", 'env_allow = ["PYTHONHASHSEED"]\n\n[defaults]'))
    (sp.scripts_dir / "seed.py").write_text(
        "import json, os\nprint(json.dumps({'seed': os.environ.get('PYTHONHASHSEED')}))\n"
    )
    job_id = Spool(sp.root).submit("seed.py", env={"PYTHONHASHSEED": "123"})
    runner(sp)
    assert record(sp, job_id)["result"] == {"seed": "123"}


# -- 6. argv4 writePath ----------------------------------------------------------------------------

BAD_WRITE_PATHS = [
    "done/PHANTOM/", "pending/X/", "claimed/", "failed/x/", "runners/", "sweeps/s/", "diffs/",
    "report/", "ids/x/", "notes/x/", "archive/done/x/", "scripts/", "scripts/sub/", "./", ".", ".hidden/",
    "data/../done/PHANTOM2/",
]


def test_argv4_write_path_into_the_spools_own_folders_is_refused(spool_root: Any) -> None:
    sp = spool_root
    (sp.root / "data" / "in.csv").write_text("a,b\n1,2\n")
    (sp.scripts_dir / "legacy.py").write_text(
        "import json, os, sys\n"
        "open(os.path.join(sys.argv[3], 'out.txt'), 'w').write('x')\n"
        "print(json.dumps({'status': 200, 'wrote': sys.argv[3]}))\n"
    )
    other = sp.submit("s.py")
    runner(sp)
    BAD = [*BAD_WRITE_PATHS, f"done/{other}/"]
    for i, wp in enumerate(BAD):
        _drop(sp, f"bad{i:02d}", {"script": "legacy.py", "contract": "argv4",
                                   "params": {"dataFileName": "in.csv", "dataPath": "data/", "writePath": wp}})
    _drop(sp, "good-data", {"script": "legacy.py", "contract": "argv4",
                            "params": {"dataFileName": "in.csv", "dataPath": "data/", "writePath": "data/out/"}})
    _drop(sp, "good-default", {"script": "legacy.py", "contract": "argv4", "params": {"dataFileName": "in.csv"}})
    before = {p.relative_to(sp.root) for p in sp.root.rglob("*") if "bad" not in str(p) and "good" not in str(p)}
    runner(sp)
    for i, wp in enumerate(BAD):
        rec = record(sp, f"bad{i:02d}")
        assert rec["error"]["kind"] == "invalid" and "writePath" in rec["error"]["message"], (wp, rec["error"])
    assert record(sp, "good-data")["result"]["status"] == 200
    assert (sp.root / "data" / "out" / "out.txt").read_text() == "x"
    assert record(sp, "good-default")["result"]["wrote"].endswith("outputs/")
    st = sp.status()
    assert st["done"] == 3 and st["failed"] == len(BAD), st  # no phantom job
    after = {p.relative_to(sp.root) for p in sp.root.rglob("*") if "bad" not in str(p) and "good" not in str(p)}
    new = sorted(str(p) for p in after - before if not str(p).startswith(("data", "runners")))
    assert new == [], new  # nothing made in done/, pending/, scripts/...
    assert not (sp.root / "done" / other / "out.txt").exists()


@pytest.mark.parametrize("wp", ["done/PHANTOM/", "scripts/", "runners/", "report/", "./"])
def test_argv4_write_path_is_refused_by_submit_and_by_post_scripts_run(spool_root: Any, run_cli: Any, wp: str) -> None:
    sp = spool_root
    (sp.scripts_dir / "legacy.py").write_text("print('{}')\n")
    res = run_cli("--spool", sp.root, "submit", "legacy.py", "--contract", "argv4",
                  "-p", "dataFileName=in.csv", "-p", f"writePath={wp}")
    assert res.returncode == 2 and "writePath" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    c = TestClient(create_app(sp.root), base_url="http://127.0.0.1")
    r = c.post("/scripts/run", json={"scriptName": "legacy.py", "jobParameters": {
        "dataFileName": "in.csv", "dataPath": "data/", "writePath": wp, "execution": {}}})
    assert r.status_code == 400 and r.json()["field"] == "writePath", r.text
    assert list((sp.root / "pending").iterdir()) == []


# -- 9. a result line over 1 MiB -----------------------------------------------------------------


def test_a_final_result_line_over_1_mib_fails_the_job_clearly(spool_root: Any) -> None:
    sp = spool_root
    (sp.scripts_dir / "huge.py").write_text(
        "import json\n"
        "print(json.dumps({'epoch': 1, 'loss': 0.5}))\n"
        "print(json.dumps({'accuracy': 0.9, 'blob': 'x' * (2 << 20)}))\n"
    )
    job_id = sp.submit("huge.py")
    runner(sp)
    rec = record(sp, job_id)
    assert sp.get(job_id).state.value == "failed"
    assert rec["error"]["kind"] == "result_too_long" and "1048576" in rec["error"]["message"]
    assert rec["result"] is None  # never the previous line standing in


def test_the_tail_of_a_long_text_line_never_parses_as_the_result(spool_root: Any) -> None:
    sp = spool_root
    (sp.scripts_dir / "tail.py").write_text(
        "import json, sys, time\n"
        "print(json.dumps({'real': 1}))\n"
        "sys.stdout.write('A' * ((1 << 20) + 1))\n"  # over the limit, no newline yet
        "sys.stdout.flush()\n"
        "time.sleep(0.5)\n"  # read apart: the tail below arrives on its own
        "sys.stdout.write('{\"fake\": true}\\n')\n"
    )
    job_id = sp.submit("tail.py")
    runner(sp)
    assert sp.get(job_id).state.value == "done"
    assert record(sp, job_id)["result"] == {"real": 1}


# -- 10. NaN and 1e400 dropped by hand ---------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "1e400", "-Infinity"])
def test_non_finite_params_in_a_dropped_file_are_rejected_naming_the_field(spool_root: Any, literal: str) -> None:
    sp = spool_root
    _drop(sp, "j1", '{"script": "s.py", "params": {"x": ' + literal + ', "ok": 1}}')
    runner(sp)
    rec = record(sp, "j1")
    assert rec["error"]["kind"] == "invalid" and "params.x" in rec["error"]["message"]
    assert "finite" in rec["error"]["message"]


# -- 2, 4, 11: FIFO, odd folders, duplicate keys, as the runner meets them -------------------------------


def test_the_runner_rejects_a_fifo_a_duplicate_key_and_a_folder_named_no_id(spool_root: Any) -> None:
    sp = spool_root
    _settle_now(sp)
    os.mkfifo(sp.root / "pending" / "fifo.json")
    _drop(sp, "dup", '{"script": "s.py", "script": "echo.py"}')
    (sp.root / "pending" / "my job").mkdir()
    _drop(sp, "good", {"script": "s.py"})
    runner(sp, timeout=60)
    assert sp.get("good").state.value == "done"
    assert "not a regular file" in record(sp, "fifo")["error"]["message"]
    assert "'script' is given twice" in record(sp, "dup")["error"]["message"]
    st = sp.status()
    assert st["pending"] == 0 and st["failed"] == 3, st


def test_fifos_among_the_sweeps_and_heartbeats_block_no_runner_and_no_reader(spool_root: Any) -> None:
    """Every file a runner or `spool show` reads from the folder goes through the regular-file
    check: a pipe named like a sweep definition or a heartbeat is skipped, never opened."""
    sp = spool_root
    os.mkfifo(sp.root / "sweeps" / "evil.yaml")
    os.mkfifo(sp.root / "runners" / "ghost.json")
    _drop(sp, "good", {"script": "s.py"})
    runner(sp, timeout=60)  # an open of either pipe for reading would wait here for ever
    assert sp.get("good").state.value == "done"
    p = subprocess.run([str(BIN), "--spool", str(sp.root), "runners"], capture_output=True, text=True, timeout=30)
    assert "Traceback" not in p.stderr
