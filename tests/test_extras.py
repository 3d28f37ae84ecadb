"""A runner-only machine: `pip install housespool` (no extras) runs jobs; `spool report` names its extra.

A real virtual environment with only the core install (from a copy of this source tree, its
dependencies from the package index or pip's cache), checked to lack matplotlib and jinja2.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("spool", "runner", "house", "report", "service")


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("core-venv")
    src = base / "src"
    src.mkdir()
    for name in (*PACKAGES, "pyproject.toml", "README.md"):
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(item, src / name)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
        capture_output=True, text=True, timeout=900,
    )
    if pip.returncode != 0:
        pytest.fail(f"core install failed: {pip.stderr[-2000:]}")
    return venv


def test_core_install_runs_a_job_and_refuses_report_in_one_line(core_venv, tmp_path):
    py = core_venv / "bin" / "python"
    lacks = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('matplotlib'), "
                            "u.find_spec('jinja2'), u.find_spec('filelock'))"],
                           capture_output=True, text=True, timeout=60)
    assert lacks.stdout.split() == ["None", "None", "None"], lacks.stdout  # the core install only
    spool = str(core_venv / "bin" / "spool")
    root = tmp_path / "sp"

    def run(*args: str, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run([spool, "--spool", str(root), *args], capture_output=True, text=True,
                              timeout=180, **kw)

    assert run("init").returncode == 0
    (root / "scripts" / "s.py").write_text("import json\nprint(json.dumps({'ok': 1}))\n")
    job = run("submit", "s.py", "-p", "x=1").stdout.strip()
    runner = run("runner", "--exit-when-idle", "--nice", "0")
    assert runner.returncode == 0, runner.stderr
    assert "unavailable" not in runner.stderr
    status = run("status")
    assert status.returncode == 0 and "done: 1" in status.stdout
    assert run("results", "--cols", "id,result.ok").stdout.split()[-2:] == [job, "1"]
    report = run("report")
    assert report.returncode == 1 and "Traceback" not in report.stderr
    lines = report.stderr.strip().splitlines()
    assert len(lines) == 1, report.stderr
    assert "pip install 'housespool[report]'" in lines[0] and lines[0].startswith("spool report:")
