"""Job states: the folder names, and which moves between them are allowed."""

from __future__ import annotations

from enum import Enum

__all__ = ["State", "TRANSITIONS", "can_move"]


class State(str, Enum):
    """A job's state is the folder it lives in."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


#: every allowed move; each one is a single atomic rename in `spool.protocol`.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.CLAIMED}),  # claim (also how cancel/reject take a pending job)
    State.CLAIMED: frozenset(
        {State.DONE, State.FAILED, State.PENDING, State.CLAIMED}
    ),  # finish, fail, requeue, take over
    State.DONE: frozenset(),
    State.FAILED: frozenset({State.PENDING}),  # retry
}


def can_move(src: State, dst: State) -> bool:
    return dst in TRANSITIONS[src]
