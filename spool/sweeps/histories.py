"""The metric histories of a sweep's runs, read from the folder: the `metrics.jsonl` of its jobs
in `claimed/`, `done/` and `failed/` (pending jobs have none).

`Histories` keeps what it has read and reads on from there: a finished job's file is read
once, a running job's only past the bytes already read, so judging a run as each of its metric
lines arrives costs three folder listings and one `stat` per job of the sweep. Only complete
lines count (the last one may still be being written). A file that shrank or was replaced (a
retry's new attempt) is read again from the start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from spool.layout import Layout
from spool.results import METRICS_FILE
from spool.states import State
from spool.sweeps.hyperband import metric_values
from spool.untrusted import open_regular

__all__ = ["Histories", "RunHistory"]

_ORDER = (State.CLAIMED, State.DONE, State.FAILED)  # a job moving on is seen in the later folder
_ENDED = (State.DONE, State.FAILED)


@dataclass
class RunHistory:
    """One job's history of the metric, and where the job is."""

    job_id: str
    state: State
    folder: str
    values: list[float] = field(default_factory=list)
    _inode: tuple[int, int] = (0, 0)
    _offset: int = 0
    _stamp: int = -1  # an ended job's folder mtime when last read


class Histories:
    """Reads the histories of the jobs `<sweep>-*` for one metric, incrementally."""

    def __init__(self, layout: Layout, sweep_id: str, metric: str):
        self.layout = layout
        self.prefix = sweep_id + "-"
        self.metric = metric
        self._runs: dict[str, RunHistory] = {}

    def _folders(self) -> dict[str, tuple[State, str]]:
        """The sweep's job folders: one listdir per state, names filtered by prefix first (a
        spool of 20,000 other jobs costs a few milliseconds here, not a parse of each name)."""
        found: dict[str, tuple[State, str]] = {}
        prefix = self.prefix
        for state in _ORDER:
            where = str(self.layout.state_dir(state))
            try:
                names = [n for n in os.listdir(where) if n.startswith(prefix)]
            except FileNotFoundError:
                continue
            for name in names:
                job_id = self.layout.id_from_name(state, name)
                if job_id is not None:
                    found[job_id] = (state, os.path.join(where, name))
        return found

    def read(self, skip: str | None = None) -> dict[str, RunHistory]:
        """Every job of the sweep with its history as of now (`skip`: a job not to read)."""
        found = self._folders()
        for job_id in list(self._runs):
            if job_id not in found:
                del self._runs[job_id]  # back in pending/ (a retry) or gone
        for job_id, (state, folder) in found.items():
            if job_id == skip:
                continue
            run = self._runs.get(job_id)
            if run is None:
                run = self._runs[job_id] = RunHistory(job_id, state, folder)
            elif state in _ENDED and run.state is state and run.folder == folder and self._unchanged(run):
                continue  # ended and read to its end: its file no longer grows
            run.state, run.folder = state, folder
            self._read_on(run)
        return {k: v for k, v in self._runs.items() if k != skip}

    @staticmethod
    def _unchanged(run: RunHistory) -> bool:
        """True if an ended job's folder is as it was when last read (a retry of a failed job
        that failed again in between replaces its metrics.jsonl, which changes the folder)."""
        try:
            stamp = os.stat(run.folder).st_mtime_ns
        except OSError:
            return False
        same = stamp == run._stamp
        run._stamp = stamp
        return same

    def _read_on(self, run: RunHistory) -> None:
        path = os.path.join(run.folder, METRICS_FILE)
        try:  # a regular file only: a FIFO named metrics.jsonl never blocks the reader
            f = open_regular(path)
        except OSError:
            return  # none yet (a job just claimed), the job moved on between two looks, or a pipe
        with f:
            try:
                st = os.fstat(f.fileno())
                inode = (st.st_dev, st.st_ino)
                if inode != run._inode or st.st_size < run._offset:
                    run.values, run._offset, run._inode = [], 0, inode
                if st.st_size == run._offset:
                    return
                f.seek(run._offset)
                data = f.read()
            except OSError:
                return
        end = data.rfind(b"\n") + 1  # only whole lines; the rest is read next time
        records = []
        for line in data[:end].splitlines():
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError):
                continue
        run.values.extend(metric_values(records, self.metric))
        run._offset += end
