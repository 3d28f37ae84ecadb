"""The report's sweep page for a bayes sweep: the optimisation trace and the metric by run order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_bayes_sweep import QUAD, SWEEP

from spool import Spool

BIN = Path(sys.executable).parent / "spool"


def test_bayes_sweep_page_has_the_trace_and_the_order_charts(tmp_path: Path) -> None:
    sp = Spool.init(tmp_path / "spool")
    (sp.scripts_dir / "quad.py").write_text(QUAD)
    f = tmp_path / "s.yaml"
    f.write_text(SWEEP.format(cap=6))

    def run(*args: str) -> str:
        out = subprocess.run([str(BIN), "--spool", str(sp.root), *args], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout

    sid = run("sweep", str(f)).split()[1].rstrip(":")
    run("runner", "--exit-when-idle", "-q")
    run("report")
    page_dir = sp.root / "report" / "sweeps" / sid
    assert (page_dir / "bayes_trace.svg").stat().st_size > 1000
    assert (page_dir / "bayes_order.png").stat().st_size > 1000
    html = "".join(p.read_text() for p in (sp.root / "report").rglob("*.html") if sid in p.read_text())
    assert "Optimisation trace" in html and "bayes_trace.svg" in html and "by run order" in html
    svg = (page_dir / "bayes_trace.svg").read_text()
    assert "best so far" in svg
