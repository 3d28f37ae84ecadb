"""The report while a sweep runs, in a real browser: live reload, the compare view, charts that fit.

Headless Debian Chromium driven by selenium, pages opened from disk (`file://`), spools made and
run by the real `spool runner`, and `spool report --watch` as a real process. Skipped, saying so,
where chromium/chromedriver are not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.browser

from browser_kit import have_browser, start_chrome  # noqa: E402

if not have_browser():
    pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver", allow_module_level=True)
pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

from report_kit import SCRIPT, SPOOL_BIN, make_spool, run_runner, write_sweep  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from report.build import build, build_report  # noqa: E402
from spool.api import Spool  # noqa: E402

ONE_LINE = r"""
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--model", default="a")
p.add_argument("--c", type=float, default=1.0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
score = {"logreg": 0.8, "rf": 0.9, "svm": 0.85}[a.model] + 0.01 * a.seed + 0.001 * a.c
print(json.dumps({"accuracy": round(score, 4)}))
"""


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    drv = start_chrome(tmp_path / "chrome-profile", window="1400,1000", browser_logs=True)
    try:
        yield drv
    finally:
        drv.quit()


def _open(driver: Any, path: Path) -> None:
    driver.get(path.as_uri())
    _loaded(driver)


def _loaded(driver: Any) -> None:
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.readyState") != "complete":
        assert time.monotonic() < deadline, "the page did not finish loading"
        time.sleep(0.05)


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _rows(driver: Any) -> int:
    return int(driver.execute_script("return document.querySelectorAll('#results tbody tr').length"))


@pytest.fixture(scope="module")
def grid_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sp: Spool = make_spool(tmp_path_factory.mktemp("live") / "sp")
    return build_report(sp).parent


def test_a_page_reloads_itself_when_a_job_finishes(driver: Any, tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "sp")
    (sp.scripts_dir / "train_fake.py").write_text(SCRIPT)
    points = [{"lr": lr, "hidden": 16, "seed": 0} for lr in (0.001, 0.01, 0.1)]
    write_sweep(
        sp, "run", points[:2], {"name": "accuracy", "goal": "maximize"}, {"lr": {"values": [0.001, 0.01]}}
    )
    run_runner(sp)
    defn = yaml.safe_load((sp.layout.sweeps / "run.yaml").read_text())
    defn["count"] = 3
    (sp.layout.sweeps / "run.yaml").write_text(yaml.safe_dump(defn, sort_keys=False))
    sp.submit("train_fake.py", points[2], job_id="run-00002", sweep="run")  # pending: the sweep is unfinished
    watch = subprocess.Popen(
        [
            str(SPOOL_BIN),
            "--spool",
            str(sp.root),
            "report",
            "--watch",
            "--interval",
            "0.3",
            "--processes",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # SIGABRT on a hang: every thread's stack
        # as a shell starts a command in the background: SIGINT ignored (Ctrl-C must still stop it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        page = sp.root / "report" / "sweeps" / "run.html"
        deadline = time.monotonic() + 60
        while not (sp.root / "report" / "live.js").exists():
            assert watch.poll() is None and time.monotonic() < deadline, (
                watch.stderr.read() if watch.stderr else ""
            )
            time.sleep(0.1)
        _open(driver, page)
        assert _rows(driver) == 2
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "sweep:run"
        driver.execute_script("window.__notReloaded = true")
        run_runner(sp)  # the pending job runs and ends; the watcher rebuilds; the page follows
        deadline = time.monotonic() + 60
        while driver.execute_script("return window.__notReloaded === true") or _rows(driver) != 3:
            assert time.monotonic() < deadline, "the page did not reload itself"
            time.sleep(0.2)
        _loaded(driver)
        assert "run-00002" in driver.find_element(By.ID, "results").text
        # everything shown is finished now: the page stops asking
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-live") is None
        assert _severe(driver) == []
    finally:
        watch.send_signal(signal.SIGINT)
        try:
            watch.wait(20)
        except subprocess.TimeoutExpired:
            watch.send_signal(signal.SIGABRT)  # every thread's stack, then the assert says why
            watch.wait(20)
    assert watch.returncode == 0, watch.stderr.read() if watch.stderr else ""


def test_compare_two_to_five_runs(driver: Any, grid_report: Path) -> None:
    _open(driver, grid_report / "sweeps" / "grid.html")
    panel = driver.find_element(By.ID, "compare")
    assert not panel.is_displayed()
    boxes = driver.find_elements(By.CSS_SELECTOR, "#results input.compare-pick")
    assert len(boxes) == 24
    boxes[0].click()
    assert not panel.is_displayed()  # one run is nothing to compare
    boxes[1].click()
    assert panel.is_displayed()
    heads = driver.find_elements(By.CSS_SELECTOR, "#compare-params tr:first-child th a")
    picked = [b.get_attribute("data-id") for b in boxes[:2]]
    assert [h.text for h in heads] == picked
    params = {
        r.find_element(By.TAG_NAME, "th").text: [td.text for td in r.find_elements(By.TAG_NAME, "td")]
        for r in driver.find_elements(By.CSS_SELECTOR, "#compare-params tr")
        if r.find_elements(By.TAG_NAME, "td")
    }
    data = json.loads(driver.find_element(By.ID, "runs-data").get_attribute("textContent"))
    runs = {r["id"]: r for r in data["runs"]}
    assert params["lr"] == [runs[j]["params"]["lr"] for j in picked]
    assert params["accuracy"] == [runs[j]["result"]["accuracy"] for j in picked]
    lines = driver.find_elements(By.CSS_SELECTOR, "#compare-plot polyline")
    assert sorted(ln.get_attribute("data-run") for ln in lines) == sorted(picked)
    keys = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#compare-key option")]
    assert {"loss", "accuracy"} <= set(keys)
    for b in boxes[2:5]:
        b.click()
    assert len(driver.find_elements(By.CSS_SELECTOR, "#compare-plot polyline")) == 5
    assert boxes[5].get_attribute("disabled") is not None  # at most five
    driver.find_element(By.ID, "compare-clear").click()
    assert not panel.is_displayed() and boxes[5].get_attribute("disabled") is None
    # sorting still sorts by the right column after the compare column went in front
    lr = [h.text.strip(" ▲▼") for h in driver.find_elements(By.CSS_SELECTOR, "#results thead th")].index("lr")
    driver.find_elements(By.CSS_SELECTOR, "#results thead th")[lr].click()
    col = driver.execute_script(
        "return Array.from(document.querySelectorAll('#results tbody tr')).map(r => +r.cells[arguments[0]]"
        ".getAttribute('data-v'))",
        lr,
    )
    assert col == sorted(col)
    assert _severe(driver) == []


def test_one_line_scripts_get_no_learning_curves_and_categories_get_boxes(
    driver: Any, tmp_path: Path
) -> None:
    sp = Spool.init(tmp_path / "sp")
    (sp.scripts_dir / "train_fake.py").write_text(ONE_LINE)  # the name `write_sweep` submits
    points = [
        {"model": m, "c": c, "seed": s}
        for m in ("logreg", "rf", "svm")
        for c in (0.1, 10.0)
        for s in range(2)
    ]
    doc_params = {"model": {"values": ["logreg", "rf", "svm"]}, "c": {"values": [0.1, 10.0]}}
    write_sweep(sp, "cls", points, {"name": "accuracy", "goal": "maximize"}, doc_params)
    run_runner(sp)
    index, _ = build(sp)
    _open(driver, index.parent / "sweeps" / "cls.html")
    # one metrics line per run: no curves (the page draws them when runs have more; the
    # browser test of the curves checks that figure exists there)
    assert driver.find_elements(By.ID, "chart-metric_vs_params")
    assert not driver.find_elements(By.ID, "chart-learning_curves")
    # the model (a category) is charted, not skipped: a box per model in the client-drawn chart
    lin = driver.find_element(By.CSS_SELECTOR, '[data-chart="linearity"][data-drawn] svg')
    panels = [g.get_attribute("data-param") for g in lin.find_elements(By.CSS_SELECTOR, "g.panel")]
    assert panels == ["c", "model"]
    assert len(lin.find_elements(By.CSS_SELECTOR, 'g.panel[data-param="model"] rect.box')) == 3
    caps = {
        f.find_element(By.TAG_NAME, "strong").text.rstrip("."): f.find_element(By.TAG_NAME, "figcaption").text
        for f in driver.find_elements(By.CSS_SELECTOR, "figure.chart")
    }
    assert "categorical" in caps["Metric against each parameter (linearity)"].lower()
    assert "2 run(s) per box" in caps["Spread across seeds (variance)"]
    assert all("look for" in c.lower() or "there is no spread" in c for c in caps.values()), caps
    assert _severe(driver) == []
