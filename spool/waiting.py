"""Where a set of jobs stands: one scandir per state, no file reads (cheap to poll)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from spool.layout import Layout
from spool.states import State

__all__ = ["Progress", "snapshot", "eta_seconds", "format_duration"]


@dataclass
class Progress:
    """Counts of the watched jobs per state, and which failed."""

    states: dict[str, State | None]
    failed: list[str] = field(default_factory=list)

    def count(self, state: State) -> int:
        return sum(1 for s in self.states.values() if s is state)

    @property
    def finished(self) -> int:
        return self.count(State.DONE) + self.count(State.FAILED)

    @property
    def missing(self) -> int:
        return sum(1 for s in self.states.values() if s is None)

    @property
    def all_ended(self) -> bool:
        return self.finished == len(self.states)

    def line(self, eta: float | None = None) -> str:
        total = len(self.states)
        done, failed = self.count(State.DONE), self.count(State.FAILED)
        text = (
            f"{self.finished}/{total} ended: done {done}, failed {failed}, "
            f"running {self.count(State.CLAIMED)}, pending {self.count(State.PENDING)}"
        )
        if self.missing:
            text += f", missing {self.missing}"
        if eta is not None and not self.all_ended:
            text += f", ETA {format_duration(eta)}"
        return text


def snapshot(layout: Layout, ids: Iterable[str]) -> Progress:
    wanted = set(ids)
    states: dict[str, State | None] = dict.fromkeys(wanted)
    for state in (State.PENDING, State.CLAIMED, State.DONE, State.FAILED):
        for entry in layout.entries(state):
            if entry.id in wanted:
                states[entry.id] = state
    failed = sorted(i for i, s in states.items() if s is State.FAILED)
    return Progress(states, failed)


def eta_seconds(
    started: float, finished_at_start: int, progress: Progress, now: float | None = None
) -> float | None:
    """Remaining time at the rate jobs have ended since we started watching."""
    now = time.monotonic() if now is None else now
    ended = progress.finished - finished_at_start
    if ended <= 0:
        return None
    rate = ended / max(now - started, 1e-6)
    return (len(progress.states) - progress.finished) / rate


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
