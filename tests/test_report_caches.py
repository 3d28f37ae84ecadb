"""The report's in-process caches (issue 21) never show a stale page.

A rebuild in the same process reuses what the last build parsed or worked out: sweep
definitions by file stamp (`report.sweepdefs`), its own JSON caches and manifest documents
(`report.jsoncache`), the scan's names and the status counted from it, a sweep's ranking. Each
test changes the real spool (or the report's folder) between two builds in this process and
checks the second build shows the change, as a build in a fresh process would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from report_kit import make_spool, run_runner

from report import carry, jsoncache, sweepdefs
from report.build import MANIFEST, BuildStats, build
from report.data import config_keys, fmt
from report.sweepdefs import read_sweep_defs
from spool.api import Spool
from spool.notes import NOTES_DIR
from spool.states import State


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner-made spool of `report_kit`, once for this module; each test gets a copy."""
    return make_spool(tmp_path_factory.mktemp("caches") / "sp").root


@pytest.fixture
def sp(made: Path, tmp_path: Path) -> Spool:
    return Spool(Path(shutil.copytree(made, tmp_path / "sp", symlinks=True)))


def _counts(sp: Spool) -> dict[str, int]:
    beacon = json.loads((sp.root / "report" / MANIFEST).read_text())["summaries"]
    return {
        sid: s["progress"]["done"] + s["progress"]["failed"] for sid, s in beacon.items() if "progress" in s
    }


def _age(path: Path, seconds: float = 5.0) -> None:
    """Make a file look written `seconds` ago (a stamp old enough to be trusted)."""
    t = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def _index(sp: Spool) -> str:
    """The index page without its build time (two builds may fall in the same second)."""
    return re.sub(
        r"built \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "built", (sp.root / "report" / "index.html").read_text()
    )


def test_status_counted_from_the_scan_follows_pending_done_and_removed_jobs(sp: Spool) -> None:
    build(sp)
    html = _index(sp)
    assert _counts(sp)["grid"] == 24
    sp.submit("train_fake.py", {"lr": 0.05, "hidden": 64, "seed": 0}, job_id="grid-00024", sweep="grid")
    _, pending = build(sp)
    assert pending.jobs_rendered == []
    assert _index(sp) != html  # the index shows the pending job, with nothing new finished
    progress = json.loads((sp.root / "report" / MANIFEST).read_text())["summaries"]["grid"]["progress"]
    assert progress["pending"] == 1 and progress["done"] + progress["failed"] == 24
    run_runner(sp, slots=1)  # pending -> claimed -> done
    _, done = build(sp)
    assert done.jobs_rendered == ["grid-00024"]
    progress = json.loads((sp.root / "report" / MANIFEST).read_text())["summaries"]["grid"]["progress"]
    assert (
        progress["pending"] == 0 and progress["claimed"] == 0 and progress["done"] + progress["failed"] == 25
    )
    assert progress == sp.status()["sweeps"]["grid"]
    shutil.rmtree(sp.layout.state_dir(State.DONE) / "grid-00003")  # a removed job
    _, removed = build(sp)
    assert "grid-00003" in removed.jobs_removed and _counts(sp)["grid"] == 24
    assert (
        sp.status()["sweeps"]["grid"]
        == json.loads((sp.root / "report" / MANIFEST).read_text())["summaries"]["grid"]["progress"]
    )
    assert "grid-00003" not in (sp.root / "report" / "sweeps" / "grid.html").read_text()


def test_a_retried_job_leaves_the_report_and_comes_back_with_its_new_result(sp: Spool) -> None:
    build(sp)
    failed = sorted(p.name for p in sp.layout.state_dir(State.FAILED).iterdir() if p.name.startswith("grid-"))
    jid = failed[0]
    assert jid in (sp.root / "report" / "sweeps" / "grid.html").read_text()
    sp.retry(jid)
    _, gone = build(sp)
    assert jid in gone.jobs_removed
    assert f'href="../jobs/{jid}.html"' not in (sp.root / "report" / "sweeps" / "grid.html").read_text()
    run_runner(sp, slots=1)
    _, back = build(sp)
    assert jid in back.jobs_rendered and (sp.root / "report" / "jobs" / f"{jid}.html").exists()
    assert jid in (sp.root / "report" / "sweeps" / "grid.html").read_text()


def test_an_edited_sweep_definition_of_the_same_size_is_read_again(sp: Spool) -> None:
    path = sp.layout.sweeps / "grid.yaml"
    _age(path)
    build(sp)
    build(sp)  # the definition is now kept parsed in this process
    doc = yaml.safe_load(path.read_text())
    assert doc["name"] == "grid sweep"
    text = path.read_text().replace("grid sweep", "GRID SWEEP")  # same size, same inode
    with open(path, "r+") as f:
        f.write(text)
    _, stats = build(sp)
    assert "grid" in stats.sweeps_paged
    assert "GRID SWEEP" in (sp.root / "report" / "sweeps" / "grid.html").read_text()
    assert read_sweep_defs(sp.layout)["grid"].name == "GRID SWEEP"


def test_a_definition_written_within_the_last_second_is_not_trusted_by_its_stamp(tmp_path: Path) -> None:
    """Two in-place writes of the same size within one tick of a coarse file-system clock leave
    the same stamp (inode, mtime, ctime, size): so a definition read while its stamp is younger
    than a second is never kept by that stamp, and is parsed again at the next build. This
    machine's clock is fine-grained, so the test looks at what is kept rather than at a stale
    read (which it could not provoke)."""
    sp = Spool.init(tmp_path / "sp")
    sp.layout.sweeps.mkdir(exist_ok=True)
    path = sp.layout.sweeps / "s.yaml"
    path.write_text("name: a\n")
    assert read_sweep_defs(sp.layout)["s"].name == "a"
    assert str(path) not in sweepdefs._PARSED  # young: not kept
    with open(path, "r+") as f:  # in place: the same inode and size
        f.write("name: b\n")
    assert read_sweep_defs(sp.layout)["s"].name == "b"
    _age(path)  # mtime old; ctime is now, so still young
    read_sweep_defs(sp.layout)
    assert str(path) not in sweepdefs._PARSED
    time.sleep(1.1)  # ctime a second old too: kept, and a hit from now on
    assert read_sweep_defs(sp.layout)["s"].name == "b"
    assert str(path) in sweepdefs._PARSED
    path.unlink()
    assert "s" not in read_sweep_defs(sp.layout) and str(path) not in sweepdefs._PARSED


def test_a_cache_file_replaced_on_disk_is_read_again(sp: Spool) -> None:
    """The table rows' cache kept in this process is the file's only while the file is that one."""
    build(sp)
    build(sp)
    rows = sp.root / "report" / ".cache" / "rows-grid.json"
    doc = json.loads(rows.read_text())
    jid = "grid-00001"
    doc["rows"][jid][1] = "<td>ROW FROM THE FILE</td>"
    tmp = rows.with_suffix(".new")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, rows)  # as another process's build would publish it
    # another job of the sweep changes: the sweep page is rebuilt from the rows' cache
    res = sp.layout.state_dir(State.DONE) / "grid-00002" / "result.json"
    os.utime(res, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    _, stats = build(sp)
    assert stats.sweeps_paged == ["grid"]
    assert "ROW FROM THE FILE" in (sp.root / "report" / "sweeps" / "grid.html").read_text()


def test_a_broken_cache_written_in_place_is_ignored(sp: Spool) -> None:
    build(sp)
    for name in ("rows-grid.json", "runs-grid.json", "metrics-grid.json"):
        (sp.root / "report" / ".cache" / name).write_text("{not json")
    res = sp.layout.state_dir(State.DONE) / "grid-00002" / "result.json"
    rec = json.loads(res.read_text())
    rec["result"]["accuracy"] = 0.987
    res.write_text(json.dumps(rec))
    _, stats = build(sp)
    assert stats.jobs_rendered == ["grid-00002"]
    html = (sp.root / "report" / "sweeps" / "grid.html").read_text()
    assert "0.987" in html and html.count('class="r-') == 24


def test_read_json_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    jsoncache.publish_json(path, {"a": 1}, json.dumps({"a": 1}))
    assert jsoncache.read_json(path) == {"a": 1}
    tmp = tmp_path / "doc.tmp"
    tmp.write_text(json.dumps({"a": 2}))
    os.replace(tmp, path)  # same size, another inode
    assert jsoncache.read_json(path) == {"a": 2}
    path.write_text(json.dumps({"a": 3}))  # in place, just now: read again
    assert jsoncache.read_json(path) == {"a": 3}
    path.unlink()
    with pytest.raises(OSError):
        jsoncache.read_json(path)


def test_config_keys_format_each_value_as_fmt_does() -> None:
    df = pd.DataFrame(
        {
            "param.lr": [1e-4, 3e-4, np.nan, 1.0, 1e-4],
            "param.hidden": [16, 32, 64, 16, 16],
            "param.flag": [True, False, True, True, False],
            "param.mixed": ["a", 1, 1.0, True, None],
            "param.n": pd.array([1, None, 2, 2, 1], dtype="Int64"),
        }
    )
    params = list(df.columns)
    expect = df[params[0]].map(fmt).astype(object)
    for c in params[1:]:
        expect = expect + "\x1f" + df[c].map(fmt).astype(object)
    assert config_keys(df, params).tolist() == expect.tolist()


def _bookkeeping(sp: Spool) -> dict[str, object]:
    """What the manifest says each job and sweep was built from."""
    m = json.loads((sp.root / "report" / MANIFEST).read_text())
    sweeps = {sid: (e["sig"], e["page"]) for sid, e in m["sweeps"].items()}
    return {"jobs": m["jobs"], "sweeps": sweeps, "all_jobs": m["all_jobs"], "summaries": m["summaries"]}


def _carried(sp: Spool) -> BuildStats:
    """A rebuild in this process that takes the last build's bookkeeping (`report.carry`), checked
    against a build from its manifest alone: that one finds nothing to redo and writes the same."""
    _, stats = build(sp)
    assert stats.carried
    written = _bookkeeping(sp)
    carry._LAST.clear()  # as a fresh process: groups, members and signatures from the manifest
    _, again = build(sp)
    assert not again.carried
    assert (again.jobs_rendered, again.sweeps_charted, again.sweeps_paged) == ([], [], [])
    assert not again.all_jobs_paged
    assert _bookkeeping(sp) == written
    return stats


def test_a_rebuild_that_carries_the_last_builds_bookkeeping_matches_one_from_the_manifest(sp: Spool) -> None:
    report = sp.root / "report"
    _, first = build(sp)
    assert not first.carried
    assert _carried(sp).jobs_rendered == []  # nothing changed
    sp.submit("train_fake.py", {"lr": 0.05, "hidden": 64, "seed": 0}, job_id="grid-00024", sweep="grid")
    sp.submit("train_fake.py", {"lr": 0.3, "hidden": 4}, job_id="loose-new")
    run_runner(sp, slots=1)
    new = _carried(sp)
    assert new.jobs_rendered == ["grid-00024", "loose-new"] and "grid" in new.sweeps_charted
    assert new.all_jobs_paged and "grid-00024" in (report / "sweeps" / "grid.html").read_text()
    failed = sorted(p.name for p in sp.layout.state_dir(State.FAILED).iterdir() if p.name.startswith("grid-"))
    sp.retry(failed[0])
    assert failed[0] in _carried(sp).jobs_removed
    sp.note("grid-00001", "a note carried over")
    assert _carried(sp).jobs_rendered == ["grid-00001"]
    assert "a note carried over" in (report / "jobs" / "grid-00001.html").read_text()
    (report / "jobs" / "grid-00002.html").unlink()  # a page removed by hand comes back
    assert _carried(sp).jobs_rendered == ["grid-00002"]
    # a job whose id names sweep grid but whose result is another sweep's: grouped by its result
    done = sp.layout.state_dir(State.DONE)
    shutil.copytree(done / "xss-00000", done / "grid-00099", symlinks=True)
    moved = _carried(sp)
    assert "grid-00099" in moved.jobs_rendered
    m = json.loads((report / MANIFEST).read_text())
    assert m["jobs"]["grid-00099"][3] == "__loose__"
    assert "grid-00099" not in (report / "sweeps" / "grid.html").read_text()
    shutil.rmtree(done / "grid-00099")
    assert "grid-00099" in _carried(sp).jobs_removed


def test_the_charts_read_nothing_their_frame_leaves_out(sp: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The charts are prepared from the columns `chart_frame` and `curve_frame` keep: the same
    charts, data and tables beside them as from every column."""
    import report.sweepbuild

    def charts(sp: Spool) -> dict[str, object]:
        shutil.rmtree(sp.root / "report", ignore_errors=True)
        build(sp, processes=0)
        m = json.loads((sp.root / "report" / MANIFEST).read_text())
        return {sid: (e["charts"], e["info"]) for sid, e in m["sweeps"].items()}

    narrowed = charts(sp)
    assert {sid for sid, (c, _) in narrowed.items() if c} == {"grid", "xss"}
    assert "learning_curves" in [c["key"] for c in narrowed["grid"][0]]  # type: ignore[index]
    monkeypatch.setattr(report.sweepbuild, "chart_frame", lambda sub, *_: sub)
    monkeypatch.setattr(report.sweepbuild, "curve_frame", lambda mdf, *_: mdf)
    assert charts(sp) == narrowed


def test_a_scan_split_with_a_worker_finds_what_one_scan_finds(
    sp: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half of a big folder's stats taken by a worker process: the same keys, in the same order."""
    from report import scan
    from report.workers import Workers

    (sp.root / NOTES_DIR / "grid-00001").mkdir(parents=True)  # a note's stamp is folded in after the stats
    monkeypatch.setattr(scan, "SPLIT_AT", 2)
    workers = Workers(1)
    try:
        used: list[int] = []

        def split(fn: object, *args: object) -> object:
            used.append(len(args[-1]))  # type: ignore[arg-type]
            return workers.submit(fn, *args)  # type: ignore[arg-type]

        split_keys = scan.scan_keys(sp, None, split)  # type: ignore[arg-type]
    finally:
        workers.close()
    one = scan.scan_keys(sp, None)
    assert used and list(split_keys.items()) == list(one.items())
    assert len(one) == sum(1 for st in (State.DONE, State.FAILED) for _ in sp.layout.state_dir(st).iterdir())
