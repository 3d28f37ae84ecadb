"""The runner's part in adaptive sweeps: with a free job slot, it proposes the next points.

An adaptive sweep has no controller; every runner with room for work tops the open sweeps it
can serve up to as many pending points as it has free slots (`spool.sweeps.adaptive`), then
claims as usual. A failure to propose (a full disk, a share gone away, a broken definition) is
logged and the runner goes on: the next proposer, here or elsewhere, finishes the slot.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from spool.api import Spool
from spool.errors import SpoolError
from spool.protocol import FsOps
from spool.untrusted import read_file

__all__ = ["Proposer"]


class Proposer:
    """One look at the open adaptive sweeps per call; `can_serve` says if this runner could run
    a sweep's jobs (its template's `requires`)."""

    def __init__(self, spool: Spool, fs: FsOps, can_serve: Callable[[dict[str, Any]], bool], log: Any):
        self.spool, self.fs, self.can_serve, self._log = spool, fs, can_serve, log
        self._warned: set[str] = set()
        self._seen: tuple[int, bool] | None = None  # (sweeps/ mtime, some definition says bayes)

    def _maybe_adaptive(self) -> bool:
        """Whether some sweep definition may be adaptive (its bytes name `bayes`): only then is the
        proposer (numpy, scipy: seconds to import on an old machine) loaded, so a runner on a spool
        without adaptive sweeps takes its first job without waiting for it. Judged again when
        `sweeps/` changes."""
        folder = self.spool.layout.sweeps
        try:
            stamp = os.stat(folder).st_mtime_ns
        except OSError:
            return False
        if self._seen is None or self._seen[0] != stamp:
            found = False
            for name in os.listdir(folder):
                if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                    try:
                        found = b"bayes" in read_file(folder / name)  # never a FIFO: it would block
                    except OSError:
                        continue
                    if found:
                        break
            self._seen = (stamp, found)
        return self._seen[1]

    def step(self, free: int) -> bool:
        """Propose for every open sweep this runner can serve; True if a job was published."""
        if free <= 0 or not self._maybe_adaptive():
            return False
        from spool.sweeps.adaptive import open_sweeps, propose_next

        published = False
        for sweep_id, doc in open_sweeps(self.spool.layout):
            requires = (doc.get("template") or {}).get("requires") or {}
            if not self.can_serve(requires):
                continue
            try:
                added = propose_next(self.spool, sweep_id, want=free, fs=self.fs)
            except (SpoolError, ValueError, KeyError, TypeError) as exc:
                if sweep_id not in self._warned:  # once per sweep: the next step tries again
                    self._warned.add(sweep_id)
                    self._log(f"warning: cannot propose for sweep {sweep_id}: {exc}")
                continue
            if added:
                published = True
                self._log(f"proposed {', '.join(added)}")
        return published
