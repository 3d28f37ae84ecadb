"""The static report on a real spool: jobs run by a real runner, then `build_report`.

The spool is made by `report_kit.make_spool` (shared with `test_report_browser`), the way a user
makes one, and run by a real `spool runner`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from report_kit import (
    SCRIPT,
    SPOOL_BIN,
    XSS_ALERT_IMG,
    XSS_SCRIPT,
    make_spool,
    pc_position,
    run_runner,
    write_sweep,
)

from report.build import MANIFEST, build, build_report
from spool.api import Spool
from spool.states import State

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_spool(tmp_path_factory.mktemp("report") / "sp").root


@pytest.fixture
def sp(spool_dir: Path, tmp_path: Path) -> Spool:
    """A private copy of the module's spool (tests change it)."""
    import shutil

    dst = tmp_path / "sp"
    shutil.copytree(spool_dir, dst, symlinks=True)
    return Spool(dst)


def test_the_runner_made_the_spool(sp: Spool) -> None:
    st = sp.status()
    assert st["done"] == 25 and st["failed"] == 4, st
    assert (sp.layout.state_dir(State.DONE) / "grid-00000" / "metrics.jsonl").read_text().count("\n") == 9


def test_pages_exist(sp: Spool) -> None:
    index, stats = build(sp)
    out = sp.root / "report"
    assert index == out / "index.html"
    assert stats.full and len(stats.jobs_rendered) == 29
    for page in (
        "index.html",
        "all-jobs.html",
        "sweeps/grid.html",
        "sweeps/xss.html",
        "static/report.css",
        "static/report.js",
        MANIFEST,
    ):
        assert (out / page).is_file(), page
    for jid in ("grid-00000", "grid-00023", "xss-00002", "loose-xss", "loose-plain"):
        assert (out / "jobs" / f"{jid}.html").is_file(), jid
    charts = sorted(p.name for p in (out / "sweeps" / "grid").iterdir())
    assert charts == [
        "failures.svg",
    ]  # the linearity chart, spread, parallel coordinates, learning curves, the timeline and usage: by the browser
    for c in charts:
        data = (out / "sweeps" / "grid" / c).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" if c.endswith(".png") else b"<svg" in data[:400], c
    html = (out / "index.html").read_text()
    assert "grid sweep" in html and "accuracy" in html
    assert 'href="sweeps/grid.html"' in html and 'href="all-jobs.html"' in html


def _no_external_refs(html: str) -> None:
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not re.match(r"^[a-z]+://", url) and not url.startswith("//"), url


def test_sweep_page_best_first_and_self_contained(sp: Spool) -> None:
    build_report(sp)
    html = (sp.root / "report" / "sweeps" / "grid.html").read_text()
    _no_external_refs(html)
    rows = re.findall(
        r'<tr class="r-(done|failed)"><td class="n" data-v="(\d+)">\d+</td>'
        r'<td><a href="../jobs/([^"]+).html">',
        html,
    )
    assert len(rows) == 24
    ids = [r[2] for r in rows]
    # best accuracy: lr=1.0 hidden=64 fails, so lr=1.0 h=16 seed 2 (0.885), lr=0.1 h=64 s=2 (0.88), lr=1.0 h=16 s=1
    assert ids[:3] == ["grid-00020", "grid-00017", "grid-00019"], ids[:3]
    assert [r[0] for r in rows[-3:]] == ["failed"] * 3
    assert re.search(
        r'<td>lr</td><td>log10</td>.*?<td class="n" data-v="[0-9.e-]+">0\.\d{3}</td>', html
    )  # R² table
    assert "loss diverged" in html  # stderr tail of a failed job
    # the linearity chart and the timeline: drawn by the browser from the page's data, a mark per run
    lin, tl = _chart_data(html, "metric_vs_params"), _chart_data(html, "timeline")
    assert 'data-chart="linearity" data-source="chart-data-metric_vs_params"' in html
    assert sorted(lin["ids"]) == sorted(ids[:21]) and len(lin["y"]) == 21  # the 21 done runs
    assert {p["param"] for p in lin["panels"]} == {"lr", "hidden"}
    assert sorted(j for h in tl["hosts"] for j in h["ids"]) == sorted(ids)  # every finished run: a bar
    # the job page links to its folder and outputs by relative paths that resolve
    job_html = (sp.root / "report" / "jobs" / "grid-00000.html").read_text()
    hrefs = re.findall(r'href="([^"]+)"', job_html)
    targets = [h for h in hrefs if "outputs" in h]
    assert any(h.endswith("outputs/model.txt") for h in targets)
    assert any(h.endswith("outputs/sub/curve.csv") for h in targets)
    for h in targets:
        assert (sp.root / "report" / "jobs" / h).resolve().is_file(), h
    assert "<svg" in job_html and "<polyline" in job_html  # inline learning curve
    assert "training with" in job_html  # stdout tail
    _no_external_refs(job_html)


def _chart_data(html: str, key: str) -> dict[str, Any]:
    """A client chart's data as the page carries it (JSON in a <script type="application/json">)."""
    block = re.search(rf'<script type="application/json" id="chart-data-{key}">(.*?)</script>', html, re.S)
    assert block, key
    assert "<" not in block.group(1) and ">" not in block.group(1) and "&" not in block.group(1)
    return cast(dict[str, Any], json.loads(block.group(1)))


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of a page with its attributes, as a browser's tokenizer sees them."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    P().feed(html)
    return found


def test_everything_is_escaped(sp: Spool) -> None:
    build_report(sp)
    out = sp.root / "report"
    pages = [
        out / "index.html",
        out / "all-jobs.html",
        out / "sweeps" / "xss.html",
        out / "jobs" / "loose-xss.html",
        out / "jobs" / "xss-00000.html",
        out / "jobs" / "xss-00001.html",
        out / "jobs" / "xss-00002.html",
    ]
    for page in pages:
        html = page.read_text()
        tags = _tags(html)
        handlers = [(t, a) for t, attrs in tags for a, _ in attrs if a.startswith("on")]
        assert handlers == [], (page, handlers)  # no element carries an event handler
        imgs = [dict(attrs).get("src") or "" for t, attrs in tags if t == "img"]
        assert all(re.fullmatch(r"xss/[a-z_]+\.(png|svg)\?v=[0-9a-f]{12}", src) for src in imgs), (
            page,
            imgs,
        )  # our charts
        assert [t for t, _ in tags if t in ("iframe", "object", "embed")] == [], page
        scripts = [dict(attrs) for t, attrs in tags if t == "script"]
        code = [a.get("src") for a in scripts if a.get("type") != "application/json"]
        assert code in (
            ["static/report.js"],
            ["../static/report.js"],
            # a sweep page's client charts
            [
                "../static/report.js",
                "../static/chartkit.js",
                "../static/charts.js",
                "../static/parallel.js",
                "../static/curves.js",
                "../static/spread.js",
            ],
        ), (page, scripts)
    job = (out / "jobs" / "loose-xss.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in job  # params, result, stdout and stderr, as text
    assert "&#34;&gt;&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in job
    sweep = (out / "sweeps" / "xss.html").read_text()
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in sweep
    assert "server said &lt;script&gt;" in sweep  # an error message from the script
    # the compare view's data: JSON that no text in it can end (no "<" at all), the payloads intact
    block = re.search(r'<script type="application/json" id="runs-data">(.*?)</script>', sweep, re.S)
    assert block and "<" not in block.group(1) and ">" not in block.group(1)
    labels = {r["params"].get("label") for r in json.loads(block.group(1))["runs"]}
    assert labels == {XSS_SCRIPT, XSS_ALERT_IMG}
    # the client charts' data likewise: the labels are the linearity chart's categories, intact
    cats = [p["cats"] for p in _chart_data(sweep, "metric_vs_params")["panels"] if p["kind"] == "cat"]
    assert sorted([XSS_SCRIPT, XSS_ALERT_IMG]) in cats
    _chart_data(sweep, "timeline")


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_incremental_rebuild_touches_only_the_new_job_and_its_sweep(sp: Spool) -> None:
    out = sp.root / "report"
    build_report(sp)
    _, again = build(sp)
    assert (
        not again.full
        and again.jobs_rendered == []
        and again.sweeps_charted == []
        and again.sweeps_paged == []
    )
    before = _mtimes(out)
    time.sleep(0.02)
    # one new finished job in sweep `grid`, run by the runner
    defn = yaml.safe_load((sp.layout.sweeps / "grid.yaml").read_text())
    defn["count"] = 25
    (sp.layout.sweeps / "grid.yaml").write_text(yaml.safe_dump(defn, sort_keys=False))
    sp.submit("train_fake.py", {"lr": 0.05, "hidden": 64, "seed": 0}, job_id="grid-00024", sweep="grid")
    run_runner(sp, slots=1)
    _, stats = build(sp)
    assert not stats.full
    assert stats.jobs_rendered == ["grid-00024"]
    assert stats.sweeps_charted == ["grid"] and stats.sweeps_paged == ["grid"]
    assert not stats.all_jobs_paged
    # per chart: the new run did not fail, so the failures chart stays; the linearity chart and the
    # timeline are never drawn by the build (the browser draws them from the page, which has the run)
    assert "grid/failures.svg" not in stats.charts_drawn
    assert not any(c.endswith(("metric_vs_params.png", "timeline.png")) for c in stats.charts_drawn)
    html = (out / "sweeps" / "grid.html").read_text()
    assert "grid-00024" in _chart_data(html, "metric_vs_params")["ids"]
    assert any("grid-00024" in h["ids"] for h in _chart_data(html, "timeline")["hosts"])
    after = _mtimes(out)
    changed = sorted(k for k in after if before.get(k) != after[k])
    allowed = {
        "index.html",
        MANIFEST,
        "live.js",
        "jobs/grid-00024.html",
        "sweeps/grid.html",
        ".cache/metrics-grid.json",
        ".cache/rows-grid.json",
        ".cache/runs-grid.json",
    }
    unexpected = [
        c for c in changed if c not in allowed and c not in {f"sweeps/{d}" for d in stats.charts_drawn}
    ]
    assert unexpected == [], unexpected
    assert "jobs/grid-00024.html" in changed and "sweeps/grid.html" in changed
    # one new job's metrics lines come from its folder; the sweep's metrics cache is not rewritten
    assert ".cache/metrics-grid.json" not in changed
    runs = re.search(r'<script type="application/json" id="runs-data">(.*?)</script>', html, re.S)
    assert runs and any(r["id"] == "grid-00024" and r.get("curves") for r in json.loads(runs.group(1))["runs"])
    assert not any(c.startswith("sweeps/xss") for c in changed)
    assert not any(c.startswith("jobs/") and c != "jobs/grid-00024.html" for c in changed)


def _without_times(html: str) -> str:
    html = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "T", html)
    return re.sub(r"\([^()]* before this build\)", "(age)", html)


def test_incremental_pages_equal_a_fresh_build(sp: Spool) -> None:
    """Pages pieced together from the caches are the pages a build from nothing writes."""
    build_report(sp)
    res = sp.layout.state_dir(State.DONE) / "grid-00004" / "result.json"
    rec = json.loads(res.read_text())
    rec["result"]["accuracy"] = 0.999
    res.write_text(json.dumps(rec))
    os.utime(res, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    (sp.root / "report" / ".cache" / "rows-xss.json").write_text("{not json")  # a broken cache is ignored
    _, stats = build(sp)
    assert stats.jobs_rendered == ["grid-00004"] and stats.sweeps_charted == ["grid"]
    fresh = sp.root / "report-fresh"  # same depth below the spool: same relative links
    build_report(sp, out=fresh)
    for page in (
        "sweeps/grid.html",
        "sweeps/xss.html",
        "index.html",
        "all-jobs.html",
        "jobs/grid-00004.html",
    ):
        a = _without_times((sp.root / "report" / page).read_text())
        b = _without_times((fresh / page).read_text())
        b = b.replace(str(fresh), str(sp.root / "report"))
        assert a == b, page
    assert "0.999" in (sp.root / "report" / "sweeps" / "grid.html").read_text()


def test_a_note_redoes_its_job_page(sp: Spool) -> None:
    """Notes live outside the job folder (`notes/<id>/`); the job's key follows them."""
    build_report(sp)
    sp.note("grid-00003", "rerun with more epochs <b>later</b>")
    _, stats = build(sp)
    assert stats.jobs_rendered == ["grid-00003"] and not stats.full
    html = (sp.root / "report" / "jobs" / "grid-00003.html").read_text()
    assert "rerun with more epochs &lt;b&gt;later&lt;/b&gt;" in html  # text, never HTML
    _, again = build(sp)
    assert again.jobs_rendered == []


def test_worker_processes_make_the_same_report(sp: Spool) -> None:
    """Charts drawn and job pages written by two worker processes are those of a build without any."""
    one = sp.root / "report-serial"
    two = sp.root / "report-workers"  # same depth below the spool: same relative links
    _, serial = build(sp, out=one, processes=0)
    _, pooled = build(sp, out=two, processes=2)
    assert (serial.processes, pooled.processes) == (0, 2)
    assert pooled.timings.get("workers", 0) > 0 and "workers" not in serial.timings
    assert sorted(pooled.jobs_rendered) == sorted(serial.jobs_rendered) and len(serial.jobs_rendered) == 29
    files = sorted(str(p.relative_to(one)) for p in one.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert files == sorted(
        str(p.relative_to(two)) for p in two.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    for name in files:
        if name.endswith(".html"):
            a = _without_times((one / name).read_text())
            b = _without_times((two / name).read_text()).replace(str(two), str(one))
            assert a == b, name
        elif name.endswith(".svg"):
            assert (one / name).read_bytes() == (two / name).read_bytes(), name  # same data, same drawing
    shutil.rmtree(one)
    shutil.rmtree(two)


def test_manifest_is_checked_against_the_folder(sp: Spool) -> None:
    out = sp.root / "report"
    build_report(sp)
    # a deleted page is rebuilt; a job whose result.json changed is rebuilt; a retried job's page goes away
    (out / "jobs" / "grid-00003.html").unlink()
    res = sp.layout.state_dir(State.DONE) / "grid-00004" / "result.json"
    rec = json.loads(res.read_text())
    rec["result"]["accuracy"] = 0.123456
    res.write_text(json.dumps(rec))
    os.utime(res, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    sp.retry("grid-00021")
    _, stats = build(sp)
    assert sorted(stats.jobs_rendered) == ["grid-00003", "grid-00004"]
    assert stats.jobs_removed == ["grid-00021"]
    assert "0.123456" in (out / "jobs" / "grid-00004.html").read_text()
    assert not (out / "jobs" / "grid-00021.html").exists()
    assert stats.sweeps_charted == ["grid"]
    # a changed report version (code hash) rebuilds everything
    man = json.loads((out / MANIFEST).read_text())
    man["code"] = "old"
    (out / MANIFEST).write_text(json.dumps(man))
    _, stats = build(sp)
    assert stats.full and len(stats.jobs_rendered) == 28


def test_a_job_named_like_a_sweep_member_but_outside_it(sp: Spool) -> None:
    """`grid-00030` without `"sweep": "grid"` is a loose job: the id's guess is checked against the results."""
    sp.submit("train_fake.py", {"lr": 0.3, "hidden": 8}, job_id="grid-00030")
    run_runner(sp, slots=1)
    _, stats = build(sp)
    out = sp.root / "report"
    assert "grid-00030" in (out / "all-jobs.html").read_text()
    assert "grid-00030" not in (out / "sweeps" / "grid.html").read_text()
    res = sp.layout.state_dir(State.DONE) / "grid-00030" / "result.json"
    rec = json.loads(res.read_text())
    rec["result"]["accuracy"] = 0.4242
    res.write_text(json.dumps(rec))
    os.utime(res, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    _, stats = build(sp)
    assert stats.jobs_rendered == ["grid-00030"] and stats.all_jobs_paged
    assert stats.sweeps_charted == [] and stats.sweeps_paged == []
    assert "0.4242" in (out / "all-jobs.html").read_text()


def test_metric_and_mode_options(sp: Spool) -> None:
    _, stats = build(sp, sweep="grid", metric="loss")
    html = (sp.root / "report" / "sweeps" / "grid.html").read_text()
    assert "Ranked by <strong>loss</strong> (lower is better" in html
    assert (
        stats.sweeps_charted == ["grid"]
        and stats.jobs_rendered
        and all(j.startswith("grid-") for j in stats.jobs_rendered)
    )
    _, stats = build(sp, sweep="grid", metric="accuracy", mode="min")
    html = (sp.root / "report" / "sweeps" / "grid.html").read_text()
    assert "Ranked by <strong>accuracy</strong> (lower is better" in html
    from spool.errors import NotFound, UsageError

    with pytest.raises(UsageError):
        build(sp, sweep="grid", metric="nope")
    with pytest.raises(NotFound):
        build(sp, sweep="nosuchsweep")


def test_cli(sp: Spool, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    proc = subprocess.run(
        [str(SPOOL_BIN), "--spool", str(sp.root), "report", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / "index.html")
    # links from a report outside the spool still reach the job folders
    job_html = (out / "jobs" / "grid-00000.html").read_text()
    href = next(h for h in re.findall(r'href="([^"]+)"', job_html) if h.endswith("outputs/model.txt"))
    assert (out / "jobs" / href).resolve().is_file()
    proc = subprocess.run(
        [str(SPOOL_BIN), "--spool", str(sp.root), "report", "--json", "--sweep", "grid"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["index"] == str(sp.root / "report" / "index.html")
    proc = subprocess.run(
        [str(SPOOL_BIN), "--spool", str(sp.root), "report", "--sweep", "missing"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "no sweep 'missing'" in proc.stderr


def test_empty_spool_and_a_sweep_not_started(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "empty")
    index = build_report(sp)
    html = index.read_text()
    assert "No sweeps yet" in html and "No failures" in html
    (sp.scripts_dir / "train_fake.py").write_text(SCRIPT)
    write_sweep(sp, "later", [{"lr": 0.1, "seed": s} for s in range(4)], None, {"lr": {"value": 0.1}})
    _, stats = build(sp)
    assert stats.sweeps_paged == ["later"] and stats.jobs_rendered == []
    page = (sp.root / "report" / "sweeps" / "later.html").read_text()
    assert "No finished jobs yet" in page and "4 pending" in page
    assert "sweeps/later.html" in (sp.root / "report" / "index.html").read_text()


def test_spool_does_not_import_report() -> None:
    for path in (ROOT / "spool").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+report\b", text, re.M), path


def test_log_spacing_detection() -> None:
    from report.data import is_log_spaced

    assert is_log_spaced([0.001, 0.01, 0.1, 1.0])
    assert is_log_spaced([1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    assert not is_log_spaced([16, 64])  # ratio < 100
    assert not is_log_spaced(list(range(1, 1001, 50)))
    assert not is_log_spaced([0.0, 0.1, 10.0])
    import numpy as np

    rng = np.random.default_rng(1)
    assert is_log_spaced(10 ** rng.uniform(-5, -1, 200))
    assert not is_log_spaced(rng.uniform(1, 1000, 200))


def _touch_result(sp: Spool, job_id: str, accuracy: float) -> None:
    res = sp.layout.state_dir(State.DONE) / job_id / "result.json"
    rec = json.loads(res.read_text())
    rec["result"]["accuracy"] = accuracy
    res.write_text(json.dumps(rec))
    os.utime(res, ns=(time.time_ns(), time.time_ns() + 5_000_000))


def test_metrics_cache_is_rewritten_only_when_enough_jobs_missed_it(
    sp: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed job's metrics lines are read from its folder; the sweep's cache file is encoded
    again only when more than REWRITE_AFTER jobs were not in it (then with every job's key)."""
    from report import jsoncache

    build_report(sp)
    cache = sp.root / "report" / ".cache" / "metrics-grid.json"
    first = cache.stat().st_mtime_ns
    _touch_result(sp, "grid-00004", 0.999)
    _, stats = build(sp)
    assert stats.jobs_rendered == ["grid-00004"] and cache.stat().st_mtime_ns == first
    monkeypatch.setattr(jsoncache, "REWRITE_AFTER", 1)
    _touch_result(sp, "grid-00005", 0.998)
    build(sp)  # two jobs (00004, 00005) not under their keys in the file: rewritten
    keys = json.loads(cache.read_text())["keys"]
    assert cache.stat().st_mtime_ns != first
    for jid in ("grid-00004", "grid-00005"):
        res = sp.layout.state_dir(State.DONE) / jid / "result.json"
        assert keys[jid][1:] == [res.stat().st_mtime_ns, res.stat().st_size], jid


def test_rows_and_runs_caches_are_rewritten_only_when_enough_rows_were_made(
    sp: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep table's rows and the compare view's runs, cached per job key: after one changed
    job the page shows it but the cache files stay as they were (the row and the run are made
    again next build); past REWRITE_AFTER made afresh, both files are rewritten with its key."""
    from report import jsoncache

    build_report(sp)
    cache = sp.root / "report" / ".cache"
    files = [cache / "rows-grid.json", cache / "runs-grid.json"]
    first = [f.stat().st_mtime_ns for f in files]
    for jid, value in (("grid-00004", 0.987654), ("grid-00002", 0.123456)):
        _touch_result(sp, jid, value)  # the second time, the lagging cache misses two jobs
        _, stats = build(sp)
        page = (sp.root / "report" / "sweeps" / "grid.html").read_text()
        assert "0.98765" in page and stats.sweeps_paged == ["grid"]
        assert [f.stat().st_mtime_ns for f in files] == first
    assert "0.123456" in page
    monkeypatch.setattr(jsoncache, "REWRITE_AFTER", 0)
    _touch_result(sp, "grid-00005", 0.5)
    build(sp)
    res = sp.layout.state_dir(State.DONE) / "grid-00004" / "result.json"
    for f, was in zip(files, first, strict=True):
        doc = json.loads(f.read_text())
        entries = doc["rows"] if "rows" in doc else doc["runs"]
        assert f.stat().st_mtime_ns != was
        assert entries["grid-00004"][0][1:] == [res.stat().st_mtime_ns, res.stat().st_size], f


def test_script_json_cannot_end_its_script_element() -> None:
    """The client charts' data: text from the spool cannot close the element or start a comment,
    parses back to the same text, and a value that overflowed is null rather than a failed build."""
    from report.charts.spec import script_json

    text = "</script><!--<script>alert(1)</script>&amp;\u2028\u2029é"
    out = str(script_json({"s": text, "v": [1.5, float("inf"), float("nan")]}))
    assert not set("<>&\u2028\u2029é") & set(out), out
    assert json.loads(out) == {"s": text, "v": [1.5, None, None]}


def test_parallel_coordinates_payload() -> None:
    """The chart is the browser's: per axis the drawn runs' values (a number, or a category's index),
    its scale and labelled ticks (log axes in decades, every category of a few); the metric's axis
    last; past max_lines the best and a sample by id, said in the caption; no file."""
    import numpy as np
    import pandas as pd

    from report.charts import parallel
    from report.data import MetricChoice

    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame(
        {
            "id": [f"r-{i:03d}" for i in range(n)],
            "state": ["done"] * n,
            "param.lr": 10.0 ** rng.uniform(-4, 0, n),
            "param.opt": rng.choice(["adam", "sgd", XSS_ALERT_IMG], n),
            "param.width": rng.uniform(10, 90, n),
            "param.flat": [3] * n,
            "result.loss": rng.uniform(0.1, 2.0, n),
        }
    )
    df.loc[5, "param.width"] = np.nan
    metric = MetricChoice("result.loss", "min", "test")
    chart = parallel.prepare(df, metric, ["param.lr", "param.opt", "param.width", "param.flat"])
    assert chart is not None and chart.client == "parallel" and chart.file == "" and chart.draw is None
    d = chart.data
    assert [a["name"] for a in d["axes"]] == ["lr", "opt", "width", "loss"]  # flat: no axis
    lr, opt, width, loss = d["axes"]
    assert lr["kind"] == "num" and lr["log"] and lr["label"] == "lr (log)"
    assert [t[1] for t in lr["ticks"]] == ["0.001", "0.01", "0.1"]  # whole decades
    assert all(0 <= t[0] <= 1 for a in (lr, width, loss) for t in a["ticks"])
    assert opt["kind"] == "cat" and opt["cats"] == sorted(["adam", "sgd", XSS_ALERT_IMG])
    assert sorted({t[1] for t in opt["ticks"]}) == sorted(c[:17] + "…" if len(c) > 18 else c for c in opt["cats"])
    assert not width["log"] and None in width["v"] and len(width["v"]) == n
    # best (lowest loss) last, drawn on top; every run's place within [0, 1] but the missing one
    assert loss["v"] == sorted(loss["v"], reverse=True) and d["mode"] == "min"
    places = [[pc_position(a, i) for a in d["axes"]] for i in range(n)]
    assert sum(p == -0.05 for row in places for p in row) == 1
    assert all(-1e-6 <= p <= 1 + 1e-6 for row in places for p in row if p != -0.05)
    assert d["ids"][-1] == df.sort_values("result.loss")["id"].iloc[0]
    assert "<" not in str(chart.payload) and json.loads(str(chart.payload))["ids"] == d["ids"]
    assert d["n"] == d["total"] == n and not d["sampled"] and " of " not in chart.caption
    # many runs: at most max_lines drawn (the best 15% of it all among them), said in the caption
    big = pd.concat([df.assign(id=df["id"] + f"-{k}") for k in range(30)], ignore_index=True)
    big["result.loss"] = rng.uniform(0.1, 2.0, len(big))
    chart = parallel.prepare(big, metric, ["param.lr", "param.opt"], max_lines=200)
    assert chart is not None
    d = chart.data
    assert d["sampled"] and d["total"] == len(big) and 100 <= d["n"] <= 200 and len(d["ids"]) == d["n"]
    best = big.sort_values("result.loss")["id"].head(30).tolist()
    assert set(best) <= set(d["ids"]) and f"{d['n']} of {len(big)} runs" in chart.caption
    assert len(str(chart.payload)) < 40 * d["n"] * 3  # a few numbers a run, not full floats
    assert parallel.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert parallel.nice_ticks(13.0, 87.0) == [20.0, 40.0, 60.0, 80.0]


def test_learning_curves_payload() -> None:
    """The browser's learning curves: the drawn runs' points by span, the grey ones, the best with
    their labels and the stopped ones by index; nothing drawn to a file."""
    import pandas as pd

    from report.charts import curves
    from report.data import MetricChoice

    rows = [
        {"id": f"r{j}", "epoch": e, "loss": 1.0 / (e + j) + 1e-7}
        for j in range(1, 8)
        for e in range(1, 6 if j != 3 else 3)
    ]
    mdf = pd.DataFrame(rows)
    ranked = [f"r{j}" for j in range(7, 0, -1)]
    metric = MetricChoice("result.loss", "min", "test")
    chart = curves.prepare(mdf, ranked, {"r7": "lr=1 → 0.1"}, metric, highlight=2, stopped=["r3", "nope"])
    assert chart is not None and chart.client == "curves" and chart.file == "" and chart.draw is None
    d = chart.data
    assert d["ids"] == sorted(f"r{j}" for j in range(1, 8)) and d["runs"] == 7 and not d["sampled"]
    for k, run in enumerate(d["ids"]):
        a, b = d["spans"][k]
        assert d["x"][a:b] == list(range(1, 6 if run != "r3" else 3))
        assert d["y"][a] == pytest.approx(1.0 / (1 + int(run[1:])), rel=1e-5)
    assert [d["ids"][k] for k, _ in d["best"]] == ["r7", "r6"]
    assert [label for _, label in d["best"]] == ["#1 lr=1 → 0.1", "#2 r6"]
    assert [d["ids"][k] for k in d["stopped"]] == ["r3"] and "hyperband stopped" in chart.caption
    assert sorted(d["ids"][k] for k in d["grey"]) == d["ids"] and d["xlabel"] == "epoch" and d["ykey"] == "loss"
    json.loads(str(chart.payload))
    one_line = pd.DataFrame([{"id": f"r{j}", "step": 0, "loss": 0.5} for j in range(3)])
    assert curves.prepare(one_line, [], {}, metric) is None  # a result per run: no curves


def test_spread_payload() -> None:
    """The spread chart is the browser's: one row per configuration (the seed pooled), best mean
    first, its quartiles, mean and std from its runs, every shown run's value and id; past
    max_configs only the best rows and their runs; no file."""
    import numpy as np
    import pandas as pd

    from report.charts import spread
    from report.data import MetricChoice

    rows = []
    for lr, centre in ((0.1, 1.0), (0.01, 0.5), (0.001, 2.0)):
        for seed in range(4):
            rows.append({"param.lr": lr, "param.seed": seed, "result.loss": centre + 0.1 * seed})
    rows.append({"param.lr": 0.5, "param.seed": 0, "result.loss": 9.0})  # worst: outside max_configs=3
    df = pd.DataFrame(rows)
    df.insert(0, "id", [f"r-{i:02d}" for i in range(len(df))])
    df.insert(1, "state", "done")
    chart = spread.prepare(df, MetricChoice("result.loss", "min", "test"), ["param.lr"], max_configs=3)
    assert chart is not None and chart.client == "spread" and chart.file == "" and chart.draw is None
    d = chart.data
    assert [lab.split("=")[1] for lab in d["labels"]] == ["0.01", "0.1", "0.001"]  # best mean first
    assert d["counts"] == [4, 4, 4] and d["total"] == 4 and len(d["x"]) == len(d["ids"]) == 12
    assert "r-12" not in d["ids"]
    for k, (q, mean, std) in enumerate(zip(d["q"], d["means"], d["stds"], strict=True)):
        xs = [x for x, r in zip(d["x"], d["row"], strict=True) if r == k]
        assert q == pytest.approx(list(np.quantile(xs, [0, 0.25, 0.5, 0.75, 1])))
        assert mean == pytest.approx(np.mean(xs)) and std == pytest.approx(np.std(xs, ddof=1), rel=1e-5)
    assert chart.info["spread"] == {"configs": 4, "shown": 3, "max_runs": 4, "min_runs": 1}
