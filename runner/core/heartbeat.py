"""`runners/<name>.json`: who this runner is, what it can do, what it runs, when it was last seen."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from runner.core.options import RunnerOptions
from runner.machine.capabilities import Capabilities
from spool.errors import StorageError
from spool.jobs import utc_now
from spool.layout import Layout
from spool.protocol import publish_json

__all__ = ["Heartbeat"]

MIN_GAP = 1.0


class Heartbeat:
    """Rewritten every `heartbeat_seconds`, and soon after the running jobs change."""

    def __init__(self, layout: Layout, opts: RunnerOptions, caps: Capabilities, spool_root: Path):
        self.path = layout.runners / f"{opts.name}.json"
        self.opts = opts
        self.caps = caps
        self.started = utc_now()
        self.spool_root = spool_root
        self._last = -1e18
        self._last_state: tuple[Any, ...] = ()
        #: extra top-level keys, written when non-empty (e.g. `revs_missing`: rev -> why)
        self.extra: dict[str, Any] = {}

    def maybe_write(self, now: float, jobs: list[str], status: str) -> None:
        state = (tuple(jobs), status)
        due = now - self._last >= self.opts.heartbeat_seconds
        changed = state != self._last_state and now - self._last >= MIN_GAP
        if due or changed:
            self.write(now, jobs, status)

    def write(self, now: float, jobs: list[str], status: str) -> None:
        from spool import __version__

        self._last = now
        self._last_state = (tuple(jobs), status)
        doc = {
            "name": self.opts.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": __version__,
            "status": status,
            "jobs": jobs,
            "slots": self.opts.slots,
            "started": self.started,
            "last_seen": utc_now(),
            "python": self.opts.python,
            "tags": self.opts.tags,
            "heartbeat_seconds": self.opts.heartbeat_seconds,
            "capabilities": self.caps.to_dict(),
        }
        doc.update({k: v for k, v in self.extra.items() if v})
        try:
            publish_json(self.path, doc, fsync=False)
        except StorageError:
            pass  # a full disk must not stop the runner; the lease logic copes
