"""`spool serve` end to end: a real server process and a real runner process on a real spool.

Submit over HTTP -> the runner runs it -> the result over HTTP, including the original
workers' `POST /scripts/run` body with the argv4 script `encode_csv.py`; a token-guarded
server; a schemathesis run against the OpenAPI schema; and the job form in headless Chromium.
Everything binds and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'housespool[serve]')")
httpx = pytest.importorskip("httpx")

from browser_kit import have_browser, start_chrome  # noqa: E402

from spool.api import Spool  # noqa: E402
from spool.states import State  # noqa: E402

SPOOL_EXE = Path(sys.executable).parent / "spool"
REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

SCRIPTS = {
    "metrics.py": (
        "import json\nfor step in range(3):\n    print(json.dumps({'step': step, 'loss': 1.0 / (step + 1)}))\n"
        "print(json.dumps({'accuracy': 0.9}))\n"
    ),
    "ticker.py": (
        "import json, sys, time\nfor i in range(3):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.4)\n"
        "print(json.dumps({'ticks': 3}), flush=True)\n"
    ),
    "typed.py": (
        '"""Typed: a small argparse script."""\nimport argparse, json\n'
        "p = argparse.ArgumentParser()\n"
        'p.add_argument("--label", required=True, help="a label")\n'
        'p.add_argument("--lr", type=float, default=0.01)\n'
        'p.add_argument("--opt", choices=["adam", "sgd"], default="adam")\n'
        "print(json.dumps(vars(p.parse_args())))\n"
    ),
    "fail.py": "import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def make_spool(root: Path) -> Spool:
    sp = Spool.init(root)
    for name, text in SCRIPTS.items():
        (sp.scripts_dir / name).write_text(text)
    for name in ("encode_csv.py", "json_echo.py"):
        shutil.copy(REPO / "scripts" / name, sp.scripts_dir / name)
    shutil.copy(REPO / "spool-dir" / "data" / "iris_small.csv", sp.root / "data" / "iris_small.csv")
    return sp


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SPOOL_DIR"}
    with open(log, "wb") as out:
        return subprocess.Popen([str(SPOOL_EXE), *args], stdout=out, stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path, headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"spool serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/status", headers=headers, timeout=2).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"spool serve did not answer within 30 s:\n{log.read_text()}")


class House:
    """A spool, a `spool serve` process and a `spool runner` process."""

    def __init__(self, sp: Spool, url: str):
        self.sp = sp
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)

    def wait_job(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.http.get(f"/jobs/{job_id}").json()
            if d["state"] in ("done", "failed"):
                return d
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not end within {timeout} s")


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Iterator[House]:
    base = tmp_path_factory.mktemp("e2e")
    sp = make_spool(base / "spool")
    port = free_port()
    url = f"http://{HOST}:{port}"
    server = start(
        ["--spool", str(sp.root), "serve", "--host", HOST, "--port", str(port)], base / "serve.log"
    )
    runner = start(
        [
            "--spool",
            str(sp.root),
            "runner",
            "--slots",
            "3",
            "--nice",
            "0",
            "--scan-interval",
            "0.2",
            "--name",
            "e2e",
        ],
        base / "runner.log",
    )
    try:
        wait_ready(url, server, base / "serve.log")
        h = House(sp, url)
        yield h
        h.http.close()
    finally:
        stop(server)
        stop(runner)


def test_submit_over_http_result_over_http(house: House) -> None:
    r = house.http.post("/jobs", json={"script": "metrics.py", "params": {"run": 1}})
    assert r.status_code == 201
    job_id = r.json()["id"]
    d = house.wait_job(job_id)
    assert d["state"] == "done" and d["result"] == {"accuracy": 0.9} and d["host"]
    metrics = house.http.get(f"/jobs/{job_id}/metrics").json()["metrics"]
    assert [m.get("step") for m in metrics] == [0, 1, 2, None]
    rows = house.http.get("/results").json()["rows"]
    assert any(row["id"] == job_id and row["result.accuracy"] == 0.9 for row in rows)
    csv = house.http.get("/results", headers={"accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv") and job_id in csv.text
    assert house.http.get("/status").json()["done"] >= 1
    assert any(r["name"] == "e2e" and r["alive"] for r in house.http.get("/runners").json()["runners"])


def test_the_original_scripts_run_body(house: House) -> None:
    """The original workers' request, byte for byte as an old client sends it."""
    body = {
        "scriptsPath": "/home/hq/worker/scripts/",
        "scriptName": "encode_csv.py",
        "jobParameters": {
            "dataFileName": "iris_small.csv",
            "dataPath": "data/",
            "writePath": None,
            "execution": {"max_columns": 50, "drop": []},
        },
    }
    r = house.http.post(
        "/scripts/run", content=json.dumps(body), headers={"content-type": "application/json"}
    )
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
    encoded = house.sp.layout.state_dir(State.DONE) / job_id / "outputs" / "iris_small_encoded.csv"
    assert encoded.read_text().splitlines()[0].startswith("num_")
    body["jobParameters"]["dataFileName"] = "nowhere.csv"
    r = house.http.post("/scripts/run", json=body)
    assert r.status_code == 404 and r.json()["status"] == 404  # the script's own answer, as before


def test_scripts_as_micro_services(house: House) -> None:
    r = house.http.post("/scripts/json_echo.py", params={"wait": 60}, json={"a": 1, "b": 2.5})
    assert r.status_code == 200 and r.json()["result"] == {"echo": {"a": 1, "b": 2.5}, "sum": 3.5}
    r = house.http.post("/scripts/typed.py", params={"wait": 60}, json={"label": "x", "lr": 0.5})
    assert r.status_code == 200 and r.json()["result"] == {"label": "x", "lr": 0.5, "opt": "adam"}
    r = house.http.post("/scripts/fail.py", params={"wait": 60})
    assert r.status_code == 502 and r.json()["error"]["kind"] == "exit"
    r = house.http.post("/scripts/typed.py", json={"label": "later"})
    assert r.status_code == 202
    assert house.wait_job(r.json()["id"])["state"] == "done"
    assert house.http.post("/scripts/typed.py", json={"lr": "x"}).status_code == 422
    assert house.http.post("/scripts/nope.py", json={}).status_code == 404


def test_follow_logs_over_http(house: House) -> None:
    job_id = house.http.post("/jobs", json={"script": "ticker.py"}).json()["id"]
    seen: list[tuple[float, bytes]] = []
    t0 = time.monotonic()
    with house.http.stream("GET", f"/jobs/{job_id}/logs", params={"follow": 1}) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            seen.append((time.monotonic() - t0, chunk))
    text = b"".join(c for _, c in seen).decode()
    assert text.splitlines() == ["tick 0", "tick 1", "tick 2", '{"ticks": 3}']
    assert len(seen) >= 2  # streamed as it was written, not in one piece at the end
    assert house.http.get(f"/jobs/{job_id}").json()["state"] == "done"


def test_a_token_guarded_server(tmp_path: Path) -> None:
    sp = make_spool(tmp_path / "spool")
    token = "e2e-token-" + os.urandom(12).hex()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = tmp_path / "serve.log"
    server = start(
        [
            "--spool",
            str(sp.root),
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--token-file",
            str(token_file),
        ],
        log,
    )
    try:
        wait_ready(url, server, log)
        assert httpx.get(f"{url}/status").status_code == 401
        assert httpx.post(f"{url}/jobs", json={"script": "metrics.py"}).status_code == 401
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/status", headers=auth).status_code == 200
        assert httpx.post(f"{url}/jobs", json={"script": "metrics.py"}, headers=auth).status_code == 201
        assert "Bearer <token>" in log.read_text() and token not in log.read_text()
    finally:
        stop(server)


# -- schemathesis against the OpenAPI schema ------------------------------------------------------

EXAMPLES = 20  # per operation and per generation mode


def test_openapi_schema_never_answers_500(tmp_path: Path) -> None:
    """Every operation of the schema, valid and invalid inputs alike: never a 5xx (but a 504 when
    asked to wait for a job nobody runs). In process (ASGI), on a spool with no runner."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    from service.app import create_app

    sp = make_spool(tmp_path / "spool")
    sp.submit("metrics.py")  # something to look at
    app = create_app(sp.root, extra_hosts=("testserver",), sweep_limits=(50, 100))
    # the streaming endpoint is left out: `follow=1` on a job nobody runs streams forever
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/jobs/{job_id}/logs")
    problems: list[str] = []
    seen: list[str] = []

    def check(case: Any) -> None:
        waits = case.method.upper() == "POST" and case.path.startswith("/scripts/")
        if waits:  # no runner here: wait 0 s, so a valid request answers 504 at once
            case.query = {**(case.query or {}), "wait": 0}
        response = case.call()
        status = response.status_code
        if status >= 500 and not (waits and status == 504):
            problems.append(
                f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: "
                f"{status} {response.text[:300]}"
            )
            return
        ctype = response.headers.get("content-type") or ""
        ctype = ctype[0] if isinstance(ctype, list) and ctype else ctype
        if str(ctype).startswith("application/json"):
            response.json()  # every JSON answer parses

    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not len(operation.query) and not len(operation.body):
                continue  # only a free-text path parameter: nothing can be made invalid

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                derandomize=True,
            )
            def run(case: Any) -> None:
                check(case)

            try:
                run()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing in this operation can be made invalid (e.g. no parameters, no body)
    assert "POST /scripts/run" in seen and "POST /scripts/typed.py" in seen and len(seen) >= 15
    assert not problems, "\n".join(problems[:20])


# -- the job form in headless Chromium --------------------------------------------------------------


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    if not have_browser():
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    drv = start_chrome(tmp_path / "chrome-profile", window="1300,900", page_timeout=30)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.mark.browser
def test_job_form_in_a_browser(house: House, driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 20)
    driver.get(house.url + "/")
    Select(driver.find_element(By.ID, "script")).select_by_value("typed.py")
    driver.find_element(By.ID, "choose").click()
    wait.until(ec.presence_of_element_located((By.ID, "param-label")))
    driver.find_element(By.ID, "param-label").send_keys("from-the-browser")
    driver.find_element(By.ID, "param-lr").send_keys("0.25")
    Select(driver.find_element(By.ID, "param-opt")).select_by_value("sgd")
    driver.find_element(By.ID, "submit").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.job.new")))
    assert "/ui/jobs?new=" in driver.current_url
    row = driver.find_element(By.CSS_SELECTOR, "tr.job.new")
    job_id = row.get_attribute("id").removeprefix("job-")
    assert "typed.py" in row.text and "from-the-browser" in row.text
    # the page refreshes itself while the job runs; the runner finishes it
    WebDriverWait(driver, 30).until(
        lambda d: "done" in d.find_element(By.ID, f"job-{job_id}").find_element(By.CLASS_NAME, "state").text
    )
    job = house.http.get(f"/jobs/{job_id}").json()
    assert job["job"]["params"] == {"label": "from-the-browser", "lr": 0.25, "opt": "sgd"}
    assert job["result"] == {"label": "from-the-browser", "lr": 0.25, "opt": "sgd"}
    # a mistake is shown next to its field, and nothing is queued
    driver.get(house.url + "/?script=typed.py")
    driver.find_element(By.ID, "param-lr").send_keys("fast")
    driver.find_element(By.ID, "submit").click()
    error = wait.until(ec.presence_of_element_located((By.ID, "error-lr")))
    assert "not a number" in error.text
