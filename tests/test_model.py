"""The job file (version 1), the original job shape, job ids and `spool schema`."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spool.errors import InvalidJob, PathEscape
from spool.ids import is_valid_id, new_id
from spool.jobs import check_script
from spool.model import MAX_JOB_BYTES, Contract, Job, Requires, job_from_dict, parse_job

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "spool-dir" / "examples").glob("*.json"))
FILE = "jobs/bad.json"


def parse(obj: object) -> Job:
    return parse_job(json.dumps(obj).encode(), FILE)


def rejected(raw: bytes) -> InvalidJob:
    with pytest.raises(InvalidJob) as info:
        parse_job(raw, FILE)
    return info.value


# -- accepted fields and defaults -----------------------------------------------------------


def test_smallest_job_from_the_design_gets_every_default():
    job = parse({"script": "train_mlp.py", "params": {"lr": 0.01}})
    assert job.script == "train_mlp.py"
    assert job.params == {"lr": 0.01}
    assert job.contract is Contract.FLAGS
    assert job.requires is None
    assert job.timeout is None
    assert job.retries == 0
    assert job.priority == 0
    assert job.sweep is None and job.name is None and job.rev is None
    assert job.env == {} and job.args == []
    assert job.to_file_dict() == {"script": "train_mlp.py", "params": {"lr": 0.01}}


def test_params_default_to_an_empty_object():
    assert parse({"script": "s.py"}).params == {}


FULL_JOB = {
    "script": "sub/train.py",
    "params": {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}, "flag": True, "tag": None},
    "contract": "json",
    "requires": {"gpu": True, "min_memory_gb": 3.5, "tags": ["cuda", "big"], "os": "linux"},
    "timeout": 3600,
    "retries": 2,
    "priority": -4,
    "sweep": "sw1",
    "name": "a label",
    "rev": "abc1234",
    "env": {"CUDA_VISIBLE_DEVICES": "0", "EMPTY": ""},
    "args": ["-config", "base.yaml"],
    "checkpoint_exit_code": 85,
    "stop_grace": 30,
}


def test_every_design_field_is_accepted_and_kept():
    job = parse(FULL_JOB)
    assert job.to_file_dict() == FULL_JOB
    assert job.contract is Contract.JSON
    assert job.requires == Requires(gpu=True, min_memory_gb=3.5, tags=["cuda", "big"], os="linux")
    assert job.timeout == 3600.0 and job.retries == 2 and job.priority == -4


@pytest.mark.parametrize("contract", ["flags", "argv4", "json"])
def test_each_contract_is_accepted(contract):
    assert parse({"script": "s.py", "contract": contract}).contract.value == contract


def test_requires_defaults_when_given_empty():
    req = parse({"script": "s.py", "requires": {}}).requires
    assert req is not None
    assert (req.gpu, req.min_memory_gb, req.tags, req.os) == (False, None, [], None)


def test_job_from_dict_accepts_a_dict_without_bytes():
    assert job_from_dict({"script": "s.py", "priority": 3}).priority == 3


# -- rejections ---------------------------------------------------------------------------------

DEEP = 100_000


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        pytest.param(b'{"script": "s.py", ', None, "not valid JSON", id="invalid-json"),
        pytest.param(b"", None, "not valid JSON", id="empty-file"),
        pytest.param(b"[1, 2]", None, "JSON object", id="array"),
        pytest.param(b'"s.py"', None, "JSON object", id="string"),
        pytest.param(b"null", None, "JSON object", id="null"),
        pytest.param(b'{"script": "\xff.py"}', None, "UTF-8", id="not-utf8"),
        pytest.param(b'{"script": "s.py", "lr": 0.1}', "lr", "unknown field", id="unknown-field"),
        pytest.param(
            b'{"script": "s.py", "requires": {"gpus": 1}}', "requires.gpus", "unknown", id="unknown-nested"
        ),
        pytest.param(b'{"params": {"lr": 1}}', "script", "required", id="missing-script"),
        pytest.param(b'{"script": "../escape.py"}', "script", "..", id="dotdot"),
        pytest.param(b'{"script": "a/../../escape.py"}', "script", "..", id="dotdot-inside"),
        pytest.param(b'{"script": "/etc/passwd"}', "script", "relative", id="absolute"),
        pytest.param(b'{"script": "C:/x.py"}', "script", "relative", id="drive"),
        pytest.param(b'{"script": "sub\\\\x.py"}', "script", "relative", id="backslash"),
        pytest.param(b'{"script": ""}', "script", "non-empty", id="empty-script"),
        pytest.param(b'{"script": 5}', "script", "string", id="script-not-string"),
        pytest.param(b'{"script": "s.py", "contract": "argv5"}', "contract", "", id="bad-contract"),
        pytest.param(b'{"script": "s.py", "retries": -1}', "retries", "", id="negative-retries"),
        pytest.param(b'{"script": "s.py", "timeout": 0}', "timeout", "greater than 0", id="timeout-zero"),
        pytest.param(
            b'{"script": "s.py", "timeout": -5}', "timeout", "greater than 0", id="timeout-negative"
        ),
        pytest.param(b'{"script": "s.py", "env": {"A=B": "x"}}', "env", "A=B", id="env-equals"),
        pytest.param(b'{"script": "s.py", "env": {"": "x"}}', "env", "environment", id="env-empty-name"),
        pytest.param(b'{"script": "s.py", "env": {"A": 1}}', "env.A", "string", id="env-not-string"),
        pytest.param(b'{"script": "s.py", "params": [1]}', "params", "", id="params-not-object"),
        pytest.param(
            b'{"script": "s.py", "checkpoint_exit_code": 0}', "checkpoint_exit_code", "", id="ckpt-code-0"
        ),
        pytest.param(
            b'{"script": "s.py", "checkpoint_exit_code": 256}', "checkpoint_exit_code", "", id="ckpt-code-256"
        ),
        pytest.param(
            b'{"script": "s.py", "checkpoint_exit_code": 8.5}',
            "checkpoint_exit_code",
            "",
            id="ckpt-code-float",
        ),
        pytest.param(b'{"script": "s.py", "stop_grace": -1}', "stop_grace", "", id="stop-grace-negative"),
        pytest.param(b'{"script": "s.py", "stop_grace": 1e9}', "stop_grace", "", id="stop-grace-huge"),
        pytest.param(b'{"script": "s.py", "args": "-v"}', "args", "", id="args-not-list"),
        pytest.param(
            b'{"script": "s.py", "params": {"a": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
            None,
            "nested",
            id="nested-beyond-json",
        ),
        pytest.param(
            b'{"script": "s.py", "params": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}",
            "params",
            "nested",
            id="nested-beyond-pydantic",
        ),
    ],
)
def test_rejection_names_the_file_and_the_field(raw, field, words):
    exc = rejected(raw)
    assert exc.file == FILE
    assert exc.field == field
    text = str(exc)
    assert text.startswith(f"{FILE}: ")
    if field:
        assert f"field '{field}'" in text
    assert words in text
    assert "\n" not in text


@pytest.mark.parametrize("script", ["../x.py", "/abs/x.py", "a\\b.py"])
def test_script_paths_leaving_the_scripts_folder_are_path_escapes(script):
    with pytest.raises(PathEscape):
        parse({"script": script})


def test_inputs_outside_the_spool_are_refused():
    with pytest.raises(PathEscape) as info:
        parse({"script": "s.py", "inputs": ["data/ok.csv", "../../etc/passwd"]})
    assert info.value.field.startswith("inputs")


def test_nesting_a_few_levels_deep_is_fine():
    job = parse({"script": "s.py", "params": {"a": {"b": {"c": [[[1]]]}}}})
    assert job.model_dump(mode="json")["params"]["a"]["b"]["c"] == [[[1]]]


def test_deep_nesting_is_refused_before_it_can_break_readers():
    """A job that validates must also serialize: `ls` and the runner dump every job they read."""
    nested: object = 1
    for _ in range(300):
        nested = [nested]
    with pytest.raises(InvalidJob) as info:
        job_from_dict({"script": "s.py", "params": {"a": nested}})
    assert info.value.field == "params"


def test_too_large_file_is_refused_before_parsing():
    raw = b'{"script": "s.py", "params": {"x": "' + b"a" * MAX_JOB_BYTES + b'"}}'
    exc = rejected(raw)
    assert "limit" in str(exc) and exc.file == FILE


def test_a_file_just_under_the_limit_is_accepted():
    head, tail = b'{"script": "s.py", "params": {"x": "', b'"}}'
    raw = head + b"a" * (MAX_JOB_BYTES - len(head) - len(tail)) + tail
    assert len(raw) == MAX_JOB_BYTES
    assert len(parse_job(raw, FILE).params["x"]) == MAX_JOB_BYTES - len(head) - len(tail)


# -- the original job shape ---------------------------------------------------------------------


def test_original_shape_reads_as_an_argv4_job():
    original = {
        "scriptsPath": "/home/hq/scripts/",
        "scriptName": "encode_csv.py",
        "jobParameters": {
            "dataFileName": "iris.csv",
            "dataPath": "data/",
            "writePath": "",
            "execution": {"max_columns": 50},
        },
    }
    job = parse(original)
    assert job.contract is Contract.ARGV4
    assert job.script == "encode_csv.py"
    assert job.params == original["jobParameters"]
    assert "/home/hq" not in json.dumps(job.model_dump(mode="json"))  # scriptsPath is ignored


def test_original_shape_without_parameters():
    job = parse({"scriptName": "noop.py"})
    assert (job.script, job.params, job.contract) == ("noop.py", {}, Contract.ARGV4)


@pytest.mark.parametrize("extra", ["priority", "script", "jobparameters"])
def test_unknown_key_in_the_original_shape_is_named(extra):
    with pytest.raises(InvalidJob) as info:
        parse({"scriptName": "noop.py", "jobParameters": {}, extra: 1})
    assert info.value.field == extra
    assert info.value.file == FILE
    assert repr(extra) in str(info.value)


def test_original_shape_parameters_must_be_an_object():
    with pytest.raises(InvalidJob) as info:
        parse({"scriptName": "noop.py", "jobParameters": [1, 2]})
    assert info.value.field == "jobParameters"


def test_original_shape_script_name_cannot_escape():
    with pytest.raises(PathEscape) as info:
        parse({"scriptName": "../../bin/evil.py", "jobParameters": {}})
    assert info.value.field == "script"


# -- ids ----------------------------------------------------------------------------------------


def test_new_id_is_valid_and_shaped_as_documented():
    for _ in range(200):
        job_id = new_id()
        assert is_valid_id(job_id)
        assert re.fullmatch(r"\d{8}T\d{6}-\d{6}-[0-9a-f]{4}", job_id)


def test_new_id_is_utc_now():
    job_id = new_id()
    stamp = datetime.strptime(job_id[:22], "%Y%m%dT%H%M%S-%f").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 5


def test_new_ids_sort_by_time():
    start = datetime(2026, 12, 31, 23, 59, 58, 999_998, tzinfo=timezone.utc)
    steps = [0, 1, 2, 1_000, 999_999, 1_000_001, 3_600_000_000, 40 * 86_400_000_000]
    times = [start + timedelta(microseconds=s) for s in steps]
    ids = [new_id(t) for t in times]
    assert sorted(ids) == ids
    assert len(set(ids)) == len(ids)


def test_new_ids_are_distinct():
    assert len({new_id() for _ in range(2000)}) == 2000


@pytest.mark.parametrize(
    "job_id", ["a", "A9", "abc-1.2_3", "sweep-00001", "x" * 120, "20261125T034000-123456-ab12", "a..b"]
)
def test_valid_ids(job_id):
    assert is_valid_id(job_id)


@pytest.mark.parametrize(
    "job_id",
    [
        pytest.param("", id="empty"),
        pytest.param("a/b", id="slash"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("../x", id="parent"),
        pytest.param("..", id="dotdot"),
        pytest.param(".", id="dot"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("job@runner.1", id="at"),
        pytest.param("x" * 121, id="121-chars"),
        pytest.param("job.tmp", id="tmp"),
        pytest.param("job.part", id="part"),
        pytest.param("job.swp", id="swp"),
        pytest.param("job~", id="tilde"),
        pytest.param("job.json", id="json"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param("a b", id="space"),
        pytest.param("-rf", id="leading-dash"),
        pytest.param("_x", id="leading-underscore"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("a:b", id="colon"),
    ],
)
def test_invalid_ids(job_id):
    assert not is_valid_id(job_id)


# -- the schema and the bundled examples -----------------------------------------------------------


def test_examples_are_bundled():
    assert {p.name for p in EXAMPLES} >= {"classify_rf.json", "encode_legacy.json", "mlp_gpu.json"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_bundled_examples_are_valid_jobs_whose_scripts_exist(path, repo_scripts):
    job = job_from_dict(json.loads(path.read_bytes()), str(path))
    assert job == parse_job(path.read_bytes(), str(path))
    assert check_script(repo_scripts, job, str(path)).is_file()


def test_schema_command_prints_the_job_schema(run_cli):
    proc = run_cli("schema")
    assert proc.returncode == 0, proc.stderr
    full = json.loads(proc.stdout)
    assert full["$schema"].startswith("https://json-schema.org/")
    assert full["anyOf"] == [{"$ref": "#/$defs/Job"}, {"$ref": "#/$defs/LegacyJob"}]
    assert set(full["$defs"]["LegacyJob"]["properties"]) == {"scriptName", "scriptsPath", "jobParameters"}
    schema = {**full["$defs"]["Job"], "$defs": full["$defs"]}
    assert schema["type"] == "object"
    assert schema["required"] == ["script"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(Job.model_fields)
    design_fields = {"script", "params", "contract", "requires", "timeout", "retries", "priority"}
    design_fields |= {"sweep", "name", "rev", "env", "args"}
    assert design_fields <= set(schema["properties"])
    assert schema["$defs"]["Contract"]["enum"] == ["flags", "argv4", "json", "hydra"]
    assert schema["$defs"]["Requires"]["additionalProperties"] is False
    assert set(schema["$defs"]["Requires"]["properties"]) == {"gpu", "min_memory_gb", "tags", "os"}

    if importlib.util.find_spec("jsonschema") is not None:
        import jsonschema

        validator_cls = jsonschema.validators.validator_for(full)
        validator_cls.check_schema(full)
        validator = validator_cls(full)
        for path in EXAMPLES:  # both shapes, the v1 job and the original one, validate
            validator.validate(json.loads(path.read_bytes()))
        assert not validator.is_valid({"script": "s.py", "bogus": 1})
        assert not validator.is_valid({"params": {}})
    else:
        # without jsonschema: the schema's own keywords are well-formed, and every example's
        # keys are properties the schema declares (the pydantic model checks the values above)
        for prop in schema["properties"].values():
            assert isinstance(prop, dict) and ("type" in prop or "$ref" in prop or "anyOf" in prop)
        for path in EXAMPLES:
            data = json.loads(path.read_bytes())
            if "scriptName" not in data:
                assert set(data) <= set(schema["properties"])
                job_from_dict(data, str(path))


# -- settings of interruption -------------------------------------------------------------------


def test_a_fresh_spool_toml_shows_the_stop_grace_and_the_interruption_cap(tmp_path):
    from spool.settings import load_settings, render_settings

    (tmp_path / "spool.toml").write_text(render_settings("scripts"))
    settings = load_settings(tmp_path)
    assert (settings.stop_grace, settings.max_interruptions) == (20.0, 20)
    assert "stop_grace = 20" in render_settings("scripts")


@pytest.mark.parametrize("line", ["stop_grace = -1", "stop_grace = nan", "max_interruptions = 0"])
def test_out_of_range_interruption_settings_name_the_setting(tmp_path, line):
    from spool.errors import ConfigError
    from spool.settings import load_settings

    (tmp_path / "spool.toml").write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert info.value.field == line.split()[0]
