"""The report in a real browser: headless Chromium driven by selenium, pages opened from disk.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`);
skipped, saying so, where they are not installed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

pytestmark = pytest.mark.browser

from browser_kit import have_browser, start_chrome  # noqa: E402

if not have_browser():
    pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver", allow_module_level=True)
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)

from report_kit import XSS_ALERT_IMG, XSS_SCRIPT, make_spool, pc_position  # noqa: E402  (tests/ is on sys.path under pytest's rootdir layout)
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from report.build import build_report  # noqa: E402
from spool.api import Spool  # noqa: E402


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sp: Spool = make_spool(tmp_path_factory.mktemp("browser") / "sp")
    return build_report(sp).parent


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    drv = start_chrome(tmp_path / "chrome-profile", window="1400,1000", browser_logs=True)
    try:
        yield drv
    finally:
        drv.quit()


def _open(driver: Any, path: Path) -> None:
    driver.get(path.as_uri())
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.readyState") != "complete":
        assert time.monotonic() < deadline, f"{path} did not finish loading"
        time.sleep(0.05)


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _assert_no_alert(driver: Any) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - the property access is the check


def _column(driver: Any, table_id: str, index: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".filter(r => !r.hidden).map(r => { const c = r.cells[arguments[1]];"
        " return c.hasAttribute('data-v') ? c.getAttribute('data-v') : c.textContent; })",
        table_id,
        index,
    )


def _header_index(driver: Any, table_id: str, title: str) -> int:
    heads = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th")
    return [h.text.strip(" ▲▼") for h in heads].index(title)


def _wait_images(driver: Any) -> list[dict[str, Any]]:
    """Scroll through the page (charts load lazily) and return each image's state once all settled."""
    driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    deadline = time.monotonic() + 30
    while True:
        imgs = driver.execute_script(
            "return Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,"
            " w: i.naturalWidth, h: i.naturalHeight}))"
        )
        if all(i["complete"] for i in imgs) or time.monotonic() > deadline:
            return imgs
        time.sleep(0.1)


def test_index_loads_cleanly(driver: Any, report_dir: Path) -> None:
    _open(driver, report_dir / "index.html")
    assert driver.title == "housespool report — housespool report"
    assert _severe(driver) == []
    cards = driver.find_elements(By.CSS_SELECTOR, ".cards .card")
    assert [c.text.split("\n")[0] for c in cards][:4] == ["0", "0", "25", "4"]
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#sweeps a")]
    assert any(h.endswith("sweeps/grid.html") for h in links)
    _assert_no_alert(driver)
    assert driver.execute_script("return window.__xss") is None


def test_sweep_page_sorts_filters_and_shows_charts(driver: Any, report_dir: Path, tmp_path: Path) -> None:
    _open(driver, report_dir / "sweeps" / "grid.html")
    assert driver.title == "sweep grid — housespool report"
    assert _severe(driver) == []

    # best first by accuracy (the sweep's metric, maximised)
    acc = _header_index(driver, "results", "accuracy")
    start = _column(driver, "results", acc)
    done_values = [float(v) for v in start if v]
    assert done_values == sorted(done_values, reverse=True)

    # click "lr": ascending, click again: descending
    lr = _header_index(driver, "results", "lr")
    header = driver.find_elements(By.CSS_SELECTOR, "#results thead th")[lr]
    header.click()
    asc = [float(v) for v in _column(driver, "results", lr)]
    assert asc == sorted(asc) and asc != [float(v) for v in start if v] and asc[0] == 0.001
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    desc = [float(v) for v in _column(driver, "results", lr)]
    assert desc == sorted(desc, reverse=True) and desc[0] == 1.0
    assert header.get_attribute("aria-sort") == "descending"
    # a text column sorts as text
    ident = _header_index(driver, "results", "job")
    driver.find_elements(By.CSS_SELECTOR, "#results thead th")[ident].click()
    ids = _column(driver, "results", ident)
    assert ids == sorted(ids) and ids[0] == "grid-00000"

    # the filter box hides rows
    rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 24
    box = driver.find_element(By.CSS_SELECTOR, 'input.filter[data-table="results"]')
    box.send_keys("failed")
    time.sleep(0.3)
    visible = [r for r in rows if r.is_displayed()]
    assert len(visible) == 3 and all("failed" in r.text for r in visible)
    assert "3 of 24 rows" in driver.find_element(By.CSS_SELECTOR, '.rowcount[data-table="results"]').text
    box.clear()
    box.send_keys("grid-00007")
    time.sleep(0.3)
    assert [r.text.split()[1] for r in rows if r.is_displayed()] == ["grid-00007"]
    box.clear()
    box.send_keys(" ")  # clear() fires no input event; a space does, and matches everything
    time.sleep(0.3)
    assert len([r for r in rows if r.is_displayed()]) == 24

    # every chart image loaded
    imgs = _wait_images(driver)
    assert len(imgs) == 1, imgs  # failures; six more are drawn by the page
    assert len(driver.find_elements(By.CSS_SELECTOR, "[data-chart][data-drawn] svg")) == 6
    assert all(i["w"] > 0 and i["h"] > 0 for i in imgs), imgs

    shot = tmp_path / "sweep-grid.png"
    driver.set_window_size(1400, 1000)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 100, 16000))
    driver.save_screenshot(str(shot))
    print(f"screenshot of the sweep page: {shot}")
    assert shot.stat().st_size > 10_000
    assert _severe(driver) == []


def _chart_json(driver: Any, key: str) -> dict[str, Any]:
    return cast(
        dict[str, Any],
        driver.execute_script(f"return JSON.parse(document.getElementById('chart-data-{key}').textContent)"),
    )


def _hover_and_click(driver: Any, mark: Any, ids: list[str]) -> None:
    """Hover a chart's mark: a tooltip names its run; click it: that run's job page opens."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", mark)
    ActionChains(driver).move_to_element(mark).perform()
    tip = driver.find_element(By.CSS_SELECTOR, ".chart-tip")
    assert tip.is_displayed()
    run = tip.find_element(By.CSS_SELECTOR, ".tip-id").text
    assert run in ids, (run, tip.text)
    ActionChains(driver).click().perform()  # where the mouse is: that run's mark (or one on top of it)
    _wait_job_page(driver, run)


def _wait_job_page(driver: Any, run: str) -> None:
    deadline = time.monotonic() + 20
    while not driver.current_url.endswith(f"/jobs/{run}.html"):
        assert time.monotonic() < deadline, driver.current_url
        time.sleep(0.05)
    assert driver.title == f"job {run} — housespool report"


def test_client_charts_one_mark_per_run_hover_and_click(driver: Any, report_dir: Path) -> None:
    """The linearity chart and the timeline are drawn in the page from its data: one dot per done
    run in each parameter's panel, one bar per finished job; a tooltip names a mark's run and its
    parameters, and a click opens its job page."""
    page = report_dir / "sweeps" / "grid.html"
    _open(driver, page)
    lin = driver.find_element(By.CSS_SELECTOR, '[data-chart="linearity"][data-drawn] svg')
    data = _chart_json(driver, "metric_vs_params")
    panels = lin.find_elements(By.CSS_SELECTOR, "g.panel")
    assert [p.get_attribute("data-param") for p in panels] == [p["param"] for p in data["panels"]]
    assert len(data["ids"]) == 21  # the sweep's done runs
    for p in panels:
        assert len(p.find_elements(By.CSS_SELECTOR, "circle.run")) == 21
    assert "R² = " in lin.text
    dot = panels[0].find_elements(By.CSS_SELECTOR, "circle.run")[0]
    ActionChains(driver).move_to_element(dot).perform()
    tip = driver.find_element(By.CSS_SELECTOR, ".chart-tip").text
    assert "accuracy = " in tip and "lr = " in tip and "hidden = " in tip, tip  # its parameters
    _hover_and_click(driver, dot, data["ids"])
    assert _severe(driver) == []

    _open(driver, page)
    tl = driver.find_element(By.CSS_SELECTOR, '[data-chart="timeline"][data-drawn] svg')
    hosts = _chart_json(driver, "timeline")["hosts"]
    jobs = [j for h in hosts for j in h["ids"]]
    assert len(jobs) == 24  # every finished job of the sweep (21 done, 3 failed)
    bars = tl.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert len(bars) == 24
    fills = sorted(b.get_attribute("fill") for b in bars)
    assert fills.count("#c44e52") == 3  # the failed ones in red
    _hover_and_click(driver, bars[-1], jobs)
    assert _severe(driver) == []

    _open(driver, page)  # time and memory per machine: a dot per job in each of its two panels
    use = driver.find_element(By.CSS_SELECTOR, '[data-chart="usage"][data-drawn] svg')
    per_panel = [sum(len(v) for v in p["values"]) for p in _chart_json(driver, "usage")["panels"]]
    assert per_panel[0] == 24  # every finished job's wall time
    assert 20 <= per_panel[1] <= 24  # a job too short for the memory sampler has no peak
    assert len(use.find_elements(By.CSS_SELECTOR, "circle.run")) == sum(per_panel)
    _hover_and_click(driver, use.find_elements(By.CSS_SELECTOR, "circle.run")[0], jobs)


def test_client_charts_without_javascript_say_so(tmp_path: Path, report_dir: Path) -> None:
    """With scripts off the page still reads: the charts' captions and a note where the drawing was."""
    drv = start_chrome(tmp_path / "nojs-profile", window="1400,1000")
    try:
        drv.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
        _open(drv, report_dir / "sweeps" / "grid.html")
        fig = drv.find_element(By.ID, "chart-metric_vs_params")
        assert "drawn by the page's own script" in fig.text and "Look for:" in fig.text
        assert drv.find_elements(By.CSS_SELECTOR, "#fits tbody tr")  # the fits table is there
        assert not drv.find_elements(By.CSS_SELECTOR, "[data-chart] svg")
    finally:
        drv.quit()


def test_job_links_resolve(driver: Any, report_dir: Path) -> None:
    _open(driver, report_dir / "sweeps" / "grid.html")
    link = driver.find_element(By.CSS_SELECTOR, "#results tbody tr a")
    job_id = link.text
    link.click()
    deadline = time.monotonic() + 20
    while not driver.title.startswith("job "):
        assert time.monotonic() < deadline, driver.title
        time.sleep(0.05)
    assert driver.title == f"job {job_id} — housespool report"
    assert driver.current_url.endswith(f"/jobs/{job_id}.html")
    assert _severe(driver) == []
    assert driver.find_elements(By.CSS_SELECTOR, "svg.curve polyline")
    # its outputs link to the job folder, and the files are there
    out = [a for a in driver.find_elements(By.CSS_SELECTOR, "ul.files a") if a.text == "model.txt"]
    assert out
    out[0].click()
    deadline = time.monotonic() + 20
    while "weights" not in driver.find_element(By.TAG_NAME, "body").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # from the index: the best run's link
    _open(driver, report_dir / "index.html")
    best = driver.find_element(By.CSS_SELECTOR, "#sweeps td a[href^='jobs/']")
    best_id = best.text
    best.click()
    deadline = time.monotonic() + 20
    while driver.title != f"job {best_id} — housespool report":
        assert time.monotonic() < deadline, driver.title
        time.sleep(0.05)


@pytest.mark.parametrize(
    "page",
    [
        "index.html",
        "all-jobs.html",
        "sweeps/xss.html",
        "jobs/loose-xss.html",
        "jobs/xss-00000.html",
        "jobs/xss-00001.html",
        "jobs/xss-00002.html",
    ],
)
def test_xss_payload_does_not_execute(driver: Any, report_dir: Path, page: str) -> None:
    _open(driver, report_dir / page)
    time.sleep(0.3)  # give an injected onerror handler time to fire, if there were one
    _assert_no_alert(driver)
    assert driver.execute_script("return window.__xss") is None
    body = driver.find_element(By.TAG_NAME, "body").text
    if page != "index.html":
        assert "<script>alert(1)</script>" in body or "onerror=" in body  # shown as text
    assert _severe(driver) == []


# -- parallel coordinates (static/parallel.js) ---------------------------------------------------
def _to_client(driver: Any, svg_el: Any, x: float, y: float) -> tuple[int, int]:
    """A point of the chart's SVG (its own units) in the window's coordinates."""
    pt = driver.execute_script(
        "const s = arguments[0], p = s.createSVGPoint(); p.x = arguments[1]; p.y = arguments[2];"
        "const q = p.matrixTransform(s.getScreenCTM()); return [q.x, q.y];",
        svg_el,
        x,
        y,
    )
    return round(pt[0]), round(pt[1])


def _axis_point(driver: Any, pc: Any, j: int, place: float) -> tuple[int, int]:
    """Axis j's point at a place (0 bottom, 1 top), in the window's coordinates."""
    line = pc.find_elements(By.CSS_SELECTOR, "g.pc-axis line.pc-line")[j]
    x, y1, y2 = (float(line.get_attribute(a)) for a in ("x1", "y1", "y2"))
    return _to_client(driver, pc, x, y2 - place * (y2 - y1))


def _drag(driver: Any, frm: tuple[int, int], to: tuple[int, int]) -> None:
    act = ActionBuilder(driver)
    act.pointer_action.move_to_location(*frm)
    act.pointer_action.pointer_down()
    act.pointer_action.move_to_location(frm[0], (frm[1] + to[1]) // 2)
    act.pointer_action.move_to_location(*to)
    act.pointer_action.pointer_up()
    act.perform()


def _move(driver: Any, at: tuple[int, int]) -> None:
    act = ActionBuilder(driver)
    act.pointer_action.move_to_location(*at)
    act.perform()


def _pc_state(driver: Any, pc: Any) -> tuple[str, list[str]]:
    """The chart's count line and the ids of its lines not dimmed."""
    count = driver.find_element(By.CSS_SELECTOR, "#chart-parallel .pc-count").text
    kept = driver.execute_script(
        "return Array.from(arguments[0].querySelectorAll('polyline.pc-run:not(.dim)')).map(e => +e.getAttribute('data-i'))",
        pc,
    )
    return count, kept


def _expected(data: dict[str, Any], ranges: dict[int, tuple[float, float]]) -> list[int]:
    return [
        i
        for i in range(len(data["ids"]))
        if all(lo <= pc_position(data["axes"][j], i) <= hi for j, (lo, hi) in ranges.items())
    ]


def _ranges(driver: Any, pc: Any) -> dict[int, tuple[float, float]]:
    out = {}
    for g in pc.find_elements(By.CSS_SELECTOR, "g.pc-axis"):
        if g.get_attribute("data-lo") is not None:
            out[int(g.get_attribute("data-axis"))] = (float(g.get_attribute("data-lo")), float(g.get_attribute("data-hi")))
    return out


def test_parallel_coordinates_hover_click_and_brush(driver: Any, report_dir: Path) -> None:
    """A line per drawn run; hovering one names its run, parameters and metric; a click opens its
    job; a range dragged along an axis dims the lines outside it (two ranges: outside either), the
    count says how many are left (as the page's JSON says), and clearing restores them all."""
    page = report_dir / "sweeps" / "grid.html"
    _open(driver, page)
    pc = driver.find_element(By.CSS_SELECTOR, '[data-chart="parallel"][data-drawn] svg')
    data = _chart_json(driver, "parallel")
    assert [a["name"] for a in data["axes"]] == ["lr", "hidden", "accuracy"]
    assert data["axes"][0]["log"] and data["axes"][0]["label"] == "lr (log)"
    n = len(data["ids"])
    assert n == 21 and not data["sampled"]
    lines = pc.find_elements(By.CSS_SELECTOR, "polyline.pc-run")
    assert len(lines) == n
    assert {t.text for t in pc.find_elements(By.CSS_SELECTOR, "g.pc-axis[data-axis='0'] text.pc-tick")} == {
        "0.001",
        "0.01",
        "0.1",
        "1",
    }
    assert _pc_state(driver, pc) == (f"{n} of {n} runs selected", list(range(n)))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", pc)

    # hover the best run's line halfway between the last two axes: its run, parameters, metric
    i = n - 1
    pts = [tuple(map(float, p.split(","))) for p in lines[i].get_attribute("points").split()]
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    at = _to_client(driver, pc, (x0 + x1) / 2, (y0 + y1) / 2)
    _move(driver, at)
    tip = driver.find_element(By.CSS_SELECTOR, ".chart-tip")
    assert tip.is_displayed()
    assert tip.find_element(By.CSS_SELECTOR, ".tip-id").text == data["ids"][i]
    assert "accuracy = " in tip.text and "lr = " in tip.text and "hidden = " in tip.text, tip.text
    assert pc.find_element(By.CSS_SELECTOR, "polyline.pc-hot").get_attribute("data-run") == data["ids"][i]

    # a range on lr around 0.1 (2/3 up its log axis): the six runs with lr = 0.1
    _drag(driver, _axis_point(driver, pc, 0, 0.9), _axis_point(driver, pc, 0, 0.45))
    ranges = _ranges(driver, pc)
    assert list(ranges) == [0] and ranges[0][0] == pytest.approx(0.45, abs=0.02)
    want = _expected(data, ranges)
    assert len(want) == 6
    assert _pc_state(driver, pc) == (f"{len(want)} of {n} runs selected", want)
    # and one on hidden's top (64): both ranges hold
    _drag(driver, _axis_point(driver, pc, 1, 0.7), _axis_point(driver, pc, 1, 1.02))
    ranges = _ranges(driver, pc)
    assert sorted(ranges) == [0, 1]
    want = _expected(data, ranges)
    assert len(want) == 3 and {data["axes"][1]["v"][k] for k in want} == {64}
    assert _pc_state(driver, pc) == (f"{len(want)} of {n} runs selected", want)
    # hovering now finds only a selected line; a dimmed one under the pointer is passed over
    # double-click lr's axis: its range goes, hidden's stays
    ActionChains(driver).double_click(pc.find_elements(By.CSS_SELECTOR, "rect.pc-hit")[0]).perform()
    ranges = _ranges(driver, pc)
    assert list(ranges) == [1]
    want = _expected(data, ranges)
    assert _pc_state(driver, pc) == (f"{len(want)} of {n} runs selected", want)
    # the clear button: every line again
    driver.find_element(By.CSS_SELECTOR, "#chart-parallel button.pc-clear").click()
    assert _ranges(driver, pc) == {}
    assert _pc_state(driver, pc) == (f"{n} of {n} runs selected", list(range(n)))
    assert _severe(driver) == []

    # a click on a line opens its job page
    _move(driver, at)
    assert driver.find_element(By.CSS_SELECTOR, ".chart-tip .tip-id").text == data["ids"][i]
    ActionChains(driver).click().perform()
    _wait_job_page(driver, data["ids"][i])


def test_parallel_coordinates_show_hostile_values_as_text(driver: Any, report_dir: Path) -> None:
    """A categorical value that is markup is an axis label and a tooltip line, as text."""
    _open(driver, report_dir / "sweeps" / "xss.html")
    pc = driver.find_element(By.CSS_SELECTOR, '[data-chart="parallel"][data-drawn] svg')
    data = _chart_json(driver, "parallel")
    label = next(a for a in data["axes"] if a["name"] == "label")
    assert label["kind"] == "cat" and sorted(label["cats"]) == sorted([XSS_SCRIPT, XSS_ALERT_IMG])
    ticks = driver.execute_script(
        "return Array.from(arguments[0].querySelectorAll('text.pc-tick')).map(t => t.textContent)", pc
    )
    assert {t[1] for t in label["ticks"]} <= set(ticks) and any(t.startswith("<script>") for t in ticks)
    assert pc.find_elements(By.TAG_NAME, "img") == [] and pc.find_elements(By.TAG_NAME, "script") == []
    lines = pc.find_elements(By.CSS_SELECTOR, "polyline.pc-run")
    assert len(lines) == len(data["ids"])
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", pc)
    pts = [tuple(map(float, p.split(","))) for p in lines[-1].get_attribute("points").split()]
    _move(driver, _to_client(driver, pc, (pts[-2][0] + pts[-1][0]) / 2, (pts[-2][1] + pts[-1][1]) / 2))
    tip = driver.find_element(By.CSS_SELECTOR, ".chart-tip")
    run = data["ids"].index(tip.find_element(By.CSS_SELECTOR, ".tip-id").text)
    cat = label["cats"][label["x"][run]]
    assert f"label = {cat}" in tip.text.split("\n"), tip.text
    time.sleep(0.3)
    _assert_no_alert(driver)
    assert driver.execute_script("return window.__xss") is None
    assert _severe(driver) == []


def test_learning_curves_drawn_by_the_page(driver: Any, report_dir: Path) -> None:
    """Every run's curve in grey, the best five in colour with their legend labels; hovering a
    best run's point names it, and a click opens its job page."""
    _open(driver, report_dir / "sweeps" / "grid.html")
    cv = driver.find_element(By.CSS_SELECTOR, '[data-chart="curves"][data-drawn] svg')
    data = _chart_json(driver, "learning_curves")
    assert data["runs"] == 21 and not data["sampled"] and len(data["grey"]) == 21  # the failed runs print none
    assert len(cv.find_elements(By.CSS_SELECTOR, "polyline.cv-run")) == 21
    best = cv.find_elements(By.CSS_SELECTOR, "polyline.cv-best")
    assert len(best) == len(data["best"]) == 5
    legend = [t.text for t in cv.find_elements(By.CSS_SELECTOR, "text.leg")]
    assert legend == ["all 21 runs", *[b[1] for b in data["best"]]]
    assert legend[1].startswith("#1 ") and "lr=" in legend[1]
    # the best run's last point
    k = data["best"][0][0]
    last = [tuple(map(float, p.split(","))) for p in best[0].get_attribute("points").split()][-1]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cv)
    _move(driver, _to_client(driver, cv, *last))
    tip = driver.find_element(By.CSS_SELECTOR, ".chart-tip")
    assert tip.find_element(By.CSS_SELECTOR, ".tip-id").text == data["ids"][k]
    assert data["best"][0][1] in tip.text and "accuracy = " in tip.text and "lr = " in tip.text, tip.text
    ActionChains(driver).click().perform()
    _wait_job_page(driver, data["ids"][k])
    assert _severe(driver) == []


def test_spread_drawn_by_the_page(driver: Any, report_dir: Path) -> None:
    """One row per configuration and one dot per shown run; hovering a dot names its run, hovering
    a row gives its figures, and a click on a dot opens its job page."""
    _open(driver, report_dir / "sweeps" / "grid.html")
    sp = driver.find_element(By.CSS_SELECTOR, '[data-chart="spread"][data-drawn] svg')
    data = _chart_json(driver, "seed_spread")
    dots = sp.find_elements(By.CSS_SELECTOR, "circle.sp-dot[data-i]")
    assert len(dots) == len(data["ids"]) == sum(data["counts"]) > 0
    assert len(sp.find_elements(By.CSS_SELECTOR, "g.sp-row")) == len(data["labels"])
    labels = [t.text for t in sp.find_elements(By.CSS_SELECTOR, "text.yl")]
    assert [t.split("  (n=")[0] for t in labels] == data["labels"]
    band = sp.find_element(By.CSS_SELECTOR, 'g.sp-row[data-row="0"] rect.sp-band')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", sp)
    x, y = float(band.get_attribute("x")) + 2, float(band.get_attribute("y")) + 2
    _move(driver, _to_client(driver, sp, x, y))
    tip = driver.find_element(By.CSS_SELECTOR, ".chart-tip")
    assert tip.find_element(By.CSS_SELECTOR, ".tip-id").text == data["labels"][0]
    assert f"{data['counts'][0]} run(s)" in tip.text and "mean " in tip.text, tip.text
    _hover_and_click(driver, dots[0], data["ids"])
    assert _severe(driver) == []
