"""Whether git could find a repository from a folder, answered without starting git.

A runner records git provenance for every job; on a spool outside any repository that
answer is "no git repository" every time, and starting git to hear it costs 2-3 ms of CPU.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["outside_any_repository", "RepoWatch"]


def outside_any_repository(folder: Path) -> bool:
    """True when git's discovery cannot find a repository from `folder`: neither it nor any
    folder above it holds `.git` or is itself a git dir (`HEAD`). `GIT_DIR` and friends are
    removed from git's environment, and ceilings only stop the search sooner, so this is a
    sufficient test; it spares a git process per job on spools outside any repository."""
    try:
        here = folder.resolve()
    except (OSError, RuntimeError):
        return False
    return _none_above(here)


def _none_above(here: Path) -> bool:
    """No `.git` or `HEAD` in the resolved folder `here` or any folder above it."""
    return not any(os.path.lexists(d / ".git") or os.path.lexists(d / "HEAD") for d in (here, *here.parents))


class RepoWatch:
    """`outside_any_repository` for one folder asked again and again (a runner, per job),
    judged afresh only when the folder or one above it has changed (mtime), or moved.

    A `.git` appearing changes its parent's mtime. Folders changed in the last 2 s are not
    trusted (a coarse mtime, 1 s on HFS+, could hide a second change), as git does with its
    index."""

    RACY = 2.0

    def __init__(self) -> None:
        self._key: tuple[str, int, int] | None = None
        self._stamps: list[tuple[str, int]] = []
        self._verdict = False

    def outside(self, folder: Path) -> bool:
        try:
            st = os.stat(folder)
        except OSError:
            return False
        key = (str(folder), st.st_dev, st.st_ino)
        if key == self._key and self._fresh():
            return self._verdict
        try:
            here = folder.resolve()
            stamps = [(str(d), os.stat(d).st_mtime_ns) for d in (here, *here.parents)]
        except (OSError, RuntimeError):
            self._key = None
            return False
        verdict = _none_above(here)  # judged after the stamps: a change wins
        newest = max(m for _, m in stamps) / 1e9
        self._key = key if time.time() - newest > self.RACY else None
        self._stamps, self._verdict = stamps, verdict
        return verdict

    def _fresh(self) -> bool:
        try:
            return all(os.stat(d).st_mtime_ns == m for d, m in self._stamps)
        except OSError:
            return False
