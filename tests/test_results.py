"""`Spool.results()` / `Spool.metrics()` and `spool results`, over job folders written as the runner writes them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from spool.api import Spool
from spool.cli.main import main
from spool.errors import NotFound, UsageError
from spool.jobs import failure_record
from spool.model import job_from_dict
from spool.protocol import publish_bytes, publish_json
from spool.results import FIXED_COLUMNS

SWEEP = "20261125T030000-000000-swp1"


# -- writing jobs exactly as submit and the runner do ---------------------------------------------
def _job_bytes(job: dict[str, Any]) -> bytes:
    return json.dumps(job, indent=1).encode() + b"\n"  # what `Spool.submit` publishes


def finish(
    sp: Spool,
    job_id: str,
    params: dict[str, Any],
    result: dict[str, Any] | None,
    *,
    state: str = "done",
    error: dict[str, Any] | None = None,
    sweep: str | None = None,
    metrics: list[dict[str, Any]] | None = None,
    git: dict[str, Any] | None = None,
    host: str = "desktop",
    duration: float = 12.5,
    exit_code: int | None = 0,
) -> Path:
    """A job folder in done/ or failed/ as `runner.core.loop.Runner._finish` leaves it."""
    user_job: dict[str, Any] = {"script": "train.py", "params": params}
    if sweep:
        user_job["sweep"] = sweep
    folder = sp.root / state / job_id
    folder.mkdir()
    publish_bytes(folder / "job.json", _job_bytes(user_job))
    publish_json(
        folder / "claim.json",
        {
            "token": "desktop.1.abcd",
            "runner": "desktop.1",
            "host": host,
            "attempt": 1,
            "claimed_at": "2026-11-25T03:40:00.000001+00:00",
        },
    )
    lines = metrics if metrics is not None else ([result] if result is not None else [])
    publish_bytes(folder / "metrics.jsonl", b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    publish_bytes(folder / "stdout.log", b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    publish_bytes(folder / "stderr.log", b"")
    (folder / "outputs").mkdir()
    rec = {
        "format": 1,
        "id": job_id,
        "state": state,
        "job": job_from_dict(user_job).model_dump(mode="json"),
        "result": result,
        "error": error,
        "runner": "desktop.1",
        "host": host,
        "python": sys.executable,
        "python_version": "3.11.7",
        "device": "cpu",
        "started": "2026-11-25T03:40:00.123456+00:00",
        "ended": "2026-11-25T03:40:12.623456+00:00",
        "duration": duration,
        "exit_code": exit_code,
        "attempt": 1,
        "metrics_count": len(lines),
        "provenance": {"git": git} if git else {},
    }
    publish_json(folder / "result.json", rec, fsync=False)
    return folder


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    spool = Spool.init(tmp_path / "spool-dir")
    (spool.scripts_dir / "train.py").write_text("print('{}')\n")
    return spool


@pytest.fixture
def mixed(sp: Spool) -> Spool:
    """Three done jobs, three failed ones (one without result.json), a pending and a claimed one."""
    git = {"commit": "a" * 40, "branch": "main", "dirty": False}
    finish(
        sp,
        "j1",
        {"lr": 0.1, "hidden": 64, "opt": {"name": "adam", "beta": 0.9}},
        {"acc": 0.91, "val": {"acc": 0.88, "loss": 0.31}, "curve": [1, 2, 3]},
        git=git,
    )
    finish(
        sp,
        "j2",
        {"lr": 0.01, "hidden": 128, "opt": {"name": "sgd", "beta": 0.0}},
        {"acc": 0.95, "val": {"acc": 0.93, "loss": 0.2}, "curve": [4, 5]},
        git=git,
        host="macbook",
    )
    finish(
        sp,
        "j3",
        {"lr": 1, "hidden": 32, "opt": {"name": "sgd", "beta": 0.5}},
        {"acc": 0.5, "val": {"acc": 0.45, "loss": 0.9}, "curve": []},
        git=git,
    )
    finish(
        sp,
        "j4",
        {"lr": 0.5, "hidden": 16},
        None,
        state="failed",
        exit_code=1,
        error={"kind": "exit", "message": "exit code 1", "stderr_tail": "Traceback...\nValueError: x\n"},
    )
    # cancelled while pending: the record `spool.jobs.failure_record` writes (no run metadata)
    f5 = sp.root / "failed" / "j5"
    f5.mkdir()
    publish_bytes(f5 / "job.json", _job_bytes({"script": "train.py", "params": {"lr": 0.2, "hidden": 8}}))
    job5 = job_from_dict({"script": "train.py", "params": {"lr": 0.2, "hidden": 8}}).model_dump(mode="json")
    publish_json(f5 / "result.json", failure_record("j5", job5, "cancelled", "cancelled while pending"))
    # a failed folder whose result.json never got written
    f6 = sp.root / "failed" / "j6"
    f6.mkdir()
    publish_bytes(f6 / "job.json", _job_bytes({"script": "train.py", "params": {"lr": 0.3, "hidden": 4}}))
    sp.submit("train.py", {"lr": 9.0}, job_id="j7")  # pending: no result
    claimed = sp.root / "claimed" / "j8@desktop.1.beef"
    claimed.mkdir()
    publish_bytes(claimed / "job.json", _job_bytes({"script": "train.py", "params": {"lr": 8.0}}))
    publish_bytes(claimed / "metrics.jsonl", b'{"loss": 1.0}\n{"loss": 0.5}\n')
    return sp


# -- results ------------------------------------------------------------------------------------
def test_columns_order_and_dtypes(mixed: Spool) -> None:
    df = mixed.results()
    assert list(df["id"]) == ["j1", "j2", "j3"]
    cols = list(df.columns)
    assert cols[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    rest = cols[len(FIXED_COLUMNS) :]
    assert rest == [
        "param.lr",
        "param.hidden",
        "param.opt.name",
        "param.opt.beta",
        "result.acc",
        "result.val.acc",
        "result.val.loss",
        "result.curve",
        "git.commit",
        "git.branch",
        "git.dirty",
    ]
    assert df["param.lr"].dtype == "float64"  # 0.1, 0.01 and 1: one numeric column
    assert df["param.hidden"].dtype == "int64"
    assert df["result.val.acc"].dtype == "float64"
    assert df["result.val.loss"].tolist() == [0.31, 0.2, 0.9]
    assert df["result.curve"].tolist() == [[1, 2, 3], [4, 5], []]  # lists stay lists
    assert df["param.opt.name"].tolist() == ["adam", "sgd", "sgd"]
    for col in ("started", "ended"):
        assert isinstance(df[col].dtype, pd.DatetimeTZDtype) and str(df[col].dt.tz) == "UTC"
    assert df["started"].iloc[0] == pd.Timestamp("2026-11-25T03:40:00.123456Z")
    assert df["duration"].dtype == "float64"
    assert pd.api.types.is_integer_dtype(df["attempt"]) and pd.api.types.is_integer_dtype(df["exit_code"])
    assert isinstance(df["state"].dtype, pd.CategoricalDtype) and set(df["state"]) == {"done"}
    assert df["host"].tolist() == ["desktop", "macbook", "desktop"]
    assert df["script"].tolist() == ["train.py"] * 3
    assert df["git.commit"].tolist() == ["a" * 40] * 3 and df["git.dirty"].tolist() == [False] * 3
    assert df["error.kind"].isna().all()
    # numeric work needs no casting
    assert df["result.acc"].mean() == pytest.approx((0.91 + 0.95 + 0.5) / 3)
    assert df.loc[df["result.val.acc"].idxmax(), "param.lr"] == 0.01


def test_failed_jobs_and_state_filter(mixed: Spool) -> None:
    failed = mixed.results(state="failed")
    assert list(failed["id"]) == ["j4", "j5", "j6"]
    assert set(failed["state"]) == {"failed"}
    assert failed["error.kind"].tolist() == ["exit", "cancelled", "unknown"]
    assert failed["error.message"].iloc[0] == "exit code 1"
    assert failed["param.lr"].tolist() == [0.5, 0.2, 0.3]  # j6 from its job.json
    assert failed["param.hidden"].dtype == "int64"
    assert failed["exit_code"].iloc[0] == 1 and failed["exit_code"].iloc[1:].isna().all()
    assert pd.api.types.is_numeric_dtype(failed["exit_code"]) and pd.api.types.is_numeric_dtype(
        failed["duration"]
    )
    assert failed["started"].iloc[1:].isna().all() and isinstance(failed["started"].dtype, pd.DatetimeTZDtype)
    assert not any(c.startswith("result.") for c in failed.columns)  # no failed job had a result

    both = mixed.results(state=None)
    assert list(both["id"]) == ["j1", "j2", "j3", "j4", "j5", "j6"]  # sorted by id; j7, j8 have no result
    assert both["state"].tolist() == ["done"] * 3 + ["failed"] * 3
    assert both["result.acc"].iloc[3:].isna().all()
    assert "j7" not in set(both["id"]) and "j8" not in set(both["id"])
    with pytest.raises(UsageError, match="state"):
        mixed.results(state="pending")


def test_failed_status_result_is_kept(sp: Spool) -> None:
    finish(
        sp,
        "s1",
        {"lr": 0.1},
        {"status": 500, "message": "bad data"},
        state="failed",
        error={"kind": "status", "message": "result status 500"},
    )
    df = sp.results(state="failed")
    assert df["result.status"].tolist() == [500] and df["error.kind"].tolist() == ["status"]


def test_no_git_columns_without_provenance(sp: Spool) -> None:
    finish(sp, "a", {"x": 1}, {"y": 2.0})
    df = sp.results()
    assert not any(c.startswith("git.") for c in df.columns)
    assert df["param.x"].tolist() == [1] and df["result.y"].tolist() == [2.0]


def test_empty_spool_has_the_fixed_columns(sp: Spool) -> None:
    df = sp.results(state=None)
    assert len(df) == 0 and list(df.columns) == list(FIXED_COLUMNS)
    assert isinstance(df["started"].dtype, pd.DatetimeTZDtype)
    assert pd.api.types.is_numeric_dtype(df["duration"])


def test_sweep_filter(sp: Spool) -> None:
    (sp.root / "sweeps" / f"{SWEEP}.yaml").write_text(f"id: {SWEEP}\nscript: train.py\n")
    for i in range(3):
        finish(sp, f"{SWEEP}-{i:05d}", {"lr": 0.1 * (i + 1)}, {"acc": 0.5 + i / 10}, sweep=SWEEP)
    finish(sp, f"{SWEEP}-00003", {"lr": 9}, {"acc": 0.1}, sweep="another")  # named like one, is not one
    finish(sp, f"{SWEEP}-extra", {"lr": 9}, {"acc": 0.1}, sweep=SWEEP)  # not a sweep member id
    finish(
        sp,
        f"{SWEEP}-00004",
        {"lr": 0.7},
        None,
        sweep=SWEEP,
        state="failed",
        error={"kind": "timeout", "message": "timed out after 10s"},
    )
    finish(sp, "loner", {"lr": 0.3}, {"acc": 0.2})

    df = sp.results(sweep=SWEEP)
    assert list(df["id"]) == [f"{SWEEP}-{i:05d}" for i in range(3)]
    assert set(df["sweep"]) == {SWEEP}
    assert list(sp.results(sweep=SWEEP, state=None)["id"])[-1] == f"{SWEEP}-00004"
    assert len(sp.results(state=None)) == 7

    (sp.root / "sweeps" / "queued.yaml").write_text("id: queued\n")
    assert len(sp.results(sweep="queued")) == 0  # defined, nothing finished yet
    with pytest.raises(NotFound, match="no sweep"):
        sp.results(sweep="nope")


def test_ignores_temp_names_and_stray_files(sp: Spool) -> None:
    finish(sp, "ok", {"a": 1}, {"b": 2})
    (sp.root / "done" / ".hidden").mkdir()
    (sp.root / "done" / "stray.txt").write_text("not a job")
    (sp.root / "done" / "j.tmp").mkdir()
    assert list(sp.results()["id"]) == ["ok"]


def test_unreadable_result_in_failed_reads_as_unknown(sp: Spool) -> None:
    folder = finish(sp, "torn", {"a": 1}, None, state="failed", error={"kind": "exit", "message": "x"})
    (folder / "result.json").unlink()
    (folder / "result.json").write_bytes(b'{"format": 1, "id": "to')
    df = sp.results(state="failed")
    assert df["error.kind"].tolist() == ["unknown"] and df["param.a"].tolist() == [1]


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_of_a_job(sp: Spool) -> None:
    lines = [{"epoch": e, "loss": 1.0 / (e + 1), "val": {"acc": 0.5 + e / 10}} for e in range(4)]
    lines.append({"step": 40, "id": "mine", "acc": 0.9})  # the script's own step and id keys
    finish(sp, "m1", {"lr": 0.1}, {"acc": 0.9}, metrics=lines)
    m = sp.metrics("m1")
    assert list(m.columns) == ["id", "step", "epoch", "loss", "val.acc", "metric.step", "metric.id", "acc"]
    assert m["step"].tolist() == [0, 1, 2, 3, 4] and m["step"].dtype == "int64"
    assert set(m["id"]) == {"m1"}
    assert m["loss"].iloc[1] == pytest.approx(0.5) and m["val.acc"].iloc[3] == pytest.approx(0.8)
    assert m["metric.step"].iloc[4] == 40 and m["metric.id"].iloc[4] == "mine"


def test_metrics_of_a_sweep_and_a_running_job(mixed: Spool) -> None:
    sp = mixed
    (sp.root / "sweeps" / f"{SWEEP}.yaml").write_text(f"id: {SWEEP}\n")
    for i in range(3):
        finish(
            sp,
            f"{SWEEP}-{i:05d}",
            {"lr": i},
            {"acc": i},
            sweep=SWEEP,
            metrics=[{"loss": 1.0 - i / 10 - s / 100} for s in range(2 + i)],
        )
    finish(sp, f"{SWEEP}-00009", {"lr": 9}, {"acc": 9}, sweep="other")
    m = sp.metrics(SWEEP)
    assert len(m) == 2 + 3 + 4
    assert m["id"].unique().tolist() == [f"{SWEEP}-{i:05d}" for i in range(3)]
    assert m.groupby("id")["step"].max().tolist() == [1, 2, 3]
    running = sp.metrics("j8")  # a claimed job: the lines so far
    assert running["loss"].tolist() == [1.0, 0.5]
    pending = sp.metrics("j7")
    assert len(pending) == 0 and list(pending.columns) == ["id", "step"]


def test_metrics_unknown_is_not_found(sp: Spool) -> None:
    with pytest.raises(NotFound):
        sp.metrics("no-such-job")


# -- the command line ---------------------------------------------------------------------------
def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_table(mixed: Spool, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--spool", str(mixed.root), "results")
    assert code == 0 and err == ""
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["id", "state"] and "lr" in header and "val.acc" in header and "host" in header
    assert header[-1] == "duration"  # no failed rows: no error columns
    assert [ln.split()[0] for ln in lines[1:]] == ["j1", "j2", "j3"]
    assert "0.91" in lines[1] and "12.5" in lines[1]

    code, out, _ = run(capsys, "--spool", str(mixed.root), "results", "--all", "--sort", "lr", "--desc")
    assert code == 0
    ids = [ln.split()[0] for ln in out.splitlines()[1:]]
    assert ids == ["j3", "j4", "j6", "j5", "j1", "j2"]  # 1, 0.5, 0.3, 0.2, 0.1, 0.01
    assert "error.kind" in out.splitlines()[0] and "cancelled" in out

    code, out, _ = run(
        capsys, "--spool", str(mixed.root), "results", "--failed", "--cols", "id,error.kind", "--limit", "2"
    )
    assert out.split() == ["id", "error.kind", "j4", "exit", "j5", "cancelled"]


def test_cli_csv_and_json(mixed: Spool, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--spool", str(mixed.root), "results", "--all", "--csv")
    assert code == 0
    back = pd.read_csv(io.StringIO(out))
    assert len(back) == 6 and list(back.columns) == list(mixed.results(state=None).columns)
    assert back["param.lr"].tolist() == [0.1, 0.01, 1, 0.5, 0.2, 0.3]

    code, out, _ = run(capsys, "--spool", str(mixed.root), "results", "--json", "--sort", "result.acc")
    records = json.loads(out)
    assert [r["id"] for r in records] == ["j3", "j1", "j2"]
    assert records[0]["result.val.acc"] == 0.45 and records[0]["error.kind"] is None
    assert records[0]["started"].startswith("2026-11-25T03:40:00.123456")

    code, out, _ = run(
        capsys, "--spool", str(mixed.root), "--json", "results", "--cols", "id,acc", "--limit", "1"
    )
    assert json.loads(out) == [{"id": "j1", "result.acc": 0.91}]


def test_cli_usage_errors(mixed: Spool, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--spool", str(mixed.root), "results", "--sort", "nosuch")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert "'nosuch'" in err and "param.lr" in err and "result.val.acc" in err
    for argv in (["--failed", "--all"], ["--csv", "--json"], ["--cols", "id,bogus"], ["--sweep", "nope"]):
        code, _, err = run(capsys, "--spool", str(mixed.root), "results", *argv)
        assert code == 2 and len(err.splitlines()) == 1, argv


def test_cli_empty(sp: Spool, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--spool", str(sp.root), "results")
    assert code == 0 and out.strip() == "no finished jobs"
    code, out, _ = run(capsys, "--spool", str(sp.root), "results", "--csv")
    assert out.strip() == ",".join(FIXED_COLUMNS)


def test_status_and_ls_do_not_import_pandas(mixed: Spool) -> None:
    code = (
        "import sys\n"
        "from spool.cli.main import main\n"
        f"root = {str(mixed.root)!r}\n"
        "codes = [main(['--spool', root, 'status']), main(['--spool', root, 'ls']),\n"
        "         main(['--spool', root, 'show', 'j1']), main(['--spool', root, 'status', '--json'])]\n"
        "print('RESULT', codes, 'pandas' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "RESULT [0, 0, 0, 0] False"
