"""Shared fixtures: a real spool in a temporary folder, and the real `spool` command.

Nothing here fakes the filesystem or the spool: `spool_root` is a folder made by `Spool.init`,
and `run_cli` starts the installed `spool` console script as a separate process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from runner_kit import stop_leftover_runners
from spool_testkit import write_scripts

from spool.api import Spool

#: the `spool` console script installed beside this interpreter (the project's venv).
SPOOL_EXE = Path(sys.executable).parent / "spool"


class FixtureSpool(Spool):
    """A real `Spool` that also behaves like its folder's path.

    `spool_root.submit(...)`, `spool_root.root`, `spool_root / "pending"`, `str(spool_root)`
    and `Path(spool_root)` all work, so tests can use it either as the API or as the folder.
    """

    def __fspath__(self) -> str:
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return self.root / other


@pytest.fixture
def spool_root(tmp_path: Path) -> FixtureSpool:
    """A fresh spool at `tmp_path/"spool"` whose scripts folder holds `TEST_SCRIPTS`."""
    sp = FixtureSpool.init(tmp_path / "spool")
    write_scripts(sp.scripts_dir)
    return sp


@pytest.fixture
def repo_scripts() -> Path:
    """The project's own example scripts (`/work/main/scripts`)."""
    return Path(__file__).resolve().parents[1] / "scripts"


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run the real `spool` command: `run_cli("--spool", d, "status", input=None, env=None)`.

    Text output, never raises on a non-zero exit (check `.returncode`). The working directory
    is `tmp_path` (pass `cwd=` to change it), so the default `./spool-dir` never touches the
    project's own. `env` entries are added to this process's environment, minus `SPOOL_DIR`
    unless `env` sets it; a value of None removes a variable.
    """

    def run(
        *args: str | int | float | os.PathLike[str],
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if k != "SPOOL_DIR"}
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        return subprocess.run(
            [str(SPOOL_EXE), *(os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args)],
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd if cwd is not None else tmp_path,
            timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def _no_runner_outlives_its_test():
    """A test that fails before stopping its runner must not leave it running (and its scripts)."""
    yield
    stop_leftover_runners()


@pytest.fixture(autouse=True, scope="session")
def _probe_cache_of_the_session(tmp_path_factory):
    """Runners cache their interpreter's torch/GPU probe (runner.machine.probe): in a folder of
    this test session, never the user's ~/.cache (runner processes inherit the variable)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
