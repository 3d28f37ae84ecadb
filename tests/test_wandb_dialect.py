"""The parts of the W&B sweep dialect real files use: early_terminate, controller, a command
that names the script, ${args_no_hyphens}, nested parameters, YAML 1.2 numbers, and unknown
keys refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from spool.api import Spool
from spool.errors import SweepError
from spool.sweeps import plan_from_wandb
from spool.sweeps.yaml12 import load_yaml12

BIN = Path(sys.executable).parent / "spool"
BASE = "parameters:\n  lr: {values: [0.1, 0.01]}\n"


def sweep_cli(sp: Spool, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    out = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "sweep", str(f), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out


def plan(text: str, **kw: Any) -> Any:
    return plan_from_wandb(text, "sweep.yaml", **kw)


def refused(text: str, *needles: str) -> str:
    with pytest.raises(SweepError) as info:
        plan(text)
    message = str(info.value)
    assert "sweep.yaml" in message and all(n in message for n in needles), message
    return message


# ---- early_terminate ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["grid", "random"])
def test_early_terminate_is_accepted_with_grid_and_random(method: str) -> None:
    text = (
        f"method: {method}\nrun_cap: 4\n{BASE}metric: {{name: val_loss}}\n"
        "early_terminate:\n  type: hyperband\n  min_iter: 3\n"
    )
    p = plan(text)
    assert p.early_terminate == {"type": "hyperband", "min_iter": 3, "eta": 3, "strict": True}
    assert p.metric == {"name": "val_loss", "goal": "minimize"}


def test_early_terminate_keeps_max_iter_s_eta_and_strict() -> None:
    text = (
        f"method: grid\n{BASE}metric: {{name: acc, goal: maximize}}\n"
        "early_terminate: {type: hyperband, max_iter: 27, s: 2, eta: 2, strict: false}\n"
    )
    assert plan(text).early_terminate == {
        "type": "hyperband",
        "max_iter": 27,
        "s": 2,
        "eta": 2,
        "strict": False,
    }


def test_early_terminate_needs_a_metric_and_refuses_unknown_keys() -> None:
    refused(f"method: grid\n{BASE}early_terminate: {{type: hyperband, min_iter: 1}}\n", "metric")
    refused(
        f"method: grid\n{BASE}metric: {{name: l}}\nearly_terminate: {{type: hyperband, min_iter: 1, grace: 2}}\n",
        "early_terminate.grace",
    )


def test_the_sweep_definition_keeps_early_terminate(tmp_path: Path) -> None:
    from spool.sweeps.store import create_sweep, load_sweep

    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "t.py").write_text("print('{}')\n")
    text = f"program: t.py\nmethod: grid\n{BASE}metric: {{name: loss}}\nearly_terminate: {{type: hyperband, min_iter: 2}}\n"
    sid, _ = create_sweep(sp, plan(text), {})
    assert load_sweep(sp, sid).doc["early_terminate"] == {
        "type": "hyperband",
        "min_iter": 2,
        "eta": 3,
        "strict": True,
    }


# ---- controller ---------------------------------------------------------------------------


def test_controller_is_ignored_with_a_note() -> None:
    p = plan(f"method: grid\n{BASE}controller:\n  type: local\n")
    assert len(p.points) == 2
    assert len(p.notes) == 1 and "controller" in p.notes[0] and "ignored" in p.notes[0]
    assert plan(f"method: grid\n{BASE}").notes == []


def test_the_cli_says_the_note_and_makes_the_sweep(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "t.py").write_text("print('{}')\n")
    out = sweep_cli(sp, f"program: t.py\nmethod: grid\n{BASE}controller: {{type: cloud}}\n", tmp_path)
    assert out.stderr.startswith("note: controller: ignored")
    assert json.loads(out.stdout)["count"] == 2


# ---- command naming the script ------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "script", "args", "contract"),
    [
        (["python", "train.py", "${args}"], "train.py", [], "flags"),
        (
            ["${env}", "python3", "src/train.py", "--epochs", "3", "${args_json}"],
            "src/train.py",
            ["--epochs", "3"],
            "json",
        ),
        (["/usr/bin/env", "python", "train.py"], "train.py", [], "json"),
        (["train.py", "${args}", "--fast"], "train.py", ["--fast"], "flags"),
        (["${env}", "${interpreter}", "${program}", "${args}"], None, [], "flags"),
    ],
)
def test_a_command_may_name_the_script_instead_of_program(
    words: list[str], script: str | None, args: list[str], contract: str
) -> None:
    p = plan(f"method: grid\n{BASE}command: {json.dumps(words)}\n")
    assert (p.script, p.args, p.contract) == (script, args, contract)


def test_program_and_the_named_script_must_agree() -> None:
    same = plan(f"program: train.py\nmethod: grid\n{BASE}command: [python, train.py, '${{args}}']\n")
    assert same.script == "train.py"
    refused(
        f"program: a.py\nmethod: grid\n{BASE}command: [python, b.py, '${{args}}']\n",
        "command",
        "b.py",
        "a.py",
    )


@pytest.mark.parametrize(
    ("words", "needle"),
    [
        (["python", "-u", "train.py", "${args}"], "-u"),
        (["python", "${args}"], "${program}"),
        (["${env}", "${interpreter}"], "names no script"),
        (["python", "train.py", "${interpreter}"], "before the script"),
        (["python", "train.py", "${args}", "${args_json}"], "more than once"),
    ],
)
def test_bad_commands_naming_a_script_are_refused(words: list[str], needle: str) -> None:
    refused(f"method: grid\n{BASE}command: {json.dumps(words)}\n", "command", needle)


def test_a_named_script_runs_from_the_cli(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "train.py").write_text("print('{}')\n")
    out = sweep_cli(sp, f"method: grid\n{BASE}command: [python, train.py, --quiet, '${{args}}']\n", tmp_path)
    job = sp.get(json.loads(out.stdout)["jobs"][0]).job
    assert job is not None and (job["script"], job["args"], job["contract"]) == (
        "train.py",
        ["--quiet"],
        "flags",
    )


# ---- nested parameters --------------------------------------------------------------------


def test_nested_parameters_become_dotted_names() -> None:
    text = (
        "method: grid\nparameters:\n  optimizer:\n    parameters:\n      lr: {values: [0.1, 0.01]}\n"
        "      kind: {value: adam}\n  layers: {value: 2}\n"
    )
    assert plan(text).points == [
        {"optimizer.lr": 0.1, "optimizer.kind": "adam", "layers": 2},
        {"optimizer.lr": 0.01, "optimizer.kind": "adam", "layers": 2},
    ]


# ---- YAML 1.2 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-4", 1e-4),
        ("5E+2", 500.0),
        ("-2.5e3", -2500.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("3", 3),
        ("010", 10),  # decimal as written (YAML 1.1: eight)
        ("0o17", 15),
        ("0x1f", 31),
        ("-7", -7),
        (".inf", float("inf")),
        ("true", True),
        ("False", False),
        ("yes", "yes"),  # YAML 1.1: True
        ("off", "off"),
        ("1:30", "1:30"),  # YAML 1.1: ninety
        ("2024-01-02", "2024-01-02"),  # YAML 1.1: a date, which no JSON job holds
        ("1_000", "1_000"),
        ("null", None),
        ("~", None),
        ("'1e-4'", "1e-4"),
    ],
)
def test_plain_scalars_follow_the_yaml_12_core_schema(text: str, value: Any) -> None:
    got = load_yaml12(f"x: {text}\n")["x"]
    assert got == value and type(got) is type(value)


def test_yaml_12_keeps_anchors_and_merge_keys() -> None:
    data = load_yaml12("base: &b {min: 1e-5, max: 1e-1}\nlr:\n  <<: *b\n  distribution: log_uniform_values\n")
    assert data["lr"] == {"min": 1e-5, "max": 0.1, "distribution": "log_uniform_values"}


def test_sweep_numbers_like_1e_4_are_floats() -> None:
    text = "method: random\nrun_cap: 20\nparameters:\n  lr: {distribution: uniform, min: 1e-4, max: 1e-2}\n"
    assert all(1e-4 <= p["lr"] <= 1e-2 for p in plan(text).points)
    grid = plan("method: grid\nparameters:\n  flag: {values: [yes, no, on]}\n").points
    assert [p["flag"] for p in grid] == ["yes", "no", "on"]


def test_safe_loading_builds_no_python_objects() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml12("x: !!python/object/apply:os.system ['true']\n")


# ---- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (f"method: grid\n{BASE}early_stop: {{type: hyperband}}\n", "early_stop"),
        (f"method: grid\n{BASE}metrics: [{{name: a}}, {{name: b}}]\n", "metrics"),
        (f"method: grid\n{BASE}job: x\n", "'job'"),
        ("method: bayes\n" + BASE, "bayes"),
    ],
)
def test_unknown_keys_are_still_refused_by_name(text: str, needle: str) -> None:
    refused(text, needle)


# ---- ${args_no_hyphens} -------------------------------------------------------------------


def test_args_no_hyphens_is_the_hydra_contract() -> None:
    p = plan(f"method: grid\n{BASE}command: [python, train.py, +exp=base, '${{args_no_hyphens}}']\n")
    assert (p.script, p.args, p.contract) == ("train.py", ["+exp=base"], "hydra")


def test_a_hydra_script_gets_key_value_words_with_dotted_names(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "echo.py").write_text("import json, sys\nprint(json.dumps({'argv': sys.argv[1:]}))\n")
    text = (
        "method: grid\ncommand: ['${env}', python, echo.py, 'hydra.run.dir=.', '${args_no_hyphens}']\n"
        "parameters:\n  optimizer:\n    parameters:\n      lr: {value: 1e-3}\n      nesterov: {value: true}\n"
        "  layers: {value: 2}\n  name: {value: wide net}\n"
    )
    job_id = json.loads(sweep_cli(sp, text, tmp_path).stdout)["jobs"][0]
    out = subprocess.run(
        [str(BIN), "--spool", str(sp.root), "runner", "--exit-when-idle", "-q", "--nice", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rec = json.loads((sp.root / "done" / job_id / "result.json").read_text())
    assert rec["result"]["argv"] == [
        "hydra.run.dir=.",
        "optimizer.lr=0.001",
        "optimizer.nesterov=True",
        "layers=2",
        "name=wide net",
    ]


def test_a_dry_run_says_where_runs_will_be_judged(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    f = tmp_path / "s.yaml"
    f.write_text(
        f"program: t.py\nmethod: grid\n{BASE}metric: {{name: loss}}\n"
        "early_terminate: {type: hyperband, max_iter: 27, s: 2}\n"
    )
    run = [str(BIN), "--spool", str(sp.root), "sweep", str(f), "--dry-run"]
    text = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert "hyperband: runs judged at bands 3, 9 (eta 3, on the value at the band)" in text
    js = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, check=True).stdout)
    assert js["early_terminate"]["bands"] == [3, 9] and js["count"] == 2
