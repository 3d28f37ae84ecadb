"""`spool serve --report` keeps the report it serves up to date while it runs (its pages are live).

A real spool run by the real runner; the app's lifespan (the watch thread) runs inside
`TestClient` used as a context manager, and the report is read back over HTTP.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'housespool[serve]')")
pytest.importorskip("report.build", reason="the report package is not available")

from fastapi.testclient import TestClient  # noqa: E402
from report_kit import SCRIPT, run_runner, write_sweep  # noqa: E402

from service.app import create_app  # noqa: E402
from spool.api import Spool  # noqa: E402


def _beacon(c: TestClient) -> dict:
    r = c.get("/report/live.js")
    assert r.status_code == 200
    m = re.fullmatch(r"window\.spoolLive && window\.spoolLive\((.*)\);\n", r.text, re.S)
    assert m, r.text[:200]
    return json.loads(m.group(1))


def test_served_report_follows_the_spool(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "sp")
    (sp.scripts_dir / "train_fake.py").write_text(SCRIPT)
    points = [{"lr": lr, "hidden": 16, "seed": 0} for lr in (0.001, 0.01)]
    write_sweep(sp, "s", points, {"name": "accuracy", "goal": "maximize"}, {"lr": {"values": [0.001, 0.01]}})
    with TestClient(create_app(sp.root, report=True), base_url="http://127.0.0.1") as c:
        page = c.get("/report/sweeps/s.html")
        assert page.status_code == 200 and 'data-live="sweep:s"' in page.text  # two jobs pending
        before = _beacon(c)["pages"]["sweep:s"]
        run_runner(sp)  # both jobs run and end while the server serves
        deadline = time.monotonic() + 60
        while _beacon(c)["pages"]["sweep:s"] == before:
            assert time.monotonic() < deadline, "the served report was not rebuilt"
            time.sleep(0.3)
        deadline = time.monotonic() + 30
        while "s-00001" not in (text := c.get("/report/sweeps/s.html").text) or "data-live=" in text:
            assert time.monotonic() < deadline, "the sweep page did not follow"
            time.sleep(0.3)
    assert 'data-live="' not in text  # finished: the page no longer asks
