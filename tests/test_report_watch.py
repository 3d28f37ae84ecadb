"""`spool report --watch` when the spool goes away under it (a share unmounted, a server asleep).

A real spool in tmp_path; "unmounted" is the real thing a mount point shows then: the folder is
still there, empty. The watch must say so once, not build an empty report, and go on when the
spool is back.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from report.watch import Watch
from spool.api import Spool
from spool.errors import NotFound


def _unmount(root: Path, aside: Path) -> None:
    """What a mount point looks like with its share gone: the same folder, empty."""
    root.rename(aside)
    root.mkdir()


def _remount(root: Path, aside: Path) -> None:
    root.rmdir()
    aside.rename(root)


def test_a_watch_whose_spool_went_away_says_so_instead_of_an_empty_report(spool_root, tmp_path: Path) -> None:
    spool_root.submit("s.py", {"n": 1})
    out = tmp_path / "report-out"
    watch = Watch(spool_root, out, processes=0)
    assert watch.run_once(0.0) is not None
    index = (out / "index.html").read_text()
    aside = tmp_path / "aside"
    _unmount(spool_root.root, aside)
    with pytest.raises(NotFound, match="no spool here"):
        watch.run_once(1000.0)
    with pytest.raises(NotFound, match="no spool here"):
        spool_root.status()  # the long-lived API object too: not a spool of zero jobs
    assert (out / "index.html").read_text() == index  # the last true report is kept
    _remount(spool_root.root, aside)
    assert watch.run_once(2000.0) is not None


def test_the_watch_loop_says_it_once_and_says_when_the_spool_is_back(
    spool_root, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_root.submit("s.py", {"n": 1})
    watch = Watch(Spool(spool_root.root), tmp_path / "report-out", processes=0, interval=0.2, refresh=0.2)
    stop = threading.Event()
    caplog.set_level(logging.WARNING, logger="housespool.report")
    loop = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    loop.start()
    try:
        _wait(lambda: watch.builds >= 1)
        aside = tmp_path / "aside"
        _unmount(spool_root.root, aside)
        time.sleep(1.5)  # seven or so intervals with the spool gone
        gone = [r.getMessage() for r in caplog.records if "no spool here" in r.getMessage()]
        assert len(gone) == 1, gone
        assert "trying again every 0.2 s" in gone[0]
        builds = watch.builds
        _remount(spool_root.root, aside)
        _wait(lambda: watch.builds > builds)
        _wait(lambda: any("the spool is back" in r.getMessage() for r in caplog.records))
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()


def _wait(cond, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)
