"""The `spool` command's job verbs, run as real processes against real spool folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spool.ids import is_valid_id

EMPTY = {"pending": 0, "claimed": 0, "done": 0, "failed": 0, "total": 0}


def one_error_line(proc, *words: str) -> str:
    """Exit 2, exactly one line on stderr (naming `words`), no traceback, nothing on stdout."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def ok(proc) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


def pending_files(root) -> list[Path]:
    return sorted(Path(root, "pending").iterdir())


@pytest.mark.parametrize(
    "verb",
    ["init", "submit", "status", "ls", "show", "cancel", "retry", "schema", "runner", "runners", "logs"],
)
def test_every_verb_has_help(run_cli, verb):
    out = ok(run_cli(verb, "--help"))
    assert out.startswith(f"usage: spool {verb}")
    assert "--spool" in out


def test_bare_command_prints_usage_and_exits_2(run_cli):
    proc = run_cli()
    assert proc.returncode == 2
    assert "usage: spool" in proc.stdout + proc.stderr


def test_the_issue_example(run_cli, tmp_path):
    ok(run_cli("--spool", "T", "init"))
    assert (tmp_path / "T" / "spool.toml").is_file()
    (tmp_path / "T" / "scripts" / "s.py").write_text("print('{\"ok\": true}')\n")  # the user's script
    job_id = ok(run_cli("--spool", "T", "submit", "s.py", "-p", "lr=0.1")).strip()
    assert is_valid_id(job_id)
    status = json.loads(ok(run_cli("--spool", "T", "status", "--json")))
    assert status == {"pending": 1, "claimed": 0, "done": 0, "failed": 0, "total": 1}
    written = tmp_path / "T" / "pending" / f"{job_id}.json"
    assert json.loads(written.read_bytes()) == {"script": "s.py", "params": {"lr": 0.1}}


def test_options_after_the_verb(run_cli, spool_root):
    job_id = ok(run_cli("submit", "s.py", "--spool", spool_root, "-p", "a=1", "--json"))
    assert is_valid_id(json.loads(job_id)["id"])
    status = json.loads(ok(run_cli("status", "--spool", spool_root, "--json")))
    assert status["pending"] == 1


def test_spool_dir_from_the_environment(run_cli, spool_root, tmp_path):
    spool_root.submit("s.py")
    status = json.loads(ok(run_cli("status", "--json", env={"SPOOL_DIR": str(spool_root)})))
    assert status["pending"] == 1
    # --spool wins over $SPOOL_DIR
    other = tmp_path / "other"
    ok(run_cli("init", "--spool", other))
    status = json.loads(ok(run_cli("--spool", other, "status", "--json", env={"SPOOL_DIR": str(spool_root)})))
    assert status == EMPTY


def test_default_spool_is_spool_dir_in_the_working_directory(run_cli, tmp_path):
    ok(run_cli("init"))
    assert (tmp_path / "spool-dir" / "spool.toml").is_file()
    assert json.loads(ok(run_cli("status", "--json"))) == EMPTY


def test_submit_parses_values_as_json_where_they_parse(run_cli, spool_root):
    out = ok(
        run_cli(
            "--spool", spool_root, "submit", "s.py",
            "-p", "lr=0.1", "-p", "name=abc", "-p", "flag=true", "-p", "xs=[1,2]",
            "-p", "nothing=null", "-p", "quoted=\"7\"", "-p", "eq=a=b", "-p", "empty=",
        )
    )  # fmt: skip
    (path,) = pending_files(spool_root)
    assert path.name == out.strip() + ".json"
    params = json.loads(path.read_bytes())["params"]
    assert params == {
        "lr": 0.1,
        "name": "abc",
        "flag": True,
        "xs": [1, 2],
        "nothing": None,
        "quoted": "7",
        "eq": "a=b",
        "empty": "",
    }


def test_submit_job_options(run_cli, spool_root):
    ok(
        run_cli(
            "--spool", spool_root, "submit", "sub/nested.py", "--contract", "json", "--name", "n1",
            "--priority", "5", "--timeout", "30", "--retries", "2", "--requires-gpu", "--tag", "big",
            "--env", "K=V=W", "--arg=-config", "--arg", "base.yaml",
        )
    )  # fmt: skip
    (path,) = pending_files(spool_root)
    assert json.loads(path.read_bytes()) == {
        "script": "sub/nested.py",
        "contract": "json",
        "name": "n1",
        "priority": 5,
        "timeout": 30.0,
        "retries": 2,
        "requires": {"gpu": True, "tags": ["big"]},
        "env": {"K": "V=W"},
        "args": ["-config", "base.yaml"],
    }


def test_submit_file_keeps_the_users_exact_bytes(run_cli, spool_root, tmp_path):
    raw = '{ "script" : "s.py",\n  "params": {"lr": 1e-3, "note": "caf\u00e9 \u2603"}  ,"name":"x" }\n\n'.encode()
    (tmp_path / "mine.json").write_bytes(raw)
    second = b'{"script": "echo.py"}'
    (tmp_path / "two.json").write_bytes(second)
    out = ok(run_cli("--spool", spool_root, "submit", "mine.json", "two.json"))
    ids = out.split()
    assert len(ids) == 2 and all(is_valid_id(i) for i in ids)
    assert (spool_root / "pending" / f"{ids[0]}.json").read_bytes() == raw
    assert (spool_root / "pending" / f"{ids[1]}.json").read_bytes() == second
    assert len(pending_files(spool_root)) == 2


def test_submit_original_shape_file(run_cli, spool_root, tmp_path):
    raw = b'{"scriptsPath": "/old/hq/", "scriptName": "echo.py", "jobParameters": {"dataPath": "data/"}}'
    (tmp_path / "old.json").write_bytes(raw)
    job_id = ok(run_cli("--spool", spool_root, "submit", "old.json")).strip()
    assert (spool_root / "pending" / f"{job_id}.json").read_bytes() == raw
    shown = json.loads(ok(run_cli("--spool", spool_root, "show", "--json", job_id)))
    assert shown["job"]["contract"] == "argv4" and shown["job"]["script"] == "echo.py"


def test_submit_from_stdin(run_cli, spool_root):
    raw = '{"script": "s.py", "params": {"a": [1, 2]}}'
    job_id = ok(run_cli("--spool", spool_root, "submit", "-", input=raw)).strip()
    assert (spool_root / "pending" / f"{job_id}.json").read_text() == raw


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"script": "s.py", "bogus": 1}', ["bad.json", "'bogus'", "unknown field"]),
        ('{"script": "s.py", "timeout": 0}', ["bad.json", "'timeout'"]),
        ('{"script": "../s.py"}', ["bad.json", "'script'"]),
        ('{"script": "nope.py"}', ["bad.json", "'script'", "nope.py"]),
        ('{"script": "s.py",', ["bad.json", "not valid JSON"]),
    ],
)
def test_submit_of_a_bad_file_writes_nothing(run_cli, spool_root, tmp_path, content, words):
    (tmp_path / "bad.json").write_text(content)
    one_error_line(run_cli("--spool", spool_root, "submit", "bad.json"), *words)
    assert pending_files(spool_root) == []


def test_submit_of_several_files_is_all_or_nothing(run_cli, spool_root, tmp_path):
    (tmp_path / "good.json").write_text('{"script": "s.py"}')
    (tmp_path / "bad.json").write_text('{"script": "s.py", "retries": -1}')
    one_error_line(run_cli("--spool", spool_root, "submit", "good.json", "bad.json"), "bad.json", "'retries'")
    assert pending_files(spool_root) == []


def test_submit_of_bad_stdin(run_cli, spool_root):
    one_error_line(run_cli("--spool", spool_root, "submit", "-", input="[1, 2]"), "<stdin>", "object")
    assert pending_files(spool_root) == []


def test_submit_of_a_missing_script(run_cli, spool_root):
    one_error_line(
        run_cli("--spool", spool_root, "submit", "missing.py", "-p", "a=1"), "'script'", "missing.py"
    )
    assert pending_files(spool_root) == []


def test_submit_bad_param_syntax(run_cli, spool_root):
    one_error_line(run_cli("--spool", spool_root, "submit", "s.py", "-p", "novalue"), "key=value")
    assert pending_files(spool_root) == []


def test_init_refuses_to_clobber(run_cli, spool_root):
    toml = (spool_root / "spool.toml").read_bytes()
    spool_root.submit("s.py")
    one_error_line(run_cli("--spool", spool_root, "init"), "already exists")
    assert (spool_root / "spool.toml").read_bytes() == toml
    assert len(pending_files(spool_root)) == 1


def test_init_creates_the_layout(run_cli, tmp_path):
    out = json.loads(ok(run_cli("init", "--spool", "new", "--json")))
    root = tmp_path / "new"
    assert out == {"spool": str(root), "scripts": str(root / "scripts")}
    for name in ("pending", "claimed", "done", "failed", "runners", "data", "scripts"):
        assert (root / name).is_dir(), name


@pytest.mark.parametrize("verb", ["status", "ls", "show X", "cancel X", "retry X"])
def test_verbs_on_a_folder_that_is_not_a_spool(run_cli, tmp_path, verb):
    (tmp_path / "plain").mkdir()
    one_error_line(run_cli("--spool", tmp_path / "plain", *verb.split()), "no spool here")


def test_status_on_a_missing_folder(run_cli, tmp_path):
    one_error_line(run_cli("--spool", tmp_path / "nowhere", "status"), "nowhere", "spool init")


def test_status_counts_every_state(run_cli, spool_root):
    a, b, _ = (spool_root.submit("s.py", {"i": i}) for i in range(3))
    spool_root.cancel(a, b)
    assert json.loads(ok(run_cli("--spool", spool_root, "status", "--json"))) == {
        "pending": 1, "claimed": 0, "done": 0, "failed": 2, "total": 3,
    }  # fmt: skip
    text = ok(run_cli("--spool", spool_root, "status"))
    assert "pending: 1" in text and "failed: 2" in text and "total: 3" in text


def test_ls_table_and_json(run_cli, spool_root):
    first = spool_root.submit("s.py", {"lr": 0.1}, name="alpha")
    second = spool_root.submit("echo.py", {"xs": [1, 2]})
    spool_root.cancel(second)

    table = ok(run_cli("--spool", spool_root, "ls")).splitlines()
    assert table[0].split() == ["ID", "STATE", "SCRIPT", "NAME", "PARAMS", "RESULT"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {first, second}
    assert rows[first].split()[1:4] == ["pending", "s.py", "alpha"]
    assert '{"lr":0.1}' in rows[first]
    assert rows[second].split()[1:3] == ["failed", "echo.py"] and "cancelled" in rows[second]

    listed = json.loads(ok(run_cli("ls", "--spool", spool_root, "--json")))
    assert [r["id"] for r in listed] == sorted([first, second])
    by_id = {r["id"]: r for r in listed}
    assert set(by_id[first]) == {"id", "state", "script", "params", "name", "sweep", "labels", "created"}
    assert by_id[first]["state"] == "pending" and by_id[first]["params"] == {"lr": 0.1}
    assert by_id[first]["name"] == "alpha" and by_id[first]["sweep"] is None
    assert by_id[first]["created"].startswith(first[:4])
    assert {"id", "state", "script", "params", "name", "sweep", "created"} <= set(by_id[second])
    assert by_id[second]["error"]["kind"] == "cancelled"

    only_failed = json.loads(ok(run_cli("ls", "--spool", spool_root, "--json", "--state", "failed")))
    assert [r["id"] for r in only_failed] == [second]


def test_ls_of_an_empty_spool(run_cli, spool_root):
    assert json.loads(ok(run_cli("--spool", spool_root, "ls", "--json"))) == []


def test_show_text_and_json(run_cli, spool_root):
    job_id = spool_root.submit("s.py", {"lr": 0.2}, name="beta")
    text = ok(run_cli("--spool", spool_root, "show", job_id))
    assert text.splitlines()[0].startswith(f"{job_id}  [pending]")
    assert '"lr": 0.2' in text and "beta" in text

    shown = json.loads(ok(run_cli("--spool", spool_root, "show", job_id, "--json")))
    assert shown["id"] == job_id and shown["state"] == "pending"
    assert shown["job"]["params"] == {"lr": 0.2} and shown["job"]["contract"] == "flags"
    assert shown["path"] == str(spool_root / "pending" / f"{job_id}.json")

    spool_root.cancel(job_id)
    shown = json.loads(ok(run_cli("--spool", spool_root, "show", "--json", job_id)))
    assert shown["state"] == "failed"
    assert shown["files"] == ["job.json", "result.json"]
    assert shown["record"]["error"]["kind"] == "cancelled"
    text = ok(run_cli("--spool", spool_root, "show", job_id))
    assert "error: cancelled" in text


@pytest.mark.parametrize("job_id", ["20200101T000000-000000-dead", "../pending", "a@b"])
def test_show_unknown_id(run_cli, spool_root, job_id):
    one_error_line(run_cli("--spool", spool_root, "show", job_id), "no job")


def test_cancel_then_retry(run_cli, spool_root, tmp_path):
    raw = b'{"script": "s.py",   "params": {"lr": 0.3}}\n'
    (tmp_path / "j.json").write_bytes(raw)
    job_id = ok(run_cli("--spool", spool_root, "submit", "j.json")).strip()

    out = ok(run_cli("--spool", spool_root, "cancel", job_id))
    assert out.strip() == f"{job_id}: cancelled"
    folder = spool_root / "failed" / job_id
    assert sorted(os.listdir(folder)) == ["job.json", "result.json"]
    assert (folder / "job.json").read_bytes() == raw
    record = json.loads((folder / "result.json").read_bytes())
    assert record["state"] == "failed" and record["id"] == job_id
    assert record["error"]["kind"] == "cancelled"
    assert record["job"]["params"] == {"lr": 0.3}
    assert pending_files(spool_root) == []

    out = ok(run_cli("--spool", spool_root, "retry", job_id))
    assert job_id in out and "requeued 1" in out
    back = spool_root / "pending" / job_id
    assert back.is_dir() and not folder.exists()
    assert (back / "job.json").read_bytes() == raw
    assert json.loads((back / "result.json").read_bytes())["error"]["kind"] == "cancelled"  # the old attempt
    assert json.loads(ok(run_cli("--spool", spool_root, "status", "--json")))["pending"] == 1

    out = ok(run_cli("--spool", spool_root, "retry", "--failed"))
    assert out.strip() == "requeued 0 job(s)"
    assert json.loads(ok(run_cli("--spool", spool_root, "retry", "--failed", "--json"))) == []


def test_cancel_json_and_already_finished(run_cli, spool_root):
    job_id = spool_root.submit("s.py")
    assert json.loads(ok(run_cli("--spool", spool_root, "cancel", job_id, "--json"))) == {job_id: "cancelled"}
    assert json.loads(ok(run_cli("--spool", spool_root, "cancel", job_id, "--json"))) == {
        job_id: "already failed"
    }


def test_retry_failed_requeues_every_failed_job(run_cli, spool_root):
    ids = [spool_root.submit("s.py", {"i": i}) for i in range(3)]
    spool_root.cancel(*ids[:2])
    assert sorted(json.loads(ok(run_cli("--spool", spool_root, "retry", "--failed", "--json")))) == ids[:2]
    assert spool_root.status()["pending"] == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["cancel", "20200101T000000-000000-dead"], ["no job"]),
        (["retry", "20200101T000000-000000-dead"], ["no job"]),
        (["retry"], ["--failed"]),
        (["retry", "--sweep", "x"], ["--failed"]),
    ],
)
def test_cancel_and_retry_errors(run_cli, spool_root, args, words):
    one_error_line(run_cli("--spool", spool_root, *args), *words)


def test_retry_of_a_pending_job_is_refused(run_cli, spool_root):
    job_id = spool_root.submit("s.py")
    one_error_line(run_cli("--spool", spool_root, "retry", job_id), "no failed job")
    assert (spool_root / "pending" / f"{job_id}.json").is_file()


def test_cancel_of_a_retried_job_keeps_the_earlier_attempt(spool_root):
    """Cancelling a requeued folder must not overwrite the first attempt's result.json."""
    job_id = spool_root.submit("s.py")
    spool_root.cancel(job_id)
    first = (spool_root / "failed" / job_id / "result.json").read_bytes()
    spool_root.retry(job_id)
    assert spool_root.cancel(job_id) == {job_id: "cancelled"}
    folder = spool_root / "failed" / job_id
    assert (folder / "attempts" / "1" / "result.json").read_bytes() == first
    assert json.loads((folder / "result.json").read_bytes())["error"]["kind"] == "cancelled"
