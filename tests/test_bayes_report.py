"""The report's sweep page for a bayes sweep: the optimisation trace and the metric by run order,
both drawn by the browser from the page's data (checked in headless Chromium where it is installed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from browser_kit import have_browser, start_chrome
from test_bayes_sweep import QUAD, SWEEP

from spool import Spool

BIN = Path(sys.executable).parent / "spool"


def _chart_data(html: str, key: str) -> dict[str, Any]:
    block = re.search(rf'<script type="application/json" id="chart-data-{key}">(.*?)</script>', html, re.S)
    assert block, key
    data: dict[str, Any] = json.loads(block.group(1))
    return data


def test_bayes_sweep_page_has_the_trace_and_the_order_charts(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "quad.py").write_text(QUAD)
    f = tmp_path / "s.yaml"
    f.write_text(SWEEP.format(cap=6))

    def run(*args: str) -> str:
        out = subprocess.run(
            [str(BIN), "--spool", str(sp.root), *args], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    sid = run("sweep", str(f)).split()[1].rstrip(":")
    run("runner", "--exit-when-idle", "-q")
    run("report")
    page = sp.root / "report" / "sweeps" / f"{sid}.html"
    html = page.read_text()
    assert "Optimisation trace" in html and "by run order" in html and "best so far" in html
    assert 'data-chart="trace"' in html and 'data-source="chart-data-bayes_order"' in html
    trace, order = _chart_data(html, "bayes_trace"), _chart_data(html, "bayes_order")
    assert len(trace["ids"]) == len(trace["y"]) == 6 and trace["slot"] == sorted(trace["slot"])
    assert sorted(order["ids"]) == sorted(trace["ids"]) and order["order"] and order["panels"]
    assert not list((sp.root / "report" / "sweeps" / sid).glob("bayes_*"))  # no files: the browser draws them
    if not have_browser():
        pytest.skip("no chromium/chromedriver: the charts' drawing is not checked")
    from selenium.webdriver.common.by import By

    drv = start_chrome(tmp_path / "chrome", window="1400,1000", browser_logs=True)
    try:
        drv.get(page.as_uri())
        deadline = time.monotonic() + 20
        while len(drv.find_elements(By.CSS_SELECTOR, "[data-chart][data-drawn] svg")) < 2:
            assert time.monotonic() < deadline, "the client charts were not drawn"
            time.sleep(0.05)
        tr = drv.find_element(By.CSS_SELECTOR, '[data-chart="trace"] svg')
        assert len(tr.find_elements(By.CSS_SELECTOR, "circle.run")) == 6
        assert tr.find_elements(By.CSS_SELECTOR, "path.best-step")
        by = drv.find_element(By.CSS_SELECTOR, "#chart-bayes_order svg")
        for panel in by.find_elements(By.CSS_SELECTOR, "g.panel"):
            assert (
                len(panel.find_elements(By.CSS_SELECTOR, "circle.run")) == 6
            )  # a dot per run, per parameter
        fills = {c.get_attribute("fill") for c in by.find_elements(By.CSS_SELECTOR, "circle.run")}
        assert len(fills) > 1  # coloured by run order
        assert [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"] == []
    finally:
        drv.quit()
