"""The daily verbs with real runners: wait (no ids), labels, --where, note, priority, gc, completion."""

from __future__ import annotations

import json
import os
import subprocess
import time
import warnings
from pathlib import Path

import pytest
from runner_kit import BIN, runner, wait_for

from spool import Spool
from spool.states import State

LR = (
    "import argparse, json\n"
    "p = argparse.ArgumentParser(); p.add_argument('--lr', type=float); p.add_argument('--model')\n"
    "a = p.parse_args(); print(json.dumps({'acc': round(1 - a.lr, 4)}))\n"
)


def ok(proc) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


def stop(run: subprocess.Popen[str]) -> None:
    """Stop a runner now: the second SIGTERM hands its running jobs back instead of finishing them."""
    run.terminate()
    time.sleep(0.3)
    if run.poll() is None:
        stop(run)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and mtime: what 'nothing changed' is checked against."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath, f)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def labelled(spool_root, run_cli):
    """Four finished jobs with params and labels (one failed), run by a real runner."""
    (spool_root.scripts_dir / "lr.py").write_text(LR)
    sp = str(spool_root.root)
    ids = {}
    for lr, model, group in ((0.001, "rf", "a"), (0.1, "svm", "b"), (0.01, "logreg", "a")):
        out = run_cli("--spool", sp, "submit", "lr.py", "-p", f"lr={lr}", "-p", f"model={model}",
                      "--label", f"group={group}", "--label", "owner=me")
        ids[model] = ok(out).strip()
    ids["fail"] = ok(run_cli("--spool", sp, "submit", "fail.py", "--label", "group=a")).strip()
    runner(spool_root)
    return spool_root, ids


def test_labels_and_where_through_cli_and_api(labelled, run_cli):
    sp, ids = labelled
    root = str(sp.root)
    # kept in the job, and shown by ls
    out = ok(run_cli("--spool", root, "ls"))
    assert "LABELS" in out and "group=a,owner=me" in out
    # results: label.* columns, and --where over params, labels and results
    rows = json.loads(ok(run_cli("--spool", root, "results", "--json")))
    assert {r["label.group"] for r in rows} == {"a", "b"}
    got = json.loads(ok(run_cli("--spool", root, "results", "--json", "--where", "param.lr < 0.05",
                                "--where", "label.group == a", "--cols", "id")))
    assert sorted(r["id"] for r in got) == sorted([ids["rf"], ids["logreg"]])
    got = json.loads(ok(run_cli("--spool", root, "results", "--json", "--cols", "id",
                                "--where", "model in [rf, svm] and acc >= 0.95")))
    assert [r["id"] for r in got] == [ids["rf"]]
    got = json.loads(ok(run_cli("--spool", root, "results", "--all", "--json", "--cols", "id",
                                "--where", "state == failed")))
    assert [r["id"] for r in got] == [ids["fail"]]
    # ls --where sees pending and finished jobs alike
    got = json.loads(ok(run_cli("--spool", root, "ls", "--json", "--where", "label.group == a")))
    assert sorted(r["id"] for r in got) == sorted([ids["rf"], ids["logreg"], ids["fail"]])
    # the API twin
    df = Spool(root).results(where="label.group == b")
    assert df["id"].tolist() == [ids["svm"]] and df["label.owner"].tolist() == ["me"]
    df = Spool(root).results(where=["lr >= 0.01", "acc < 0.995"])
    assert sorted(df["id"]) == sorted([ids["svm"], ids["logreg"]])
    assert [v.id for v in Spool(root).jobs(where="error.kind == exit")] == [ids["fail"]]


def test_where_errors_are_one_line(labelled, run_cli):
    sp, _ = labelled
    for expr, words in (("param.lr <", "expected a value"), ("nosuch == 1", "unknown column 'nosuch'")):
        proc = run_cli("--spool", sp.root, "results", "--where", expr)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr


def test_where_over_rest(labelled):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from service.app import create_app

    sp, ids = labelled
    api = TestClient(create_app(sp.root), base_url="http://127.0.0.1")
    body = api.get("/results", params={"where": ["label.group == a", "param.lr < 0.005"]}).json()
    assert [r["id"] for r in body["rows"]] == [ids["rf"]]
    assert "label.group" in body["columns"]
    bad = api.get("/results", params={"where": "lr <"})
    assert bad.status_code in (400, 422) and "expected a value" in bad.text


def test_labels_are_validated(spool_root, run_cli):
    proc = run_cli("--spool", spool_root.root, "submit", "s.py", "--label", "bad key=x")
    assert proc.returncode == 2 and "labels" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not os.listdir(spool_root / "pending")


def test_note_on_any_state(labelled, run_cli):
    sp, ids = labelled
    root = str(sp.root)
    ok(run_cli("--spool", root, "note", ids["rf"], "the best so far <b>bold</b>"))
    ok(run_cli("--spool", root, "note", ids["rf"], "-", input="second note\nover two lines\n"))
    notes = json.loads(ok(run_cli("--spool", root, "note", ids["rf"], "--json")))
    assert [n["text"] for n in notes] == ["the best so far <b>bold</b>", "second note\nover two lines"]
    pending = ok(run_cli("--spool", root, "submit", "s.py")).strip()
    ok(run_cli("--spool", root, "note", pending, "queued for tonight"))
    assert Spool(root).notes(pending)[0]["text"] == "queued for tonight"
    proc = run_cli("--spool", root, "note", "nosuchjob", "x")
    assert proc.returncode == 2 and "no job 'nosuchjob'" in proc.stderr


def test_wait_without_ids_waits_for_what_is_queued_now(spool_root, run_cli):
    root = str(spool_root.root)
    quick = spool_root.submit("sleep.py", {"seconds": 0.3})
    spool_root.submit("sleep.py", {"seconds": 1.0})
    # nothing runs them yet: --timeout ends the wait, exit 1, with the bar's line
    proc = run_cli("--spool", root, "wait", "--timeout", "0.5")
    assert proc.returncode == 1 and "timed out" in proc.stderr and "0/2 ended" in proc.stderr
    waiter = subprocess.Popen([str(BIN), "--spool", root, "wait"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert waiter.stderr is not None
    first = waiter.stderr.readline()  # its first progress line: the list is taken
    assert first.startswith("0/2 ended"), first
    late = spool_root.submit("sleep.py", {"seconds": 8})
    run = runner(spool_root, "--slots", "3", wait=False)
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert "2/2 ended: done 2" in err
    assert spool_root.layout.find(quick).state is State.DONE
    assert spool_root.layout.find(late).state in (State.PENDING, State.CLAIMED)  # not waited for
    stop(run)
    # a failure among them: exit 1, and the failed job named
    failing = spool_root.submit("fail.py")
    run = runner(spool_root, wait=False)
    proc = run_cli("--spool", root, "wait")
    assert proc.returncode == 1 and f"failed {failing}" in proc.stdout
    stop(run)


def test_wait_with_nothing_queued_returns_at_once(spool_root, run_cli):
    proc = run_cli("--spool", spool_root.root, "wait")
    assert proc.returncode == 0 and "nothing pending or running" in proc.stderr


def test_priority_reorders_pending_jobs_and_keeps_the_bytes(spool_root, run_cli):
    root = str(spool_root.root)
    raw = b'{"script": "sleep.py", "params": {"seconds": 0.05}}  \n'
    ids = []
    for _ in range(4):
        ids.append(spool_root.submit_bytes(raw))
    out = ok(run_cli("--spool", root, "priority", ids[3], ids[2], "7"))
    assert f"{ids[3]}: priority 7" in out
    ok(run_cli("--spool", root, "priority", ids[2], "3"))
    folder = spool_root / "pending" / ids[2]
    assert (folder / "job.original.json").read_bytes() == raw  # the user's bytes, kept (the first time)
    assert json.loads((folder / "job.json").read_bytes())["priority"] == 3
    bad = run_cli("--spool", root, "priority", ids[0], "high")
    assert bad.returncode == 2 and "integer" in bad.stderr
    runner(spool_root, "--slots", "1")
    started = {j: Spool(root).get(j).result["started"] for j in ids}
    assert sorted(ids, key=started.get) == [ids[3], ids[2], ids[0], ids[1]]
    rec = Spool(root).get(ids[2])
    assert rec.result["attempt"] == 1 and rec.state is State.DONE  # not counted as an attempt
    assert (spool_root / "done" / ids[2] / "job.original.json").read_bytes() == raw
    again = ok(run_cli("--spool", root, "priority", ids[0], "1"))
    assert "already done: unchanged" in again


def test_priority_of_a_sweep(spool_root, run_cli):
    root = str(spool_root.root)
    sweep = json.loads(ok(run_cli("--spool", root, "sweep", "sleep.py", "--grid", "seconds=0.01,0.02",
                                  "--json")))
    out = json.loads(ok(run_cli("--spool", root, "priority", "--sweep", sweep["sweep"], "9", "--json")))
    assert out == {j: "priority 9" for j in sweep["jobs"]}
    assert all(v.job["priority"] == 9 for v in Spool(root).jobs(sweep=sweep["sweep"]))


def test_gc_moves_old_finished_jobs_only(labelled, run_cli):
    sp, ids = labelled
    root = str(sp.root)
    ok(run_cli("--spool", root, "note", ids["svm"], "archived with its job"))
    ok(run_cli("--spool", root, "report"))
    assert (sp.root / "report" / "jobs" / f"{ids['svm']}.html").exists()
    running = sp.submit("sleep.py", {"seconds": 60})
    run = runner(sp, "--slots", "1", wait=False)
    wait_for(lambda: sp.layout.find(running).state is State.CLAIMED)
    pending = sp.submit("s.py")  # the single slot is busy: this one stays pending
    # nothing is old enough
    out = run_cli("--spool", root, "gc", "--older-than", "30d")
    assert out.returncode == 0 and "gc: 0 job(s)" in out.stderr
    # a dry run says what it would do and changes nothing
    before = tree(sp.root)
    out = run_cli("--spool", root, "gc", "--older-than", "0s", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "gc: 4 job(s)" in out.stderr and "nothing changed" in out.stderr
    assert "2 pending or running" in out.stderr
    assert {k: v for k, v in tree(sp.root).items() if not k.startswith(("runners/", "claimed/"))} == {
        k: v for k, v in before.items() if not k.startswith(("runners/", "claimed/"))
    }
    # keep the best by a metric; archive the rest, with their notes; the report follows
    out = run_cli("--spool", root, "gc", "--older-than", "0s", "--keep-best", "1", "--metric", "acc",
                  "--json")
    summary = json.loads(ok(out))
    assert summary["kept_best"] == 1 and sorted(summary["moved"]) == sorted(
        [ids["svm"], ids["logreg"], ids["fail"]]
    )
    assert sorted(os.listdir(sp.root / "done")) == [ids["rf"]]
    assert (sp.root / "archive" / "done" / ids["svm"] / "result.json").exists()
    assert (sp.root / "archive" / "failed" / ids["fail"] / "job.json").exists()
    assert os.listdir(sp.root / "archive" / "notes" / ids["svm"])
    assert sp.layout.find(pending).state is State.PENDING
    assert sp.layout.find(running).state is State.CLAIMED
    assert not (sp.root / "report" / "jobs" / f"{ids['svm']}.html").exists()
    assert ids["svm"] not in (sp.root / "report" / "index.html").read_text()
    show = run_cli("--spool", root, "show", ids["svm"])
    assert show.returncode == 2 and "archived by `spool gc`" in show.stderr
    stop(run)


def test_gc_delete_spares_what_pending_jobs_wait_for(labelled, run_cli):
    sp, ids = labelled
    root = str(sp.root)
    waiting = sp.submit("s.py", after=[ids["rf"]])
    out = json.loads(ok(run_cli("--spool", root, "gc", "--older-than", "0s", "--state", "done",
                                "--delete", "--json")))
    assert out["kept_needed"] == 1 and sorted(out["moved"]) == sorted([ids["svm"], ids["logreg"]])
    assert sorted(os.listdir(sp.root / "done")) == [ids["rf"]]
    assert os.listdir(sp.root / "failed") == [ids["fail"]]
    assert not (sp.root / "archive" / "done").exists()
    assert sp.layout.find(waiting).state is State.PENDING


def test_gc_usage_errors(spool_root, run_cli):
    for args, words in ((["--older-than", "soon"], "--older-than"),
                        (["--older-than", "1d", "--keep-best", "2"], "--metric")):
        proc = run_cli("--spool", spool_root.root, "gc", *args)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script(run_cli, shell, tmp_path):
    script = ok(run_cli("completion", shell))
    assert "priority" in script and "--where" in script
    if shell == "bash":
        path = tmp_path / "spool.bash"
        path.write_text(script)
        # the script loads in a real bash and completes a verb
        probe = (f"source {path}; COMP_WORDS=(spool pri); COMP_CWORD=1; COMP_LINE='spool pri'; "
                 "COMP_POINT=9; _shtab_spool spool pri spool; echo ${COMPREPLY[@]}")
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
        assert "priority" in done.stdout, done.stderr


def test_a_runners_scanner_sees_a_second_priority_change(spool_root):
    """A requeued job is a folder, which keeps its inode when its job.json is replaced: the
    scanner's cache must still see the new priority (it looks at job.json's inode)."""
    from runner.core.discover import Scanner

    a, b = spool_root.submit("s.py"), spool_root.submit("s.py")
    scanner = Scanner(spool_root.layout)
    assert [c.entry.id for c in scanner.scan()] == [a, b]
    spool_root.set_priority(b, priority=5)  # a file becomes a folder
    assert [c.entry.id for c in scanner.scan()] == [b, a]
    spool_root.set_priority(a, priority=3)
    assert [(c.entry.id, c.priority) for c in scanner.scan()] == [(b, 5), (a, 3)]
    spool_root.set_priority(a, priority=9)  # the same folder, renamed out and back
    assert [(c.entry.id, c.priority) for c in scanner.scan()] == [(a, 9), (b, 5)]
