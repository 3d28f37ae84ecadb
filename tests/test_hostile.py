"""Issue 19: hostile input and hostile callers, each made here, on real folders and processes.

Readers (CLI, API, server, report) read the folder through `spool.untrusted`; each test writes
the hostile thing itself (a lone surrogate, a FIFO, a 5 MB job, a folder with a bad name, a
formula, a duplicate key, odd settings) and checks one clear line, no traceback, no 500.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_kit import runner, wait_for

from spool.api import Spool
from spool.cli.main import main as spool_main
from spool.errors import ConfigError, InvalidJob, SpoolExists, UsageError
from spool.model import parse_job
from spool.settings import load_settings, render_settings

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from service.app import create_app  # noqa: E402

LONE = "\ud800"


def _client(sp: Spool, token: str | None = None) -> TestClient:
    return TestClient(
        create_app(sp.root, token=token), base_url="http://127.0.0.1", follow_redirects=False,
        raise_server_exceptions=False,
    )


def _cli(*argv: str) -> tuple[int, str, str]:
    """`spool ARGV` in this process, stdout a strict UTF-8 stream (as a pipe or terminal is)."""
    out, err = io.BytesIO(), io.StringIO()
    wrapper = io.TextIOWrapper(out, encoding="utf-8", errors="strict")
    with contextlib.redirect_stdout(wrapper), contextlib.redirect_stderr(err):
        try:
            rc = spool_main(list(argv))
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
        wrapper.flush()
    return rc, out.getvalue().decode("utf-8"), err.getvalue()


def _finished(sp: Spool, job_id: str, record: Any, *, raw: bytes | None = None, state: str = "done") -> Path:
    """A finished job folder as another machine's runner (or a hostile one) could leave it."""
    folder = sp.root / state / job_id
    (folder / "outputs").mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"script": "s.py"}))
    if raw is None:
        raw = json.dumps(record).encode()  # NaN and surrogates as Python's json writes them
    (folder / "result.json").write_bytes(raw)
    return folder


READERS = (
    ("ls",), ("ls", "--json"), ("results",), ("results", "--csv"), ("results", "--json"),
    ("results", "--all"), ("status",), ("runners",), ("runners", "--json"),
)


def _every_reader_ok(sp: Spool, ids: list[str]) -> None:
    for verb in READERS:
        rc, out, err = _cli("--spool", str(sp.root), *verb)
        assert rc == 0 and "Traceback" not in err, (verb, err)
    for job_id in ids:
        for extra in ((), ("--json",)):
            rc, out, err = _cli("--spool", str(sp.root), "show", job_id, *extra)
            assert rc == 0, (job_id, err)
    c = _client(sp)
    for url in ["/jobs", "/results", "/results?format=csv", "/results?state=all", "/status", "/runners"]:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[:300])
    for job_id in ids:
        for url in (f"/jobs/{job_id}", f"/jobs/{job_id}/metrics"):
            r = c.get(url)
            assert r.status_code == 200, (url, r.text[:300])
            json.loads(r.text)  # strict JSON: no NaN


# -- 1. a lone surrogate -----------------------------------------------------------------------


def test_a_lone_surrogate_in_a_result_line_breaks_no_reader(spool_root: Any, tmp_path: Path) -> None:
    """A real script prints a result holding "\\ud800" and a NaN: every reader still works."""
    sp = spool_root
    (sp.scripts_dir / "odd.py").write_text(
        "import json\nprint(json.dumps({'loss': float('nan'), 'text': '\\ud800', 'k\\udfff': 1}))\n"
    )
    job_id = sp.submit("odd.py", {"a": "x"})
    runner(sp)
    assert sp.get(job_id).state.value == "done"
    assert b"\\ud800" in (sp.root / "done" / job_id / "result.json").read_bytes()  # bytes kept
    _every_reader_ok(sp, [job_id])
    rc, out, _ = _cli("--spool", str(sp.root), "results")
    assert "\ufffd" in out
    from report.build import build

    index, _stats = build(sp, tmp_path / "report")
    assert "\ufffd" in index.read_text(encoding="utf-8") or index.is_file()
    c = _client(sp)
    assert c.get(f"/jobs/{job_id}").json()["result"]["loss"] is None  # JSON has no NaN


def test_a_lone_surrogate_in_a_job_is_refused_naming_the_field(spool_root: Any) -> None:
    sp = spool_root
    body = b'{"script": "s.py", "params": {"a": "\\ud800"}}'
    with pytest.raises(InvalidJob) as exc:
        parse_job(body, "j.json")
    assert exc.value.field == "params.a" and "surrogate" in exc.value.message
    r = _client(sp).post("/jobs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "params", "a"]
    assert list((sp.root / "pending").iterdir()) == []


# -- 2. a FIFO -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(sp: Spool, *extra: str) -> Any:
    port = _free_port()
    bin_ = Path(sys.executable).parent / "spool"
    proc = subprocess.Popen(
        [str(bin_), "--spool", str(sp.root), "serve", "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False

        wait_for(up, 30)
        yield port
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _get(port: int, path: str, timeout: float = 10) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_fifo_in_the_folder_pins_no_reader(spool_root: Any) -> None:
    """FIFOs as a pending job, a result.json and a heartbeat: 60 requests and the CLI all answer."""
    sp = spool_root
    os.mkfifo(sp.root / "pending" / "fifo.json")
    done = _finished(sp, "j1", {"result": {"x": 1}})
    (done / "result.json").unlink()
    os.mkfifo(done / "result.json")
    os.mkfifo(done / "metrics.jsonl")
    os.mkfifo(done / "stdout.log")
    os.mkfifo(sp.root / "runners" / "r.json")
    with _serve(sp) as port:
        for i in range(60):
            path = ("/jobs", "/results", "/jobs/fifo", "/jobs/j1", "/jobs/j1/metrics", "/runners",
                    "/jobs/j1/logs")[i % 7]
            assert _get(port, path) == (404 if path == "/jobs/fifo" else 200), path  # a FIFO is no job
        assert _get(port, "/status") == 200
    rc, out, err = _cli("--spool", str(sp.root), "ls")
    assert rc == 0 and "not a regular file" in out, err
    rc, out, err = _cli("--spool", str(sp.root), "logs", "j1")
    assert rc == 2 and "not a regular file" in err, err


# -- 3. a job file over the limit --------------------------------------------------------------


def test_a_job_file_over_the_limit_is_not_read(spool_root: Any, tmp_path: Path) -> None:
    """`spool submit`, `ls` and the API refuse a 5 MB file by its size, before reading it."""
    sp = spool_root
    big = tmp_path / "big.json"
    big.write_bytes(b'{"script": "s.py", "params": {"x": "' + b"a" * (5 << 20) + b'"}}')
    rc, _out, err = _cli("--spool", str(sp.root), "submit", str(big))
    assert rc == 2 and "limit is 4194304" in err and err.count("\n") == 1
    os.link(big, sp.root / "pending" / "big.json")
    rc, out, err = _cli("--spool", str(sp.root), "ls")
    assert rc == 0 and "limit" in out


# -- 4. folders in pending/ that are no jobs ----------------------------------------------------


def test_folders_in_pending_with_names_that_are_no_ids_are_rejected(spool_root: Any) -> None:
    sp = spool_root
    for name in ("my job", "exp1.json", "noid"):
        (sp.root / "pending" / name).mkdir()
        (sp.root / "pending" / name / "result.json").write_text("the user's own file\n")
    assert sp.status()["pending"] == 3  # counted, not ignored
    (sp.root / "spool.toml").write_text(
        (sp.root / "spool.toml").read_text().replace("settle_seconds = 10", "settle_seconds = 0")
    )
    runner(sp)
    st = sp.status()
    assert st["pending"] == 0 and st["failed"] == 3, st
    kept = sorted((p / "dropped" / "result.json").read_text() for p in (sp.root / "failed").iterdir())
    assert kept == ["the user's own file\n"] * 3  # the bytes, whole, beside the reason
    for v in sp.jobs("failed"):
        assert v.result is not None and v.result["error"]["kind"] == "invalid"
        assert sp.get(v.id).state.value == "failed"  # `show` finds it


# -- 7. CSV formula injection -------------------------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(spool_root: Any) -> None:
    sp = spool_root
    rec = {
        "job": {"script": "s.py", "name": "=HYPERLINK(\"http://evil.example\",\"x\")",
                "params": {"a": "+1+2", "b": "@SUM(A1)", "c": -1.5, "d": "-cmd"}},
        "result": {"r": "=1+1", "ok": "fine"},
    }
    _finished(sp, "j1", rec)
    import csv

    rc, out, _ = _cli("--spool", str(sp.root), "results", "--csv")
    api = _client(sp).get("/results?format=csv").text
    for text in (out, api):
        row = next(csv.DictReader(io.StringIO(text)))
        assert row["name"].startswith("'=HYPERLINK(")
        assert (row["param.a"], row["param.b"], row["param.d"], row["result.r"]) == (
            "'+1+2", "'@SUM(A1)", "'-cmd", "'=1+1"
        )
        assert row["param.c"] == "-1.5" and row["result.ok"] == "fine"  # numbers stay numbers


# -- 8. the login redirect and slow request heads --------------------------------------------------


def test_the_login_redirect_stays_on_this_server(spool_root: Any) -> None:
    for path in ("//evil.example/", "///evil.example/x", "/\\evil.example/"):
        c = _client(spool_root, token="t0k")  # each a first visit: no cookie yet
        r = c.get(f"http://127.0.0.1{path}", params={"token": "t0k"})
        assert r.status_code == 303, (path, r.text, r.request.url)
        loc = r.headers["location"]
        assert loc.startswith("/") and not loc.startswith("//") and "\\" not in loc, loc


def test_a_connection_that_never_finishes_its_headers_is_closed(spool_root: Any) -> None:
    with _serve(spool_root, "--header-timeout", "1") as port:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
        silent = socket.create_connection(("127.0.0.1", port))  # never a byte
        t0 = time.monotonic()
        for s in (slow, silent):
            s.settimeout(10)
            assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - t0 < 5
        assert _get(port, "/status") == 200  # whole requests still answered


# -- 11. duplicate keys -------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_naming_the_key(spool_root: Any, tmp_path: Path) -> None:
    job = tmp_path / "dup.json"
    job.write_text('{"script": "s.py", "params": {"lr": 0.1, "lr": 0.2}}')
    rc, _out, err = _cli("--spool", str(spool_root.root), "submit", str(job))
    assert rc == 2 and "'lr' is given twice" in err
    r = _client(spool_root).post("/jobs", content=job.read_bytes(), headers={"content-type": "application/json"})
    assert r.status_code == 422 and "given twice" in r.text


# -- 10 (model side). NaN and 1e400 ------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "[1, -1e999]"])
def test_non_finite_params_are_refused_by_both_entry_points(spool_root: Any, tmp_path: Path, literal: str) -> None:
    body = f'{{"script": "s.py", "params": {{"x": {literal}}}}}'
    job = tmp_path / "nan.json"
    job.write_text(body)
    rc, _out, err = _cli("--spool", str(spool_root.root), "submit", str(job))
    assert rc == 2 and "field 'params.x" in err, err
    r = _client(spool_root).post("/jobs", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert list((spool_root.root / "pending").iterdir()) == []


# -- 5 (model side). env --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PYTHONPATH", "LD_PRELOAD", "DYLD_INSERT_LIBRARIES", "SPOOL_JOB_ID", "pythonstartup"])
def test_env_that_would_change_what_runs_is_refused(spool_root: Any, name: str) -> None:
    rc, _out, err = _cli("--spool", str(spool_root.root), "submit", "s.py", "--env", f"{name}=/tmp/x")
    assert rc == 2 and name in err and "field 'env'" in err
    r = _client(spool_root).post(
        "/jobs", json={"script": "s.py", "env": {name: "/tmp/x"}}
    )
    assert r.status_code == 422 and name in r.text


def test_env_allow_in_spool_toml_lets_a_named_variable_through(spool_root: Any) -> None:
    toml = spool_root.root / "spool.toml"
    toml.write_text(toml.read_text().replace("[defaults]", 'env_allow = ["PYTHONHASHSEED"]\n\n[defaults]'))
    sp = Spool(spool_root.root)
    assert sp.submit("s.py", env={"PYTHONHASHSEED": "0"})
    with pytest.raises(InvalidJob):
        sp.submit("s.py", env={"PYTHONPATH": "/x"})
    root = str(spool_root.root)
    rc, _out, err = _cli("--spool", root, "sweep", "s.py", "--grid", "a=1,2", "--env", "PYTHONHASHSEED=0")
    assert rc == 0, err  # a sweep's jobs pass the same rule
    rc, _out, err = _cli("--spool", root, "sweep", "s.py", "--grid", "a=1,2", "--env", "PYTHONPATH=/x")
    assert rc == 2 and "PYTHONPATH" in err
    toml.write_text(toml.read_text().replace('"PYTHONHASHSEED"', '"SPOOL_DIR"'))
    with pytest.raises(ConfigError, match="SPOOL_"):
        load_settings(spool_root.root)


# -- 12. two inits at once ---------------------------------------------------------------------


def test_two_inits_at_once_create_one_spool(tmp_path: Path) -> None:
    bin_ = Path(sys.executable).parent / "spool"
    for n in range(8):
        root = tmp_path / f"s{n}"
        procs = [
            subprocess.Popen([str(bin_), "--spool", str(root), "init"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], outs
        assert sum("created" in o for o, _ in outs) == 1


def test_init_refuses_an_existing_spool_in_process(tmp_path: Path) -> None:
    Spool.init(tmp_path / "s")
    with pytest.raises(SpoolExists):
        Spool.init(tmp_path / "s")


# -- tracebacks for mistakes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("log_cap_mb = inf", "log_cap_mb"),
        ("log_cap_mb = 1e300", "log_cap_mb"),
        ("lease_seconds = inf", "lease_seconds"),
        ("lease_seconds = nan", "lease_seconds"),
        ("settle_seconds = 1e12", "settle_seconds"),
        ('scripts = "~nosuchuser19/x"', "scripts"),
        ('scripts = "a\\u0000b"', "scripts"),
    ],
)
def test_odd_settings_are_one_line_and_exit_2(spool_root: Any, line: str, field: str) -> None:
    toml = spool_root.root / "spool.toml"
    key = line.split(" =")[0]
    lines = [ln for ln in toml.read_text().splitlines() if not ln.startswith(f"{key} =")]
    lines.insert(1, line)
    toml.write_text("\n".join(lines) + "\n")
    for verb in (("status",), ("ls",), ("runner", "--exit-when-idle")):
        rc, _out, err = _cli("--spool", str(spool_root.root), *verb)
        assert rc == 2 and f"field '{field}'" in err and err.count("\n") == 1, (verb, err)


def test_init_with_a_quote_in_the_scripts_path_writes_a_readable_spool_toml(tmp_path: Path) -> None:
    scripts = tmp_path / "o'brien \"x\" \\ y"
    scripts.mkdir()
    rc, _out, err = _cli("--spool", str(tmp_path / "s"), "init", "--scripts", str(scripts))
    assert rc == 0, err
    rc, _out, err = _cli("--spool", str(tmp_path / "s"), "status")
    assert rc == 0, err
    assert Spool(tmp_path / "s").scripts_dir == scripts.resolve()
    assert "# a running job's lease" in (tmp_path / "s" / "spool.toml").read_text()  # comments kept
    assert render_settings("x")  # the writer validates what it wrote


def test_a_nul_or_unknown_user_in_a_path_argument_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Spool("a\x00b")
    rc, _out, err = _cli("--spool", "~nosuchuser19/x", "status")
    assert rc == 2 and "no such user" in err
    rc, _out, err = _cli("--spool", str(tmp_path / "s"), "init", "--scripts", "~nosuchuser19/x")
    assert rc == 2 and "no such user" in err


def test_report_out_a_file_is_one_line(spool_root: Any, tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("mine\n")
    rc, _out, err = _cli("--spool", str(spool_root.root), "report", "--output", str(target))
    assert rc == 2 and "not a folder" in err and err.count("\n") == 1
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize("raw", [b"NaN", b"[1]", b"\"text\"", b"null", b"{\"error\": 5}", b"{\"error\": \"x\"}", b"{"])
def test_a_result_json_of_any_shape_is_shown(spool_root: Any, raw: bytes) -> None:
    _finished(spool_root, "j1", None, raw=raw, state="failed")
    _finished(spool_root, "j2", None, raw=raw, state="done")
    _every_reader_ok(spool_root, ["j1", "j2"])
    for a, b in (("j1", "j2"), ("j2", "j1")):
        rc, _out, err = _cli("--spool", str(spool_root.root), "diff", a, b)
        assert rc in (0, 1, 2) and "Traceback" not in err, err


@pytest.mark.parametrize("raw", [b"[1, 2]", b"42", b"\"x\"", b"{\"capabilities\": 5, \"jobs\": 3, \"heartbeat_seconds\": \"x\"}"])
def test_a_heartbeat_that_is_not_an_object_is_shown(spool_root: Any, raw: bytes) -> None:
    (spool_root.root / "runners" / "odd.json").write_bytes(raw)
    for extra in ((), ("--json",)):
        rc, _out, err = _cli("--spool", str(spool_root.root), "runners", *extra)
        assert rc == 0, err
    assert _client(spool_root).get("/runners").status_code == 200


# -- the fuzz: params and results through every reader ---------------------------------------------

_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from([LONE, "\udfff", "a\ud83dz", "=cmd|' /C calc'!A0", "\x00", "</script><b>"]),
    st.just("x" * 300_000),
)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), _text,
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("nan"), float("inf"), -float("inf")]),
)
_value = st.recursive(_scalar, lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(_text, kids, max_size=3)), max_leaves=8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(params=st.dictionaries(_text, _value, max_size=4), result=_value, metrics=st.lists(_value, max_size=3))
def test_fuzz_hostile_params_and_results_through_every_reader(tmp_path_factory: Any, params: Any, result: Any, metrics: Any) -> None:
    root = tmp_path_factory.mktemp("fuzz") / "spool"
    sp = Spool.init(root)
    (sp.scripts_dir / "s.py").write_text("print('{}')\n")
    job = {"script": "s.py", "params": params, "name": next(iter(params), None) if params else None}
    for job_id, state in (("d1", "done"), ("f1", "failed")):
        folder = _finished(sp, job_id, {"job": job, "result": result, "error": None if state == "done" else {"kind": "exit", "message": result}}, state=state)
        (folder / "job.json").write_text(json.dumps(job))
        (folder / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in metrics) + "\n")
    _every_reader_ok(sp, ["d1", "f1"])
    from report.build import build

    build(sp, root / "report")
    assert sp.status()["total"] == 2  # the spool is still readable


def test_a_job_file_with_an_integer_of_5000_digits_is_shown_not_raised(spool_root: Any) -> None:
    """json refuses integers over 4300 digits with a bare ValueError: `ls` crashed on one."""
    (spool_root.root / "pending" / "bigint.json").write_bytes(b'{"script": "s.py", "priority": 1' + b"0" * 5000 + b"}")
    rc, out, err = _cli("--spool", str(spool_root.root), "ls")
    assert rc == 0 and "not valid JSON" in out, err
    assert _client(spool_root).get("/jobs").status_code == 200


def test_attempts_and_notes_of_any_shape_are_shown(spool_root: Any) -> None:
    """`show` reads earlier attempts' records and the job's notes through spool.untrusted too."""
    folder = _finished(spool_root, "j1", {"result": {"x": LONE}})
    (folder / "attempts" / "1").mkdir(parents=True)
    (folder / "attempts" / "1" / "result.json").write_text(json.dumps({"state": LONE, "host": LONE, "error": 5}))
    (folder / "attempts" / "2").mkdir()
    os.mkfifo(folder / "attempts" / "2" / "result.json")
    notes = spool_root.root / "notes" / "j1"
    notes.mkdir(parents=True)
    os.mkfifo(notes / "20260101T000000-abcd.txt")
    (notes / "20260101T000001-abce.txt").write_bytes(b"a note \xed\xa0\x80\n")
    for extra in ((), ("--json",)):
        rc, _out, err = _cli("--spool", str(spool_root.root), "show", "j1", *extra)
        assert rc == 0, err
    assert _client(spool_root).get("/jobs/j1").status_code == 200
