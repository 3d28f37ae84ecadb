"""`spool serve`'s API logic through FastAPI's TestClient, on real spool folders.

Jobs that must finish are run by a real `spool runner` process (one per module, see `live`);
everything else is answered from the folder with no runner at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'housespool[serve]')")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx vs httpx2
    from fastapi.testclient import TestClient

from spool_testkit import write_scripts

from service.app import create_app
from service.errors import error_body, http_status
from service.scripts import find_script, job_dict_for, list_scripts, parse_script_source, validate_params
from service.security import TOKEN_FILE, is_loopback, resolve_token, token_matches
from spool import errors as E
from spool.api import Spool
from spool.states import State

SPOOL_EXE = Path(sys.executable).parent / "spool"
REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789abcdef"

#: an argparse script with every kind of parameter the parser reads
TYPED = '''"""Typed: every kind of argparse parameter."""
import argparse, json
p = argparse.ArgumentParser(description="Typed test script.")
p.add_argument("--lr", type=float, default=0.01, help="learning rate")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--opt", choices=["adam", "sgd"], default="adam")
p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=8)
p.add_argument("--verbose", action="store_true")
p.add_argument("--tags", nargs="+", default=[])
p.add_argument("--mode", type=lambda s: s, default=None)
p.add_argument("-q", action="store_true")
p.add_argument("--name", required=True)
a = p.parse_args()
print(json.dumps(vars(a)))
'''

#: prints two lines a little apart, for logs and metrics
SLOW_LINES = (
    "import json, sys, time\n"
    "print(json.dumps({'step': 0, 'loss': 1.0}), flush=True)\n"
    "time.sleep(float(sys.argv[1].split('=')[1]) if len(sys.argv) > 1 else 0.5)\n"
    "print('plain text', flush=True)\n"
    "print(json.dumps({'loss': 0.5, 'done': True}), flush=True)\n"
)

EXTRA_SCRIPTS = {
    "typed.py": TYPED,
    "slow_lines.py": SLOW_LINES,
    "status400.py": 'import json\nprint(json.dumps({"status": 400, "message": "bad input"}))\n',
    "sidecar.py": "import json, sys\nprint(json.dumps({'argv': sys.argv[1:]}))\n",
    "sidecar.toml": (
        'description = "Made <b>bold</b> by a sidecar"\ncontract = "flags"\n'
        '[params.alpha]\ntype = "float"\ndefault = 0.5\nhelp = "the alpha"\n'
        '[params.kind]\nchoices = ["a", "b"]\nrequired = true\n'
    ),
}


def make_spool(root: Path) -> Spool:
    sp = Spool.init(root)
    write_scripts(sp.scripts_dir)
    write_scripts(sp.scripts_dir, EXTRA_SCRIPTS)
    for name in ("encode_csv.py", "json_echo.py"):
        shutil.copy(REPO / "scripts" / name, sp.scripts_dir / name)
    shutil.copy(REPO / "spool-dir" / "data" / "iris_small.csv", sp.root / "data" / "iris_small.csv")
    return sp


def client(app: Any, base: str = "http://127.0.0.1") -> TestClient:
    return TestClient(app, base_url=base, follow_redirects=False)


def pending_files(sp: Spool) -> list[str]:
    return sorted(os.listdir(sp.layout.state_dir(State.PENDING)))


@pytest.fixture
def sp(tmp_path: Path) -> Spool:
    return make_spool(tmp_path / "spool")


@pytest.fixture
def api(sp: Spool) -> TestClient:
    return client(create_app(sp.root))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Spool, TestClient]]:
    """A spool with a real runner process working on it, and a client of its server."""
    sp = make_spool(tmp_path_factory.mktemp("live") / "spool")
    proc = subprocess.Popen(
        [
            str(SPOOL_EXE),
            "--spool",
            str(sp.root),
            "runner",
            "--slots",
            "4",
            "--nice",
            "0",
            "--scan-interval",
            "0.1",
            "--name",
            "svc-test",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield sp, client(create_app(sp.root))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_done(c: TestClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = c.get(f"/jobs/{job_id}").json()
        if d["state"] in ("done", "failed"):
            return d
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def locs(resp: Any) -> list[list[Any]]:
    assert resp.status_code == 422, resp.text
    return [e["loc"] for e in resp.json()["detail"]]


# -- reading scripts ------------------------------------------------------------------------------


def test_argparse_parameters_are_read_without_running_the_script() -> None:
    info = parse_script_source(TYPED, "typed.py")
    assert info.source == "argparse" and info.description == "Typed test script."
    by = {p.name: p for p in info.params or []}
    assert list(by) == [
        "lr",
        "epochs",
        "opt",
        "batch_size",
        "verbose",
        "tags",
        "mode",
        "name",
    ]  # -q: short only
    assert (by["lr"].type, by["lr"].default, by["lr"].help) == ("float", 0.01, "learning rate")
    assert (by["epochs"].type, by["epochs"].default) == ("int", 3)
    assert by["opt"].choices == ["adam", "sgd"] and by["opt"].default == "adam"
    assert by["batch_size"].flags == ["--batch-size", "--batch_size"]
    assert (by["verbose"].type, by["verbose"].switch, by["verbose"].default) == ("bool", "store_true", False)
    assert (by["tags"].type, by["tags"].items) == ("list", "str")
    assert by["mode"].type == "any"
    assert by["name"].required and not by["lr"].required
    assert any("-q" in n for n in info.notes)


def test_argv4_json_and_unknown_scripts() -> None:
    argv4 = parse_script_source((REPO / "scripts" / "encode_csv.py").read_text(), "encode_csv.py")
    assert argv4.contract == "argv4" and [p.name for p in argv4.params or []] == [
        "dataFileName",
        "dataPath",
        "writePath",
        "execution",
    ]
    js = parse_script_source((REPO / "scripts" / "json_echo.py").read_text(), "json_echo.py")
    assert js.contract == "json" and js.params is None
    broken = parse_script_source("def (:\n", "broken.py")
    assert broken.params is None and broken.notes


def test_values_the_flags_contract_cannot_carry_become_args() -> None:
    info = parse_script_source(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('target')\n"
        "p.add_argument('--fast', action='store_true')\np.add_argument('--lr', type=float)\n",
        "pos.py",
    )
    params = validate_params(info, {"target": "x.csv", "fast": True, "lr": 0.1})
    job = job_dict_for(info, params, priority=3)
    assert job == {"script": "pos.py", "params": {"lr": 0.1}, "args": ["--fast", "x.csv"], "priority": 3}


def test_sidecar_toml_wins_and_scripts_are_listed(sp: Spool) -> None:
    names = [i.name for i in list_scripts(sp.scripts_dir)]
    assert "sub/nested.py" in names and "typed.py" in names and "sidecar.toml" not in names
    side = find_script(sp.scripts_dir, "sidecar")  # ".py" may be left out
    assert side.source == "toml" and side.description == "Made <b>bold</b> by a sidecar"
    assert [(p.name, p.type, p.required) for p in side.params or []] == [
        ("alpha", "float", False),
        ("kind", "str", True),
    ]
    with pytest.raises(E.PathEscape):
        find_script(sp.scripts_dir, "../spool.toml")
    with pytest.raises(E.NotFound):
        find_script(sp.scripts_dir, "nope.py")


def test_get_scripts_and_one_script(api: TestClient) -> None:
    r = api.get("/scripts")
    assert r.status_code == 200
    by = {s["name"]: s for s in r.json()["scripts"]}
    assert by["typed.py"]["params_from"] == "argparse" and by["s.py"]["params"] is None
    assert by["encode_csv.py"]["contract"] == "argv4"
    one = api.get("/scripts/typed.py").json()
    assert one["schema"]["properties"]["opt"]["anyOf"][0]["enum"] == ["adam", "sgd"]
    assert one["schema"]["required"] == ["name"]
    assert api.get("/scripts/sub/nested.py").status_code == 200
    assert api.get("/scripts/nope.py").status_code == 404
    r = api.get("/scripts/..%2Fspool.toml")
    assert r.status_code == 400 and r.json()["error"] == "path_escape"


# -- POST /jobs ---------------------------------------------------------------------------------


def test_post_job_keeps_the_users_bytes(api: TestClient, sp: Spool) -> None:
    body = b'{"script": "s.py",   "params": {"lr": 0.1}, "priority": 2}'
    r = api.post("/jobs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 201
    job_id = r.json()["id"]
    assert r.headers["location"] == f"/jobs/{job_id}" == r.json()["url"]
    assert (sp.layout.state_dir(State.PENDING) / f"{job_id}.json").read_bytes() == body
    legacy = {
        "scriptName": "encode_csv.py",
        "scriptsPath": "/old",
        "jobParameters": {"dataFileName": "a.csv"},
    }
    r = api.post("/jobs", json=legacy)
    assert r.status_code == 201
    assert api.get(f"/jobs/{r.json()['id']}").json()["job"]["contract"] == "argv4"


def test_post_job_bad_input(api: TestClient, sp: Spool) -> None:
    before = pending_files(sp)
    r = api.post("/jobs", json={"script": "../../etc/passwd"})
    assert r.status_code == 400 and r.json()["error"] == "path_escape" and r.json()["field"] == "script"
    r = api.post("/jobs", json={"script": "missing.py"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert sorted(locs(api.post("/jobs", json={"script": "s.py", "retries": -1, "bogus": 1}))) == [
        ["body", "bogus"],
        ["body", "retries"],
    ]
    assert locs(api.post("/jobs", json={"script": "s.py", "requires": {"gpu": "maybe"}})) == [
        ["body", "requires", "gpu"]
    ]
    assert locs(api.post("/jobs", json={"params": {}})) == [["body", "script"]]
    assert locs(api.post("/jobs", json=[1, 2])) == [["body"]]
    r = api.post("/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert locs(r) == [["body"]] and "not valid JSON" in r.json()["detail"][0]["msg"]
    assert locs(api.post("/jobs", content=b'{"script": NaN}', headers={"content-type": "application/json"}))
    assert api.post("/jobs", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    r = api.post("/jobs", content=b" " * (1024 * 1024 + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert pending_files(sp) == before  # nothing half-written


def test_every_spool_error_has_one_status() -> None:
    table = {
        E.PathEscape: 400,
        E.InvalidJob: 422,
        E.SweepError: 422,
        E.UsageError: 400,
        E.NotFound: 404,
        E.SpoolExists: 409,
        E.JobFailed: 409,
        E.StorageError: 503,
        E.ConfigError: 500,
        E.SpoolError: 400,
    }
    for cls, status in table.items():
        exc = cls("boom", field="a.b", file="/secret/path")
        assert http_status(exc) == status
        body = error_body(exc)
        assert "/secret/path" not in json.dumps(body)
        if status == 422:
            assert body["detail"][0]["loc"] == ["body", "a", "b"]


# -- sweeps ---------------------------------------------------------------------------------------


def test_sweeps_json_cli_strings_and_wandb_yaml(api: TestClient, sp: Spool) -> None:
    r = api.post(
        "/sweeps",
        json={
            "script": "typed.py",
            "grid": {"opt": ["adam", "sgd"], "epochs": [1, 2]},
            "params": {"name": "n"},
            "seeds": 2,
            "priority": 4,
        },
    )
    assert r.status_code == 201, r.text
    sweep = r.json()["sweep"]
    assert r.json()["count"] == 8 and r.json()["jobs"][0] == f"{sweep}-00000"
    jobs = api.get("/jobs", params={"sweep": sweep, "limit": 1000}).json()
    assert jobs["total"] == 8
    first = api.get(f"/jobs/{sweep}-00000").json()["job"]
    assert first["priority"] == 4 and first["params"]["name"] == "n" and "seed" in first["params"]

    r = api.post("/sweeps", json={"script": "typed.py", "grid": ["lr=0.1,0.01"], "params": {"name": "x"}})
    assert r.status_code == 201 and r.json()["count"] == 2

    r = api.post(
        "/sweeps",
        json={"script": "typed.py", "random": 5, "log_uniform": {"lr": [1e-4, 1e-1]}, "dry_run": True},
    )
    assert (
        r.status_code == 200
        and r.json()["count"] == 5
        and all(1e-4 <= p["lr"] <= 0.1 for p in r.json()["points"])
    )

    r = api.post("/sweeps", json={"script": "s.py", "seeds": 3, "dry_run": True})  # only seeds
    assert r.status_code == 200 and r.json()["points"] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]

    yaml_body = "program: typed.py\nmethod: grid\nparameters:\n  epochs:\n    values: [1, 2, 3]\n"
    r = api.post(
        "/sweeps", content=yaml_body, headers={"content-type": "application/yaml"}, params={"priority": 7}
    )
    assert r.status_code == 201 and r.json()["count"] == 3
    assert api.get(f"/jobs/{r.json()['sweep']}-00002").json()["job"]["priority"] == 7
    r = api.post("/sweeps", content=yaml_body, headers={"content-type": "text/yaml"}, params={"dry_run": 1})
    assert r.status_code == 200 and [p["epochs"] for p in r.json()["points"]] == [1, 2, 3]


def test_sweep_bad_input_writes_nothing(sp: Spool) -> None:
    api = client(create_app(sp.root, sweep_limits=(10, 20)))
    before = (pending_files(sp), sorted(os.listdir(sp.layout.sweeps)))
    assert api.post("/sweeps", json={"script": "nope.py", "grid": {"a": [1]}}).status_code == 404
    assert api.post("/sweeps", json={"script": "../x.py", "grid": {"a": [1]}}).status_code == 400
    assert locs(api.post("/sweeps", json={"script": "s.py", "grid": {"a": [1]}, "choice": ["b=1,2"]})) == [
        ["body", "choice"]
    ]
    assert locs(api.post("/sweeps", json={"script": "s.py", "grid": {"a": list(range(11))}}))
    r = api.post(
        "/sweeps", json={"script": "s.py", "grid": {"a": list(range(11))}, "yes": True, "dry_run": True}
    )
    assert r.status_code == 200 and r.json()["count"] == 11
    assert locs(
        api.post("/sweeps", json={"script": "s.py", "uniform": {"a": [0, 1]}})
    )  # a range needs random
    assert locs(api.post("/sweeps", json={"script": "s.py"}))  # nothing to sweep
    assert locs(api.post("/sweeps", json={"script": "s.py", "grid": {"a": [1]}, "seeds": 0})) == [
        ["body", "seeds"]
    ]
    bayes = "program: s.py\nmethod: bayes\nparameters:\n  a:\n    values: [1]\n"
    r = api.post("/sweeps", content=bayes, headers={"content-type": "application/yaml"})
    assert r.status_code == 422 and "bayes" in r.json()["detail"][0]["msg"]
    r = api.post("/sweeps", content="a: [unclosed", headers={"content-type": "application/yaml"})
    assert r.status_code == 422
    assert (pending_files(sp), sorted(os.listdir(sp.layout.sweeps))) == before


# -- listing and looking --------------------------------------------------------------------------


def test_list_jobs_filters_and_pages(api: TestClient, sp: Spool) -> None:
    ids = [api.post("/jobs", json={"script": "s.py", "params": {"i": i}}).json()["id"] for i in range(5)]
    cancelled = ids[0]
    assert api.post(f"/jobs/{cancelled}/cancel").json()["outcome"] == "cancelled"
    page = api.get("/jobs", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5 and [j["id"] for j in page["jobs"]] == ids[1:3]
    pending = api.get("/jobs", params={"state": "pending"}).json()
    assert pending["total"] == 4 and all(j["state"] == "pending" for j in pending["jobs"])
    failed = api.get("/jobs", params={"state": "failed"}).json()["jobs"]
    assert [j["id"] for j in failed] == [cancelled] and failed[0]["error"]["kind"] == "cancelled"
    assert locs(api.get("/jobs", params={"state": "nonsense"})) == [["query", "state"]]
    assert locs(api.get("/jobs", params={"limit": 0})) == [["query", "limit"]]
    assert api.get("/jobs", params={"sweep": "nope"}).json()["total"] == 0
    assert api.get("/jobs/nope").status_code == 404
    assert api.get("/jobs/..%2F..%2Fetc").status_code == 404
    one = api.get(f"/jobs/{ids[1]}").json()
    assert one["job"]["params"] == {"i": 1} and "path" not in one
    assert api.get("/status").json()["pending"] == 4
    assert api.get("/runners").json() == {"runners": []}


def test_cancel_and_retry(api: TestClient) -> None:
    job_id = api.post("/jobs", json={"script": "s.py"}).json()["id"]
    r = api.post(f"/jobs/{job_id}/retry")
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    assert api.post(f"/jobs/{job_id}/cancel").json()["outcome"] == "cancelled"
    assert api.post(f"/jobs/{job_id}/cancel").json()["outcome"] == "already failed"
    r = api.post(f"/jobs/{job_id}/retry")
    assert r.status_code == 200 and api.get(f"/jobs/{job_id}").json()["state"] == "pending"
    assert api.post("/jobs/nope/cancel").status_code == 404
    assert api.post("/jobs/nope/retry").status_code == 404


def test_pending_job_has_empty_logs_and_no_metrics(api: TestClient) -> None:
    job_id = api.post("/jobs", json={"script": "s.py"}).json()["id"]
    r = api.get(f"/jobs/{job_id}/logs")
    assert r.status_code == 200 and r.text == "" and r.headers["x-spool-state"] == "pending"
    assert api.get(f"/jobs/{job_id}/metrics").json()["metrics"] == []
    assert locs(api.get(f"/jobs/{job_id}/logs", params={"stream": "both"})) == [["query", "stream"]]


def test_results_need_a_known_sweep(api: TestClient) -> None:
    r = api.get("/results")
    assert r.status_code == 200 and r.json()["rows"] == [] and "id" in r.json()["columns"]
    assert api.get("/results", params={"sweep": "nope"}).status_code == 404
    assert api.get("/results", headers={"accept": "text/csv"}).text.startswith("id,sweep,")


# -- scripts as micro-services ----------------------------------------------------------------------


def test_post_script_queues_typed_params(api: TestClient, sp: Spool) -> None:
    r = api.post(
        "/scripts/typed.py",
        json={"name": "n", "lr": 0.5, "verbose": True, "opt": "sgd"},
        params={"priority": 9, "name": "label"},
    )
    assert r.status_code == 202 and r.headers["location"] == r.json()["url"]
    job = api.get(r.json()["url"]).json()["job"]
    assert job["params"] == {"name": "n", "lr": 0.5, "opt": "sgd"}
    assert job["args"] == ["--verbose"] and job["priority"] == 9 and job["name"] == "label"
    r = api.post("/scripts/encode_csv", json={"dataFileName": "iris_small.csv"})  # ".py" left out
    assert r.status_code == 202
    assert api.get(r.json()["url"]).json()["job"]["contract"] == "argv4"
    r = api.post("/scripts/s.py")  # unknown params: any object, or none
    assert r.status_code == 202


def test_post_script_bad_input(api: TestClient, sp: Spool) -> None:
    before = pending_files(sp)
    assert sorted(locs(api.post("/scripts/typed.py", json={"lr": "fast", "opt": "rmsprop", "extra": 1}))) == [
        ["body", "extra"],
        ["body", "lr"],
        ["body", "name"],
        ["body", "opt"],
    ]
    assert locs(api.post("/scripts/typed.py", json={"name": "n"}, params={"retries": 101})) == [
        ["query", "retries"]
    ]
    assert locs(api.post("/scripts/s.py", json=[1])) == [["body"]]
    assert api.post("/scripts/missing.py", json={}).status_code == 404
    assert api.post("/scripts/..%2Fspool.toml", json={}).status_code == 400
    r = api.post("/scripts/encode_csv.py", json={"dataFileName": "x.csv", "dataPath": "../../"})
    assert r.status_code == 400 and r.json()["field"] == "dataPath"
    assert api.post("/scripts/encode_csv.py", json={"dataFileName": "../x.csv"}).status_code == 400
    r = api.post("/scripts/typed.py", json={"name": "n"}, params={"wait": 0.05})
    assert r.status_code == 504 and r.json()["state"] == "pending"  # no runner: still pending
    assert len(pending_files(sp)) == len(before) + 1  # only the job that was valid


def test_every_known_script_has_its_own_typed_operation(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    for name in ("typed.py", "encode_csv.py", "sidecar.py", "sleep.py"):
        op = paths[f"/scripts/{name}"]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert component["type"] == "object" and component["properties"]
    assert "/scripts/s.py" not in paths  # parameters unknown: the generic operation serves it
    assert set(paths["/scripts/{script}"]) == {"get", "post"}
    typed = schema["components"]["schemas"]["Params_typed_py"]
    assert typed["required"] == ["name"] and typed["additionalProperties"] is False
    ids = [op.get("operationId") for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    job = paths["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/Job"} in job["anyOf"]
    assert "Requires" in schema["components"]["schemas"]
    assert "/" not in paths and "/ui/submit" not in paths  # the form is not part of the API


def test_wait_for_results_with_a_runner(live: tuple[Spool, TestClient]) -> None:
    sp, c = live
    r = c.post("/scripts/metrics.py", params={"wait": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "done" and body["result"] == {"accuracy": 0.9} and body["error"] is None
    assert r.headers["x-spool-job"] == body["id"]
    r = c.post("/scripts/fail.py", params={"wait": 30})
    assert r.status_code == 502 and r.json()["error"]["kind"] == "exit"
    r = c.post("/scripts/status400.py", params={"wait": 30})
    assert r.status_code == 400 and r.json()["error"]["kind"] == "status"
    r = c.post("/scripts/no_result.py", params={"wait": 30})
    assert r.status_code == 502 and r.json()["error"]["kind"] == "no_result"


def test_logs_metrics_and_results_of_a_finished_job(live: tuple[Spool, TestClient]) -> None:
    sp, c = live
    sweep = c.post("/sweeps", json={"script": "metrics.py", "grid": {"x": [1, 2]}}).json()["sweep"]
    for i in range(2):
        assert wait_done(c, f"{sweep}-0000{i}")["state"] == "done"
    job = f"{sweep}-00000"
    assert c.get(f"/jobs/{job}/logs").text.splitlines()[-1] == '{"accuracy": 0.9}'
    assert c.get(f"/jobs/{job}/logs", params={"follow": 1}).text.count("\n") == 5  # ended: the whole log
    assert c.get(f"/jobs/{job}/logs", params={"stream": "stderr"}).text == ""
    m = c.get(f"/jobs/{job}/metrics").json()
    assert (
        m["count"] == 4
        and m["metrics"][0] == {"step": 0, "loss": 1.0}
        and m["metrics"][-1] == {"accuracy": 0.9}
    )
    res = c.get("/results", params={"sweep": sweep}).json()
    assert res["count"] == 2 and [row["param.x"] for row in res["rows"]] == [1, 2]
    assert all(row["result.accuracy"] == 0.9 for row in res["rows"])
    csv = c.get("/results", params={"sweep": sweep, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.count("\n") == 3
    assert c.get("/runners").json()["runners"][0]["name"] == "svc-test"


def test_follow_streams_a_running_job_until_it_ends(live: tuple[Spool, TestClient]) -> None:
    sp, c = live
    job_id = c.post("/jobs", json={"script": "slow_lines.py", "params": {"s": 1.0}}).json()["id"]
    t0 = time.monotonic()
    with c.stream("GET", f"/jobs/{job_id}/logs", params={"follow": 1}) as r:
        assert r.status_code == 200
        text = b"".join(r.iter_bytes()).decode()
    assert text.splitlines() == ['{"step": 0, "loss": 1.0}', "plain text", '{"loss": 0.5, "done": true}']
    assert time.monotonic() - t0 >= 0.9
    assert c.get(f"/jobs/{job_id}").json()["state"] == "done"


def test_original_scripts_run_endpoint(live: tuple[Spool, TestClient]) -> None:
    sp, c = live
    body = {
        "scriptsPath": "/opt/old/scripts/",
        "scriptName": "encode_csv.py",
        "jobParameters": {
            "dataFileName": "iris_small.csv",
            "dataPath": "data/",
            "writePath": None,
            "execution": {"max_columns": 40},
        },
    }
    r = c.post("/scripts/run", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    # the path the script wrote, as the original scripts report it (inside its claimed folder)
    assert got.pop("path").endswith("/outputs/iris_small_encoded.csv")
    assert got == {
        "status": 200,
        "rows": 60,
        "columns_in": 9,
        "columns_out": 14,
        "output": "iris_small_encoded.csv",
    }
    job_id = r.headers["x-spool-job"]
    out = sp.layout.state_dir(State.DONE) / job_id / "outputs" / "iris_small_encoded.csv"
    assert out.read_text().startswith("num_")
    body["jobParameters"]["dataFileName"] = "missing.csv"
    r = c.post("/scripts/run", json=body)
    assert r.status_code == 404 and r.json()["status"] == 404 and "not found" in r.json()["message"]
    body["jobParameters"]["execution"] = {"max_columns": 1}
    body["jobParameters"]["dataFileName"] = "iris_small.csv"
    r = c.post("/scripts/run", json=body)
    assert r.status_code == 400 and r.json()["projected_columns"] > 1


def test_original_endpoint_bad_input(api: TestClient, sp: Spool) -> None:
    before = pending_files(sp)
    assert locs(api.post("/scripts/run", json={"scriptName": "encode_csv.py", "jobParameters": {}})) == [
        ["body", "jobParameters", "dataFileName"]
    ]
    assert locs(api.post("/scripts/run", json={"scriptName": "encode_csv.py"})) == [["body", "jobParameters"]]
    bad = {"scriptName": "nope.py", "jobParameters": {"dataFileName": "a.csv"}}
    assert api.post("/scripts/run", json=bad).status_code == 404
    bad = {"scriptName": "encode_csv.py", "jobParameters": {"dataFileName": "a.csv", "dataPath": "/etc/"}}
    assert api.post("/scripts/run", json=bad).status_code == 400
    assert pending_files(sp) == before
    ok = {"scriptName": "encode_csv.py", "jobParameters": {"dataFileName": "a.csv"}}
    r = api.post("/scripts/run", json=ok, params={"wait": 0.05})
    assert r.status_code == 504 and r.json()["status"] == 504


# -- who may talk to the server --------------------------------------------------------------------


def test_token_on_a_non_local_bind(sp: Spool) -> None:
    token = resolve_token(sp.root, "0.0.0.0", None)
    assert token is not None and len(token) >= 32
    path = sp.root / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_token(sp.root, "0.0.0.0", None) == token  # made once, then reused
    assert resolve_token(sp.root, "127.0.0.1", None) is None and resolve_token(sp.root, "::1", None) is None
    assert not is_loopback("192.168.1.20") and not is_loopback("myhost") and is_loopback("localhost")

    c = client(create_app(sp.root, token=token), base="http://192.168.1.20:8750")
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": f"Basic {token}"},
        {"authorization": token},
    ):
        r = c.get("/status", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
    assert c.post("/jobs", json={"script": "s.py"}).status_code == 401
    assert c.get("/openapi.json").status_code == 401 and c.get("/").status_code == 401
    assert pending_files(sp) == []
    auth = {"authorization": f"Bearer {token}"}
    assert c.get("/status", headers=auth).status_code == 200
    assert c.post("/jobs", json={"script": "s.py"}, headers=auth).status_code == 201
    # a browser opens a page once with ?token=..., gets an HttpOnly cookie and the clean URL
    r = c.get("/", params={"token": token, "script": "s.py"})
    assert r.status_code == 303 and r.headers["location"] == "/?script=s.py"
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    assert c.get("/status").status_code == 200  # the cookie now


def test_token_file_and_constant_time_comparison(
    sp: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert resolve_token(sp.root, "127.0.0.1", f) == TOKEN
    f.write_text("short")
    with pytest.raises(E.ConfigError):
        resolve_token(sp.root, "0.0.0.0", f)
    calls: list[tuple[bytes, bytes]] = []
    import hmac

    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("service.security.hmac.compare_digest", spy)
    assert token_matches(TOKEN, TOKEN) and not token_matches("x", TOKEN) and not token_matches(None, TOKEN)
    assert len(calls) == 2
    c = client(create_app(sp.root, token=TOKEN), base="http://10.0.0.5")
    assert c.get("/status", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert calls[-1] == (TOKEN.encode(), TOKEN.encode())


def test_local_server_refuses_other_hosts_and_other_origins(sp: Spool) -> None:
    app = create_app(sp.root)
    assert client(app, "http://evil.example").get("/status").status_code == 400  # DNS rebinding
    assert client(app, "http://localhost:8750").get("/status").status_code == 200
    c = client(app)
    r = c.post("/jobs", json={"script": "s.py"}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post("/jobs", json={"script": "s.py"}, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    assert c.post("/jobs", json={"script": "s.py"}, headers={"origin": "http://127.0.0.1"}).status_code == 201
    # CORS is off: no Access-Control-* headers, whatever is asked
    r = c.options("/jobs", headers={"origin": "http://x.example", "access-control-request-method": "POST"})
    assert not [h for h in r.headers if h.lower().startswith("access-control")]
    r = c.get("/status", headers={"origin": "http://x.example"})
    assert r.status_code == 200 and not [h for h in r.headers if h.lower().startswith("access-control")]


# -- the job form -------------------------------------------------------------------------------------


def test_form_pages(api: TestClient, sp: Spool) -> None:
    r = api.get("/")
    assert r.status_code == 200 and "script-src" not in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    r = api.get("/", params={"script": "typed.py"})
    assert 'id="param-lr"' in r.text and 'id="grid-lr"' in r.text and "learning rate" in r.text
    side = api.get("/", params={"script": "sidecar.py"}).text
    assert "Made &lt;b&gt;bold&lt;/b&gt;" in side  # autoescaped
    assert api.get("/", params={"script": "../x.py"}).status_code == 400
    assert api.get("/ui/static/style.css").status_code == 200


def test_form_submits_a_job_a_sweep_and_shows_errors(api: TestClient, sp: Spool) -> None:
    r = api.post(
        "/ui/submit",
        data={
            "script": "typed.py",
            "param.name": "x",
            "param.lr": "0.2",
            "param.opt": "sgd",
            "param.verbose": "true",
            "seeds": "1",
        },
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/jobs?new=")
    job_id = r.headers["location"].split("=", 1)[1]
    job = api.get(f"/jobs/{job_id}").json()["job"]
    assert job["params"] == {"name": "x", "lr": 0.2, "opt": "sgd"} and job["args"] == ["--verbose"]
    page = api.get(r.headers["location"])
    assert f'id="job-{job_id}" class="job new"' in page.text and 'http-equiv="refresh"' in page.text

    r = api.post(
        "/ui/submit", data={"script": "typed.py", "param.name": "x", "grid.lr": "0.1, 0.01", "seeds": "2"}
    )
    assert r.status_code == 303 and "sweep=" in r.headers["location"]
    sweep = r.headers["location"].split("sweep=", 1)[1]
    assert api.get("/jobs", params={"sweep": sweep}).json()["total"] == 4

    before = pending_files(sp)
    r = api.post("/ui/submit", data={"script": "typed.py", "param.lr": "fast"})
    assert r.status_code == 422
    errors = re.findall(r'id="error-(\w+)">([^<]*)<', r.text)
    assert ("lr", "&#39;fast&#39; is not a number") in errors
    r = api.post("/ui/submit", data={"script": "typed.py", "param.lr": "0.1"})  # name is required
    assert r.status_code == 422 and 'id="error-name"' in r.text
    r = api.post("/ui/submit", data={"script": "json_echo.py", "params_json": "[1]"})
    assert r.status_code == 422 and 'id="error-params_json"' in r.text
    r = api.post("/ui/submit", data={"script": "../x.py"})
    assert r.status_code == 400
    assert api.post("/ui/submit", json={"script": "s.py"}).status_code == 415
    assert (
        api.post("/ui/submit", data={"script": "s.py"}, headers={"origin": "http://evil.example"}).status_code
        == 403
    )
    assert pending_files(sp) == before


def test_report_is_served_when_asked(sp: Spool) -> None:
    pytest.importorskip("report.build", reason="the report package is not available")
    c = client(create_app(sp.root, report=True))
    r = c.get("/report/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert (sp.root / "report" / "index.html").is_file()


def test_serve_verb_is_plugged_in() -> None:
    from spool.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--port", "9999", "--report"])
    assert (args.host, args.port, args.report, args.token_file) == ("127.0.0.1", 9999, True, None)
