"""The runner end to end: real runner processes on real spool folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_kit import BIN, record, runner, wait_for

from spool import Spool, State

REPO_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

SCRIPTS = {
    "ok.py": 'import json, sys\nprint("hello")\nprint(json.dumps({"step": 1}))\nprint(json.dumps({"acc": 0.9}))\n',
    "exit3.py": 'import sys\nprint("{\\"partial\\": 1}")\nsys.stderr.write("boom\\n")\nsys.exit(3)\n',
    "noresult.py": 'print("just text")\n',
    "garbage.py": 'import sys\nsys.stdout.buffer.write(bytes(range(256)) * 50)\nprint("{not json}")\n',
    "status400.py": 'import json\nprint(json.dumps({"status": 400, "message": "too many columns"}))\n',
    "sleep.py": 'import json, sys, time\nprint(json.dumps({"started": 1}), flush=True)\n'
    'time.sleep(float(sys.argv[1].split("=")[1]) if len(sys.argv) > 1 else 30)\n'
    'print(json.dumps({"slept": True}))\n',
    "flood.py": 'import sys\nline = b"x" * 1023 + b"\\n"\nfor _ in range(4096):\n    sys.stdout.buffer.write(line)\n'
    "print('{\"flooded\": true}')\n",
    "forker.py": 'import json, subprocess, sys\nsubprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])\n'
    'print(json.dumps({"forked": True}))\n',
    "selfkill.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "fails_once.py": 'import json, os, sys\nmark = os.path.join(os.environ["SPOOL_DATA_DIR"], "failed_once")\n'
    'if not os.path.exists(mark):\n    open(mark, "w").close()\n    sys.exit(1)\n'
    'print(json.dumps({"second_try": True}))\n',
    "echo_args.py": 'import json, os, sys\nprint(json.dumps({"argv": sys.argv[1:], "device": os.environ["SPOOL_DEVICE"],'
    ' "job": os.environ["SPOOL_JOB_ID"], "cwd": os.getcwd(), "out": os.environ["SPOOL_OUTPUT_DIR"],'
    ' "extra": os.environ.get("EXTRA")}))\n',
}


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    s = Spool.init(tmp_path / "spool")
    for name, text in SCRIPTS.items():
        (s.scripts_dir / name).write_text(text)
    for name in ("encode_csv.py", "json_echo.py", "noop.py"):
        (s.scripts_dir / name).write_text((REPO_SCRIPTS / name).read_text())
    data = REPO_SCRIPTS.parent / "spool-dir" / "data"
    for f in data.glob("*.csv"):
        (s.root / "data" / f.name).write_bytes(f.read_bytes())
    return s


def set_settings(sp: Spool, **values: object) -> None:
    text = (sp.root / "spool.toml").read_text()
    head, _, tail = text.partition("[defaults]")
    lines = [ln for ln in head.splitlines() if ln.split("=")[0].strip() not in values]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    (sp.root / "spool.toml").write_text("\n".join(lines) + "\n[defaults]" + tail)


def test_flags_contract_end_to_end(sp: Spool) -> None:
    jid = sp.submit(
        "echo_args.py",
        {"lr": 0.01, "name": "a b;$(rm -rf /)", "flag": True, "xs": [1, 2]},
        env={"EXTRA": "yes"},
        args=["-config", "base.yaml"],
    )
    runner(sp)
    rec = record(sp, jid)
    assert rec["state"] == "done" and sp.get(jid).state.value == "done"
    res = rec["result"]
    assert res["argv"] == [
        "-config",
        "base.yaml",
        "--lr=0.01",
        "--name=a b;$(rm -rf /)",
        "--flag=True",
        "--xs=[1, 2]",
    ]
    folder = sp.get(jid).path
    assert res["cwd"] == str(
        sp.layout.state_dir(sp.get(jid).state).parent / "claimed" / Path(res["cwd"]).parent.name / "outputs"
    )
    assert res["device"] == "cpu" and res["job"] == jid and res["extra"] == "yes"
    assert res["out"].endswith("outputs")
    for key in ("runner", "host", "python", "device", "started", "ended", "duration", "exit_code", "attempt"):
        assert key in rec, key
    assert rec["attempt"] == 1 and rec["exit_code"] == 0
    assert (folder / "stdout.log").exists() and (folder / "outputs").is_dir()
    assert json.loads((folder / "job.json").read_bytes())["params"]["lr"] == 0.01


def test_json_and_argv4_contracts_and_original_shape(sp: Spool) -> None:
    j1 = sp.submit("json_echo.py", {"a": 1, "b": 2.5}, contract="json")
    j2 = sp.submit(
        "encode_csv.py",
        {"dataFileName": "iris_small.csv", "dataPath": "data/", "execution": {"max_columns": 50}},
        contract="argv4",
    )
    legacy = {
        "scriptsPath": "/opt/old/scripts/",
        "scriptName": "encode_csv.py",
        "jobParameters": {
            "dataFileName": "wide_categories.csv",
            "dataPath": "data/",
            "writePath": "",
            "execution": {"max_columns": 100},
        },
    }
    (sp.layout.state_dir(sp.get(j1).state) / "legacy-1.json").write_text(json.dumps(legacy))
    runner(sp)
    assert record(sp, j1)["result"] == {"echo": {"a": 1, "b": 2.5}, "sum": 3.5}
    r2 = record(sp, j2)
    assert r2["state"] == "done" and r2["result"]["status"] == 200
    assert (sp.get(j2).path / "outputs" / r2["result"]["output"]).exists()
    r3 = record(sp, "legacy-1")
    assert r3["state"] == "failed" and r3["error"]["kind"] == "status"
    assert "400" in r3["error"]["message"]
    assert json.loads((sp.get("legacy-1").path / "job.json").read_text()) == legacy  # bytes kept


@pytest.mark.parametrize(
    "script,kind,extra",
    [
        ("exit3.py", "exit", "exit code 3"),
        ("noresult.py", "no_result", "no JSON"),
        ("garbage.py", "no_result", ""),
        ("status400.py", "status", "too many columns"),
        ("selfkill.py", "exit", "SIGKILL"),
    ],
)
def test_failure_kinds(sp: Spool, script: str, kind: str, extra: str) -> None:
    jid = sp.submit(script)
    runner(sp)
    rec = record(sp, jid)
    assert sp.get(jid).state.value == "failed"
    assert rec["error"]["kind"] == kind
    assert extra in rec["error"]["message"]
    if script == "exit3.py":
        assert "boom" in rec["error"]["stderr_tail"]
        assert (sp.get(jid).path / "metrics.jsonl").read_text().strip() == '{"partial": 1}'


def test_metrics_lines_and_result(sp: Spool) -> None:
    jid = sp.submit("ok.py")
    runner(sp)
    folder = sp.get(jid).path
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert lines == [{"step": 1}, {"acc": 0.9}]
    assert record(sp, jid)["result"] == {"acc": 0.9}
    assert (folder / "stdout.log").read_text().startswith("hello\n")


def test_timeout_kills_process_group_and_flood_is_capped(sp: Spool) -> None:
    set_settings(sp, log_cap_mb=0.5)
    t = sp.submit("sleep.py", {"s": 30}, timeout=1)
    f = sp.submit("flood.py")
    k = sp.submit("forker.py")
    start = time.monotonic()
    runner(sp, "--slots", "3")
    assert time.monotonic() - start < 20
    assert record(sp, t)["error"]["kind"] == "timeout"
    rf = record(sp, f)
    assert rf["state"] == "done" and rf["result"] == {"flooded": True} and rf.get("logs_truncated")
    size = (sp.get(f).path / "stdout.log").stat().st_size
    assert 0.5 * 2**20 <= size <= 0.5 * 2**20 + 200
    assert record(sp, k)["state"] == "done"


def test_invalid_drops_go_to_failed_with_bytes_kept(sp: Spool) -> None:
    set_settings(sp, settle_seconds=0.5)
    pending = sp.layout.state_dir(State.PENDING)
    drops = {
        "unknown.json": b'{"script": "ok.py", "colour": "red"}',
        "missing.json": b'{"script": "nope.py"}',
        "escape.json": b'{"script": "../outside.py"}',
        "broken.json": b'{"script": "ok.py", ',
        "bad name!.json": b'{"script": "ok.py"}',
        "notes.txt": b"hello",
    }
    (sp.root / "outside.py").write_text("print('{}')")
    for name, raw in drops.items():
        (pending / name).write_bytes(raw)
    for name in (".hidden.json", "half.json.part", "edit.json.swp", "x.json~", "copy.tmp"):
        (pending / name).write_bytes(b"{")
    time.sleep(0.6)
    runner(sp)
    failed = {p.name: p for p in sp.layout.state_dir(State.FAILED).iterdir()}
    assert len(failed) == len(drops)
    by_original = {}
    for folder in failed.values():
        rec = json.loads((folder / "result.json").read_text())
        assert rec["error"]["kind"] == "invalid"
        by_original[rec.get("original_name") or f"{folder.name}.json"] = (
            rec,
            (folder / "job.json").read_bytes(),
        )
    for name, raw in drops.items():
        rec, kept = by_original[name]
        assert kept == raw
    assert "colour" in by_original["unknown.json"][0]["error"]["message"]
    assert "nope.py" in by_original["missing.json"][0]["error"]["message"]
    assert "'..'" in by_original["escape.json"][0]["error"]["message"]
    assert "not valid JSON" in by_original["broken.json"][0]["error"]["message"]
    assert sorted(p.name for p in pending.iterdir()) == sorted(
        [".hidden.json", "half.json.part", "edit.json.swp", "x.json~", "copy.tmp"]
    )


def test_retries_then_success_keeps_old_attempt(sp: Spool) -> None:
    jid = sp.submit("fails_once.py", retries=1)
    runner(sp)
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["attempt"] == 2
    old = sp.get(jid).path / "attempts" / "1" / "result.json"
    assert json.loads(old.read_text())["error"]["kind"] == "exit"


def test_priority_order_and_requires_skipping(sp: Spool) -> None:
    low = sp.submit("ok.py", priority=0)
    high = sp.submit("ok.py", priority=10)
    mid = sp.submit("ok.py", priority=5)
    gpu = sp.submit("ok.py", requires={"gpu": True})
    tagged = sp.submit("ok.py", requires={"tags": ["bigdisk"]})
    runner(sp)
    starts = {j: record(sp, j)["started"] for j in (low, high, mid)}
    assert sorted(starts, key=starts.get) == [high, mid, low]  # type: ignore[arg-type]
    assert sp.get(gpu).state.value == "pending" and sp.get(tagged).state.value == "pending"
    runner(sp, "--tag", "bigdisk")
    assert sp.get(tagged).state.value == "done" and sp.get(gpu).state.value == "pending"


def test_next_job_starts_before_the_last_one_is_written_up(sp: Spool) -> None:
    """A freed slot runs the next job first and writes up the finished one after (its
    result.json and rename wait on a file create, the next script need not)."""
    ids = [sp.submit("noop.py") for _ in range(6)]
    runner(sp, "--slots", "1")
    recs = sorted((record(sp, j) for j in ids), key=lambda r: r["started"])
    assert all(r["state"] == "done" for r in recs)
    assert all(nxt["started"] < prev["ended"] for prev, nxt in zip(recs, recs[1:], strict=False))


def test_two_runners_race_none_twice(sp: Spool) -> None:
    ids = [sp.submit("noop.py") for _ in range(300)]
    procs = [runner(sp, "-q", wait=False) for _ in range(2)]
    wait_for(lambda: len(list(sp.layout.state_dir(State.DONE).iterdir())) == 300, 240, 0.2)
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
    runners_used = set()
    for j in ids:
        rec = record(sp, j)
        assert rec["attempt"] == 1 and rec["state"] == "done"
        assert not (sp.get(j).path / "attempts").exists()
        runners_used.add(rec["runner"])
    assert len(runners_used) == 2
    assert sp.status()["claimed"] == 0 and not list(sp.layout.state_dir(State.CLAIMED).iterdir())


def test_killed_runner_job_is_requeued_after_lease(sp: Spool) -> None:
    set_settings(sp, lease_seconds=2, scan_interval=0.2)
    jid = sp.submit("sleep.py", {"s": 3}, retries=1)
    a = runner(sp, "--name", "doomed", wait=False)
    # claim.json (who holds it) is written just after the start, the logs by the job's pump thread:
    # either may come first, so wait for both before the kill
    wait_for(lambda: sp.get(jid).state.value == "claimed" and (sp.get(jid).path / "claim.json").exists())
    a.send_signal(signal.SIGKILL)
    a.communicate()
    runner(sp, "--name", "rescuer")
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["runner"] == "rescuer" and rec["attempt"] == 2
    lost = json.loads((sp.get(jid).path / "attempts" / "1" / "result.json").read_text())
    assert lost["error"]["kind"] == "lost_lease" and "doomed" in lost["error"]["message"]


def test_graceful_stop_finishes_job_and_second_signal_hands_back(sp: Spool) -> None:
    j1 = sp.submit("sleep.py", {"s": 1.5})
    a = runner(sp, wait=False)
    wait_for(lambda: sp.get(j1).state.value == "claimed")
    a.send_signal(signal.SIGTERM)
    a.communicate(timeout=30)
    assert a.returncode == 0 and sp.get(j1).state.value == "done"

    j2 = sp.submit("sleep.py", {"s": 60})
    b = runner(sp, wait=False)
    wait_for(lambda: sp.get(j2).state.value == "claimed" and (sp.get(j2).path / "stdout.log").exists())
    b.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    b.send_signal(signal.SIGTERM)
    b.communicate(timeout=30)
    v = sp.get(j2)
    assert v.state.value == "pending" and v.path.is_dir() and (v.path / "job.json").exists()


def test_cancel_running_job_stops_within_a_second(sp: Spool) -> None:
    jid = sp.submit("sleep.py", {"s": 60})
    a = runner(sp, wait=False)
    wait_for(lambda: sp.get(jid).state.value == "claimed" and (sp.get(jid).path / "stdout.log").exists())
    t0 = time.monotonic()
    assert sp.cancel(jid)[jid] == "stopping"
    wait_for(lambda: sp.get(jid).state.value == "failed", 10, 0.02)
    assert time.monotonic() - t0 < 2.5
    assert record(sp, jid)["error"]["kind"] == "cancelled"
    a.send_signal(signal.SIGTERM)
    a.communicate(timeout=30)


def test_logs_and_runners_verbs(sp: Spool) -> None:
    jid = sp.submit("ok.py")
    runner(sp, "--name", "box1")
    out = subprocess.run([str(BIN), "--spool", str(sp.root), "logs", jid], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("hello")
    out = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "runners", "--json"], capture_output=True, text=True
    )
    rows = json.loads(out.stdout)
    assert [r["name"] for r in rows] == ["box1"] and rows[0]["status"] == "stopped" and not rows[0]["alive"]
    assert rows[0]["capabilities"]["cpu_count"] >= 1


def test_run_once_requeues_expired_lease_without_sleeping(sp: Spool) -> None:
    """Drive the loop's single step: a dead runner's claimed folder with an old lease goes back."""
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from runner.machine.capabilities import detect
    from spool.layout import Entry
    from spool.protocol import claim
    from spool.states import State

    jid = sp.submit("ok.py")
    folder = claim(
        sp.layout,
        Entry(jid, State.PENDING, sp.layout.state_dir(State.PENDING) / f"{jid}.json", False),
        "ghost.0001",
    )
    assert folder is not None
    (folder / "claim.json").write_text(json.dumps({"attempt": 1, "runner": "ghost", "host": "nowhere"}))
    (folder / "lease").write_text("1")
    past = time.time() - 3600
    for p in (folder / "lease", folder / "claim.json", folder / "job.json"):
        os.utime(p, (past, past))
    caps = detect(sys.executable, [], probe_torch=False)
    r = Runner(sp, RunnerOptions(name="tester", nice=0), caps=caps)
    r.run_once(now=1000.0)
    v = sp.get(jid)
    assert v.state.value in ("pending", "claimed", "failed")
    if v.state.value == "failed":  # no retries left: a lost lease fails the job
        assert record(sp, jid)["error"]["kind"] == "lost_lease"
