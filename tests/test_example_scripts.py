"""The example scripts in ``scripts/``, run as real subprocesses under the script contract.

No runner is involved: each test lays out what a runner would (an ``outputs/`` folder as cwd
and ``SPOOL_OUTPUT_DIR``, the ``SPOOL_*`` variables, params as flags, argv4 or stdin) and
checks the last JSON object on stdout, which the contract takes as the result.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
DATA = ROOT / "spool-dir" / "data"

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="torch is not importable (pip install 'housespool[ml]')"
)
needs_sklearn = pytest.mark.skipif(
    not HAS_SKLEARN, reason="scikit-learn is not importable (pip install 'housespool[ml]')"
)


def json_objects(stdout: str) -> list[dict]:
    """Every stdout line that is a JSON object, in order: the contract's metrics records."""
    records = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def run_script(
    tmp_path: Path,
    script: str,
    args: list[str] | tuple[str, ...] = (),
    *,
    params: dict | None = None,
    stdin: str | None = None,
    env: dict[str, str | None] | None = None,
    timeout: float = 60,
) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """Run ``scripts/<script>`` as a runner would; return the process, the result and outputs/."""
    outputs = tmp_path / "outputs"
    outputs.mkdir(exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SPOOL_")}
    full_env.update(
        {
            "SPOOL_JOB_ID": "20260101T000000-000000-test",
            "SPOOL_PARAMS": json.dumps(params or {}),
            "SPOOL_OUTPUT_DIR": str(outputs),
            "SPOOL_DIR": str(DATA.parent),
            "SPOOL_DATA_DIR": str(DATA),
            "SPOOL_DEVICE": "cpu",
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(env or {})
    full_env = {k: v for k, v in full_env.items() if v is not None}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=outputs,
        env=full_env,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    last_line = proc.stdout.strip().splitlines()[-1]
    result = json.loads(last_line)
    assert isinstance(result, dict), f"last stdout line of {script} is not a JSON object: {last_line!r}"
    return proc, result, outputs


def argv4(data_file: str, data_path: Path, write_path: Path, execution: dict) -> list[str]:
    return [data_file, str(data_path) + os.sep, str(write_path) + os.sep, json.dumps(execution)]


# --- data -------------------------------------------------------------------------------------


def test_bundled_data_is_small_and_well_formed():
    for name in ("iris_small.csv", "wide_categories.csv"):
        path = DATA / name
        assert path.is_file(), path
        assert path.stat().st_size < 20_000
    iris = (DATA / "iris_small.csv").read_text().splitlines()
    assert 50 <= len(iris) - 1 <= 70
    wide = [line.split(",")[1] for line in (DATA / "wide_categories.csv").read_text().splitlines()[1:]]
    assert len(set(wide)) >= 300


# --- encode_csv.py (argv4) --------------------------------------------------------------------


def test_encode_csv_encodes_and_prefixes(tmp_path):
    pd = pytest.importorskip("pandas")
    write = tmp_path / "out"
    write.mkdir()
    execution = {"max_columns": 50, "drop": ["id"]}
    proc, result, _ = run_script(tmp_path, "encode_csv.py", argv4("iris_small.csv", DATA, write, execution))

    assert result == {
        "status": 200,
        "rows": 60,
        "columns_in": 9,
        "columns_out": 13,
        "output": "iris_small_encoded.csv",
        "path": f"{write}{os.sep}iris_small_encoded.csv",
    }
    assert len(json_objects(proc.stdout)) == 1
    encoded = pd.read_csv(write / "iris_small_encoded.csv")
    assert encoded.shape == (60, 13)
    columns = list(encoded.columns)
    assert "num_id" not in columns
    for name in ("num_sepal_length", "num_petal_width", "bool_is_large", "date_measured_on"):
        assert name in columns
    species = [c for c in columns if c.startswith("cat_species_")]
    assert sorted(species) == ["cat_species_setosa", "cat_species_versicolor", "cat_species_virginica"]
    assert len([c for c in columns if c.startswith("cat_region_")]) == 4
    assert all(c.split("_")[0] in {"num", "cat", "bool", "date"} for c in columns)
    assert (encoded[species].sum(axis=1) == 1).all()
    assert set(encoded["bool_is_large"].unique()) <= {0, 1}
    assert encoded["date_measured_on"].str.match(r"^\d{4}-\d{2}-\d{2}$").all()


def test_encode_csv_default_options_keep_every_column(tmp_path):
    pytest.importorskip("pandas")
    _, result, _ = run_script(tmp_path, "encode_csv.py", argv4("iris_small.csv", DATA, tmp_path, {}))
    assert result["status"] == 200
    assert result["columns_out"] == 14
    assert (tmp_path / "iris_small_encoded.csv").is_file()


def test_encode_csv_refuses_too_many_columns_with_status_400(tmp_path):
    pytest.importorskip("pandas")
    write = tmp_path / "out"
    write.mkdir()
    _, result, _ = run_script(tmp_path, "encode_csv.py", argv4("wide_categories.csv", DATA, write, {}))
    assert result["status"] == 400
    assert "max_columns=100" in result["message"]
    assert "category" in result["message"]
    assert list(write.iterdir()) == []

    # a higher limit lets the same file through
    _, result, _ = run_script(
        tmp_path, "encode_csv.py", argv4("wide_categories.csv", DATA, write, {"max_columns": 400})
    )
    assert result["status"] == 200
    assert result["columns_out"] == 300 + 3


def test_encode_csv_missing_file_is_status_404(tmp_path):
    _, result, _ = run_script(tmp_path, "encode_csv.py", argv4("no_such_file.csv", DATA, tmp_path, {}))
    assert result["status"] == 404
    assert "no_such_file.csv" in result["message"]


def test_encode_csv_bad_input_is_status_400_exit_0(tmp_path):
    pytest.importorskip("pandas")
    _, result, _ = run_script(tmp_path, "encode_csv.py", ["iris_small.csv", str(DATA) + os.sep])
    assert result["status"] == 400 and "expected 4 arguments" in result["message"]
    args = ["iris_small.csv", str(DATA) + os.sep, str(tmp_path) + os.sep, "{not json"]
    _, result, _ = run_script(tmp_path, "encode_csv.py", args)
    assert result["status"] == 400 and "JSON" in result["message"]
    _, result, _ = run_script(
        tmp_path, "encode_csv.py", argv4("iris_small.csv", DATA, tmp_path, {"drop": ["nope"]})
    )
    assert result["status"] == 400 and "nope" in result["message"]


def test_encode_csv_concatenates_paths_as_strings(tmp_path):
    """The old scripts do ``dataPath + dataFileName``: a sub-folder in the file name works."""
    pytest.importorskip("pandas")
    shutil.copy(DATA / "iris_small.csv", tmp_path / "copy.csv")
    write = tmp_path / "new" / "folder"
    _, result, _ = run_script(tmp_path, "encode_csv.py", argv4("copy.csv", tmp_path, write, {"drop": "id"}))
    assert result["status"] == 200 and result["output"] == "copy_encoded.csv"
    assert (write / "copy_encoded.csv").is_file()


# --- classify.py (flags) ----------------------------------------------------------------------


@needs_sklearn
@pytest.mark.parametrize(
    "flags",
    [
        ["--model=logreg", "--C=0.5"],
        ["--model=rf", "--n-estimators=20", "--max-depth=4", "--seed=3"],
        ["--model=svm", "--C=2", "--test-size=0.3"],
    ],
    ids=["logreg", "rf", "svm"],
)
def test_classify_wine(tmp_path, flags):
    proc, result, outputs = run_script(tmp_path, "classify.py", ["--dataset=wine", *flags])
    assert set(result) == {"accuracy", "f1_macro", "train_seconds", "n_train", "n_test"}
    assert len(json_objects(proc.stdout)) == 1
    assert 0.8 <= result["accuracy"] <= 1.0
    assert 0.0 <= result["f1_macro"] <= 1.0
    assert result["n_train"] + result["n_test"] == 178
    assert result["train_seconds"] < 2
    rows = (outputs / "confusion.csv").read_text().splitlines()
    assert len(rows) == 1 + 3
    counts = [int(v) for row in rows[1:] for v in row.split(",")[1:]]
    assert sum(counts) == result["n_test"]


@needs_sklearn
def test_classify_digits_with_underscore_flags(tmp_path):
    _, result, outputs = run_script(
        tmp_path,
        "classify.py",
        [
            "--dataset",
            "digits",
            "--model",
            "rf",
            "--n_estimators",
            "10",
            "--max_depth",
            "none",
            "--test_size",
            "0.2",
        ],
    )
    assert result["n_train"] + result["n_test"] == 1797
    assert result["accuracy"] > 0.8
    assert len((outputs / "confusion.csv").read_text().splitlines()) == 1 + 10


@needs_sklearn
def test_classify_rejects_a_bad_flag_with_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "classify.py"), "--model=knn"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--model" in proc.stderr


# --- train_mlp.py (flags, torch) --------------------------------------------------------------


def check_mlp_run(proc: subprocess.CompletedProcess, result: dict, outputs: Path, epochs: int) -> None:
    records = json_objects(proc.stdout)
    per_epoch = records[:-1]
    assert [r["epoch"] for r in per_epoch] == list(range(1, epochs + 1))
    for record in per_epoch:
        assert set(record) == {"epoch", "train_loss", "val_loss", "val_accuracy"}
        assert record["train_loss"] > 0 and record["val_loss"] > 0
        assert 0.0 <= record["val_accuracy"] <= 1.0
    assert set(result) >= {"val_accuracy", "val_loss", "epochs", "device", "seconds"}
    assert result["epochs"] == epochs
    assert result["val_accuracy"] == per_epoch[-1]["val_accuracy"]
    assert (outputs / "model.pt").is_file()


@needs_torch
@needs_sklearn
def test_train_mlp_digits_on_cpu(tmp_path):
    import torch

    flags = ["--lr=0.003", "--hidden=32", "--layers=2", "--epochs=3", "--batch-size=64", "--seed=1"]
    proc, result, outputs = run_script(tmp_path, "train_mlp.py", flags, env={"SPOOL_DEVICE": "cpu"})
    check_mlp_run(proc, result, outputs, epochs=3)
    assert result["device"] == "cpu"
    assert result["val_accuracy"] > 0.5
    state = torch.load(outputs / "model.pt", map_location="cpu")
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}
    assert tuple(state["0.weight"].shape) == (32, 64)


@needs_torch
def test_train_mlp_device_auto_without_spool_device(tmp_path):
    """``--device auto`` with no SPOOL_DEVICE probes CUDA and MPS and lands on a working device."""
    flags = ["--data=synthetic", "--device=auto", "--epochs=2", "--optimizer=sgd", "--lr=0.05"]
    proc, result, outputs = run_script(tmp_path, "train_mlp.py", flags, env={"SPOOL_DEVICE": None})
    check_mlp_run(proc, result, outputs, epochs=2)
    import torch

    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert result["device"] == "cpu"
    assert result["val_accuracy"] > 0.5


@needs_torch
@pytest.mark.parametrize("requested", ["cuda", "mps"])
def test_train_mlp_falls_back_to_cpu_for_a_missing_device(tmp_path, requested):
    import torch

    present = torch.cuda.is_available() if requested == "cuda" else torch.backends.mps.is_available()
    if present:
        pytest.skip(f"{requested} is present on this machine; the fallback is not exercised")
    flags = ["--data=synthetic", "--epochs=1", "--layers=1", "--hidden=16"]
    proc, result, outputs = run_script(tmp_path, "train_mlp.py", flags, env={"SPOOL_DEVICE": requested})
    check_mlp_run(proc, result, outputs, epochs=1)
    assert result["device"] == "cpu"
    assert "not usable" in proc.stderr


@needs_torch
def test_train_mlp_resumed_from_its_checkpoint_ends_as_an_uninterrupted_run(tmp_path):
    """Two epochs, then a run asked for four that finds the checkpoint: the same model as four
    epochs in one go (model, optimiser and shuffling state all carried), two epochs trained."""
    flags = ["--data=synthetic", "--hidden=16", "--layers=1", "--seed=3"]
    straight = tmp_path / "straight"
    straight.mkdir()
    _, whole, _ = run_script(
        straight, "train_mlp.py", [*flags, "--epochs=4"], env={"SPOOL_CHECKPOINT_DIR": ""}
    )
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    env = {"SPOOL_CHECKPOINT_DIR": str(ckpt)}
    part = tmp_path / "part"
    part.mkdir()
    _, first, _ = run_script(part, "train_mlp.py", [*flags, "--epochs=2"], env=env)
    assert first["epochs_run"] == 2 and "resumed_from" not in first
    assert sorted(p.name for p in ckpt.iterdir()) == ["train_mlp.pt"]  # no temp file left
    proc, resumed, _ = run_script(part, "train_mlp.py", [*flags, "--epochs=4"], env=env)
    assert [r["epoch"] for r in json_objects(proc.stdout)[:-1]] == [3, 4]
    assert (resumed["resumed_from"], resumed["epochs_run"]) == (3, 2)
    assert (resumed["val_loss"], resumed["val_accuracy"]) == (whole["val_loss"], whole["val_accuracy"])


@needs_torch
@pytest.mark.parametrize("damage", ["torn", "other-settings"])
def test_train_mlp_starts_afresh_from_a_checkpoint_it_cannot_use(tmp_path, damage):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    env = {"SPOOL_CHECKPOINT_DIR": str(ckpt)}
    flags = ["--data=synthetic", "--hidden=16", "--layers=1", "--epochs=2"]
    run_script(tmp_path, "train_mlp.py", flags, env=env)
    if damage == "torn":
        path = ckpt / "train_mlp.pt"
        path.write_bytes(path.read_bytes()[:100])
    else:
        flags = [*flags, "--lr=0.01"]
    proc, result, _ = run_script(tmp_path, "train_mlp.py", flags, env=env)
    assert result["epochs_run"] == 2 and "resumed_from" not in result
    assert "ignoring" in proc.stderr


# --- noop.py, json_echo.py, report_params.py ---------------------------------------------------


def test_noop_ignores_every_argument(tmp_path):
    proc, result, _ = run_script(tmp_path, "noop.py", ["--lr=0.1", "--whatever", "positional", "-x"])
    assert result == {"ok": True}
    assert proc.stdout == '{"ok": true}\n'


def test_json_echo_reads_params_from_stdin(tmp_path):
    params = {"a": 1, "b": 2.5, "flag": True, "name": "x y", "nested": {"c": 10}, "items": [1, 2]}
    _, result, _ = run_script(tmp_path, "json_echo.py", stdin=json.dumps(params), params=params)
    assert result == {"echo": params, "sum": 3.5}


def test_json_echo_empty_input_and_bad_input(tmp_path):
    _, result, _ = run_script(tmp_path, "json_echo.py", stdin="")
    assert result == {"echo": {}, "sum": 0}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "json_echo.py")],
        input="[1, 2]",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "JSON object" in proc.stderr


def test_report_params_shows_argv_and_env_verbatim(tmp_path):
    args = ["--lr=0.01", "--name", "two words", "", "--quote='x'", "ünïcode", "-config", "base.yaml"]
    params = {"lr": 0.01, "name": "two words"}
    _, result, outputs = run_script(
        tmp_path, "report_params.py", args, params=params, env={"SPOOL_EXTRA": "1"}
    )
    assert result["argv"] == args
    env = result["env"]
    for key in (
        "SPOOL_JOB_ID",
        "SPOOL_PARAMS",
        "SPOOL_OUTPUT_DIR",
        "SPOOL_DIR",
        "SPOOL_DATA_DIR",
        "SPOOL_DEVICE",
    ):
        assert key in env, key
    assert env["SPOOL_EXTRA"] == "1"
    assert env["SPOOL_OUTPUT_DIR"] == str(outputs)
    assert json.loads(env["SPOOL_PARAMS"]) == params
    assert result["params"] == params
    assert Path(result["cwd"]).resolve() == outputs.resolve()
    assert all(key.startswith("SPOOL_") for key in env)
