"""Early termination of running jobs: hyperband, judged as each metric line arrives.

A job of a sweep whose definition has `early_terminate` gets a `Stopper`. The job's pump thread
hands it every metrics record (`on_record`: an append, nothing more); when the run has a new
value of the metric past the first band, the stopper's own thread reads the other runs'
histories from the folder (`spool.sweeps.histories`, incrementally) and applies the rules
(`spool.sweeps.hyperband`). A stop verdict wakes the loop, which stops the script as a cancel
is stopped (SIGTERM to its group, a grace, SIGKILL); the write-up then puts the job in `done/`,
marked stopped. Records arriving while a judgement runs are judged together next, and
judgements of one job are spaced (`MIN_GAP`, or four times what the last one cost in a spool
of many jobs), so a chatty script costs a bounded share of a core, never a queue; the stop still
comes well within a second of the line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import yaml

from spool.errors import SpoolError, SweepError
from spool.layout import Layout
from spool.sweeps.histories import Histories
from spool.sweeps.hyperband import Hyperband, Verdict, metric_values
from spool.untrusted import read_file

__all__ = ["Stopper", "StopperFactory", "MIN_GAP"]

MIN_GAP = 0.1  # seconds between two judgements of one job, at least
GAP_FACTOR = 4  # ... and at least this many times what the last one cost


class Stopper:
    """Judges one running job of a hyperband sweep; `verdict` is set once, when it must stop."""

    def __init__(self, rules: Hyperband, histories: Histories, job_id: str, wake: Callable[[], None]):
        self.rules = rules
        self._histories = histories
        self._job_id = job_id
        self._wake = wake
        self._values: list[float] = []
        self._lock = threading.Lock()
        self._due = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self.verdict: Verdict | None = None
        self._thread: threading.Thread | None = None  # started by the first record past a band

    def on_record(self, record: dict[str, Any]) -> None:
        """One metrics record of this job (called by its pump thread, in order)."""
        values = metric_values((record,), self.rules.metric)
        if not values:
            return
        with self._lock:
            self._values.extend(values)
            due = len(self._values) > self.rules.bands[0]
        if due and self.verdict is None and not self._closed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"stop-{self._job_id}", daemon=True)
                self._thread.start()
            self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closed:
                return
            self._due.clear()
            started = time.monotonic()
            with self._lock:
                history = list(self._values)
            try:
                others = [r.values for r in self._histories.read(skip=self._job_id).values()]
            except OSError:
                continue  # the share hiccuped: judged again with the next value
            verdict = self.rules.decide(history, others)
            if verdict is not None and verdict.stop:
                self.verdict = verdict
                self._wake()
                return
            # a chatty script in a big spool: judge at most every MIN_GAP s, and spend at most
            # 1/GAP_FACTOR of a core on it (the values that came meanwhile are judged together)
            cost = time.monotonic() - started
            self._closing.wait(max(MIN_GAP, GAP_FACTOR * cost) - cost)

    def close(self) -> None:
        """The job has ended: the thread ends too."""
        self._closed = True
        self._closing.set()
        self._due.set()


class StopperFactory:
    """Makes the stoppers of one runner; each sweep's definition is read once."""

    def __init__(self, layout: Layout, wake: Callable[[], None], log: Callable[[str], None]):
        self._layout = layout
        self._wake = wake
        self._log = log
        self._rules: dict[str, Hyperband | None] = {}

    def rules_for(self, sweep_id: str) -> Hyperband | None:
        if sweep_id not in self._rules:
            self._rules[sweep_id] = self._read(sweep_id)
        return self._rules[sweep_id]

    def _read(self, sweep_id: str) -> Hyperband | None:
        path = self._layout.sweeps / f"{sweep_id}.yaml"
        try:  # a regular file of at most 4 MB: a FIFO here must not block the runner's loop
            doc = yaml.safe_load(read_file(path, limit=4 << 20))
        except FileNotFoundError:
            return None  # a job naming a sweep that has no definition: nothing to judge by
        except (OSError, yaml.YAMLError) as exc:
            self._log(f"cannot read {path} ({exc}): its jobs run without early termination")
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("early_terminate"), dict):
            return None
        metric = doc.get("metric")
        try:
            if not isinstance(metric, dict):
                raise SweepError("no metric", field="metric")
            return Hyperband.from_definition(doc["early_terminate"], metric)
        except (SpoolError, KeyError, TypeError) as exc:
            self._log(f"{path}: early_terminate unusable ({exc}): its jobs run to their end")
            return None

    def for_job(self, sweep_id: str | None, job_id: str) -> Stopper | None:
        if not sweep_id:
            return None
        rules = self.rules_for(sweep_id)
        if rules is None:
            return None
        return Stopper(rules, Histories(self._layout, sweep_id, rules.metric), job_id, self._wake)
