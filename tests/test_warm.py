"""Warm mode (fork server) end to end: real runner processes, compared with cold runs.

A warm job must leave exactly what a cold job leaves: result, metrics, logs, output files,
exit codes and tracebacks; timeouts and cancel must work; any failure of the server must fall
back to a cold start and say so in result.json.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_kit import BIN, record, runner, wait_for

from spool import Spool
from spool.states import State

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="fork server")


SCRIPTS = {
    # pandas, metrics lines, an output file, an unclosed file, atexit, a non-daemon thread
    "pd_job.py": """\
import argparse, atexit, json, os, sys, threading, time
import pandas as pd

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=5)
p.add_argument("--tag", default="x")
a = p.parse_args()
df = pd.DataFrame({"i": range(a.n), "sq": [i * i for i in range(a.n)]})
for i in range(3):
    print(json.dumps({"step": i, "loss": 1.0 / (i + 1)}))
print("plain text line")
sys.stderr.write("a warning on stderr\\n")
df.to_csv(os.path.join(os.environ["SPOOL_OUTPUT_DIR"], "table.csv"), index=False)
left_open = open("unclosed.txt", "w")
left_open.write("flushed by the finalizer\\n")
atexit.register(lambda: print("atexit ran"))

def late():
    time.sleep(0.2)
    with open("thread.txt", "w") as f:
        f.write("non-daemon thread finished\\n")

threading.Thread(target=late).start()
print(json.dumps({"total": int(df.sq.sum()), "tag": a.tag, "argv": sys.argv[1:], "name": __name__,
                  "file": os.path.basename(__file__), "cwd": os.path.basename(os.getcwd()),
                  "job": os.environ["SPOOL_JOB_ID"] != "", "path0": os.path.basename(sys.path[0])}))
""",
    "crash.py": """\
import json
print(json.dumps({"before": 1}))

def inner():
    raise ValueError("bad value")

inner()
""",
    "exit3.py": "import sys\nprint('{\"partial\": 1}')\nsys.exit(3)\n",
    "exitmsg.py": "import sys\nsys.exit('a message for stderr')\n",
    "stdin_job.py": "import json, sys\nparams = json.load(sys.stdin)\nprint(json.dumps({'got': params}))\n",
    "rand.py": "import json\nimport numpy as np\nprint(json.dumps({'r': float(np.random.random())}))\n",
    "sleep.py": "import json, sys, time\nimport pandas\nprint(json.dumps({'started': 1}), flush=True)\n"
    "time.sleep(60)\nprint(json.dumps({'slept': True}))\n",
    "whoami.py": "import json, os, sys\nprint(json.dumps({'pid': os.getpid(), 'pandas': 'pandas' in sys.modules,"
    " 'helper': __import__('helper').VALUE}))\n",
    "helper.py": "VALUE = 1\n",
}


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    s = Spool.init(tmp_path / "spool")
    for name, text in SCRIPTS.items():
        (s.scripts_dir / name).write_text(text)
    return s


def files(folder: Path) -> dict[str, bytes]:
    out = folder / "outputs"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_warm_runs_leave_what_cold_runs_leave(sp: Spool) -> None:
    pairs = {
        "pd": [sp.submit("pd_job.py", {"n": 7, "tag": "a b"}, warm=w) for w in (None, False)],
        "crash": [sp.submit("crash.py", warm=w) for w in (None, False)],
        "exit3": [sp.submit("exit3.py", warm=w) for w in (None, False)],
        "exitmsg": [sp.submit("exitmsg.py", warm=w) for w in (None, False)],
        "stdin": [
            sp.submit("stdin_job.py", {"a": [1, 2], "b": "é"}, contract="json", warm=w) for w in (None, False)
        ],
    }
    runner(sp, "--warm", "pandas,numpy", "--slots", "2")
    for what, (warm_id, cold_id) in pairs.items():
        w, c = record(sp, warm_id), record(sp, cold_id)
        assert w["warm"]["used"] is True, (what, w["warm"])
        assert c["warm"] == {"used": False, "reason": 'the job says "warm": false'}
        for key in ("state", "result", "exit_code", "metrics_count"):
            assert w[key] == c[key], (what, key, w[key], c[key])
        assert (w["error"] or {}).get("kind") == (c["error"] or {}).get("kind"), what
        assert (w["error"] or {}).get("message") == (c["error"] or {}).get("message"), what
        wf, cf = sp.get(warm_id).path, sp.get(cold_id).path
        for name in ("metrics.jsonl", "stdout.log", "stderr.log"):
            assert (wf / name).read_bytes() == (cf / name).read_bytes(), (what, name)
        assert files(wf) == files(cf), what
    pd_rec = record(sp, pairs["pd"][0])
    assert pd_rec["state"] == "done" and pd_rec["result"]["total"] == sum(i * i for i in range(7))
    assert pd_rec["result"]["argv"] == ["--n=7", "--tag=a b"] and pd_rec["result"]["name"] == "__main__"
    assert pd_rec["result"]["file"] == "pd_job.py" and pd_rec["result"]["cwd"] == "outputs"
    assert pd_rec["result"]["path0"] == "scripts"
    out = files(sp.get(pairs["pd"][0]).path)
    assert out["unclosed.txt"] == b"flushed by the finalizer\n"
    assert out["thread.txt"] == b"non-daemon thread finished\n"
    assert b"atexit ran" in (sp.get(pairs["pd"][0]).path / "stdout.log").read_bytes()
    crash = record(sp, pairs["crash"][0])
    assert crash["exit_code"] == 1 and "ValueError: bad value" in crash["error"]["stderr_tail"]
    assert "warm.py" not in crash["error"]["stderr_tail"]
    assert record(sp, pairs["exit3"][0])["exit_code"] == 3
    assert (sp.get(pairs["exitmsg"][0]).path / "stderr.log").read_text() == "a message for stderr\n"
    assert record(sp, pairs["stdin"][0])["result"] == {"got": {"a": [1, 2], "b": "é"}}


def test_warm_children_are_fresh_forks(sp: Spool) -> None:
    ids = [sp.submit("whoami.py") for _ in range(3)] + [sp.submit("rand.py") for _ in range(3)]
    runner(sp, "--warm", "pandas")
    recs = [record(sp, j) for j in ids]
    assert all(r["state"] == "done" and r["warm"]["used"] for r in recs)
    pids = {r["result"]["pid"] for r in recs[:3]}
    assert len(pids) == 3 and all(r["result"]["pandas"] for r in recs[:3])
    assert len({r["warm"]["server"] for r in recs}) == 1
    # numpy's global generator is reseeded in every child, as in a fresh interpreter
    assert len({r["result"]["r"] for r in recs[3:]}) == 3


def test_warm_timeout_and_cancel(sp: Spool) -> None:
    t = sp.submit("sleep.py", timeout=1)
    start = time.monotonic()
    runner(sp, "--warm", "pandas")
    rec = record(sp, t)
    assert rec["warm"]["used"] and rec["error"]["kind"] == "timeout"
    assert time.monotonic() - start < 30

    c = sp.submit("sleep.py")
    r = runner(sp, "--warm", "pandas", wait=False)
    try:
        wait_for(lambda: sp.get(c).state is State.CLAIMED and (sp.get(c).path / "metrics.jsonl").exists())
        wait_for(lambda: (sp.get(c).path / "metrics.jsonl").read_text().strip() != "")
        t0 = time.monotonic()
        assert sp.cancel(c)[c] == "stopping"
        wait_for(lambda: sp.get(c).state is State.FAILED, 10, 0.02)
        assert time.monotonic() - t0 < 3
        rec = record(sp, c)
        assert rec["error"]["kind"] == "cancelled" and rec["warm"]["used"]
    finally:
        r.send_signal(signal.SIGTERM)
        r.communicate(timeout=30)


def test_falls_back_cold_when_the_server_dies_then_restarts(sp: Spool) -> None:
    first = sp.submit("whoami.py")
    r = runner(sp, "--warm", "pandas", "--scan-interval", "0.2", wait=False)
    try:
        wait_for(lambda: sp.get(first).state is State.DONE, 60)
        server = record(sp, first)["warm"]["server"]
        os.kill(server, signal.SIGKILL)
        time.sleep(0.2)
        second = sp.submit("whoami.py")
        wait_for(lambda: sp.get(second).state is State.DONE, 60)
        rec = record(sp, second)
        assert rec["warm"]["used"] is False and "exited" in rec["warm"]["reason"]
        assert rec["result"]["helper"] == 1 and rec["result"]["pandas"] is False  # a cold interpreter
        third = sp.submit("whoami.py")
        wait_for(lambda: sp.get(third).state is State.DONE, 60)
        rec3 = record(sp, third)
        assert rec3["warm"]["used"] is True and rec3["warm"]["server"] != server
    finally:
        r.send_signal(signal.SIGTERM)
        r.communicate(timeout=30)


def test_restarts_when_the_scripts_folder_changes(sp: Spool) -> None:
    first = sp.submit("whoami.py")
    r = runner(sp, "--warm", "pandas,helper", "--scan-interval", "0.2", wait=False)
    try:
        wait_for(lambda: sp.get(first).state is State.DONE, 60)
        assert record(sp, first)["result"]["helper"] == 1 and record(sp, first)["warm"]["used"]
        (sp.scripts_dir / "helper.py").write_text("VALUE = 2\n")
        second = sp.submit("whoami.py")
        wait_for(lambda: sp.get(second).state is State.DONE, 60)
        rec = record(sp, second)
        assert rec["warm"]["used"] is False and "changed" in rec["warm"]["reason"]
        assert rec["result"]["helper"] == 2
        third = sp.submit("whoami.py")
        wait_for(lambda: sp.get(third).state is State.DONE, 60)
        assert record(sp, third)["warm"]["used"] and record(sp, third)["result"]["helper"] == 2
    finally:
        r.send_signal(signal.SIGTERM)
        r.communicate(timeout=30)


def test_a_server_that_cannot_import_runs_jobs_cold(sp: Spool) -> None:
    jid = sp.submit("whoami.py")
    runner(sp, "--warm", "no_such_module_here")
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["warm"]["used"] is False
    assert "no_such_module_here" in rec["warm"]["reason"]


def test_jobs_setting_startup_env_run_cold(sp: Spool) -> None:
    toml = sp.root / "spool.toml"  # PYTHON* names are refused unless the spool's owner allows them
    toml.write_text(toml.read_text().replace("[defaults]", 'env_allow = ["PYTHONPATH"]\n\n[defaults]'))
    jid = Spool(sp.root).submit("whoami.py", env={"PYTHONPATH": "/nowhere"})
    runner(sp, "--warm", "pandas")
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["warm"]["used"] is False and "PYTHONPATH" in rec["warm"]["reason"]


def test_unsafe_modules_are_refused_and_macos_is_opt_in(sp: Spool) -> None:
    from runner.core.options import split_modules
    from runner.warm.pool import check_fork_safe, warm_default_allowed

    out = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "runner", "--warm", "pandas,tensorflow", "--exit-when-idle"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "tensorflow" in out.stderr and "fork-safe" in out.stderr
    assert split_modules("pandas, sklearn,,numpy") == ["pandas", "sklearn", "numpy"]
    with pytest.raises(ValueError):
        split_modules("pandas;rm")
    check_fork_safe(["pandas", "sklearn"])
    with pytest.raises(ValueError, match="tensorflow.keras is not fork-safe"):
        check_fork_safe(["pandas", "tensorflow.keras"])
    assert warm_default_allowed("darwin")[0] is False and warm_default_allowed("linux")[0] is True
