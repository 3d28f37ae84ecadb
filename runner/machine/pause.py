"""`--pause-when-busy`: stop a running job while someone uses the machine, continue it after.

The decision is ``should_pause(user_idle_s, paused, resume_after_s=...)``, pure and tested
with injected readings. ``Pauser.tend`` applies it to one running job from the runner loop:
``SIGSTOP`` to the job's process group when the person at the machine becomes active,
``SIGCONT`` once they have been away for ``resume_after_s``. The runner renews the lease
itself, so a stopped job keeps its lease and no other runner takes it.

Rules:
- "active" means keyboard/mouse input within the last ``ACTIVE_WITHIN_S`` seconds (or
  within ``resume_after_s`` when that is shorter);
- a paused job continues once the user has been idle for ``resume_after_s``: the
  ``--when-user-idle`` minutes when given, else ``DEFAULT_RESUME_AFTER_S``;
- an unknown idle reading never pauses, and continues a paused job (unknown means allowed,
  as in the idle policy);
- a job being stopped (cancel, timeout, lost lease, hand-back) is continued first, so it
  can act on its SIGTERM;
- paused time counts neither towards the job's timeout nor its recorded duration: ``tend``
  returns the seconds the job spent stopped since the last call, and the loop moves the
  slot's start by that much.

The idle reading is ``runner.machine.policy.user_idle_seconds`` (ioreg on macOS, xprintidle or
logind on Linux, GetLastInputInfo on Windows), taken at most every ``READ_EVERY`` seconds.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ACTIVE_WITHIN_S", "DEFAULT_RESUME_AFTER_S", "READ_EVERY", "should_pause", "Pauser"]

ACTIVE_WITHIN_S = 60.0
DEFAULT_RESUME_AFTER_S = 120.0
READ_EVERY = 2.0


def should_pause(
    user_idle_s: float | None,
    paused: bool,
    *,
    resume_after_s: float,
    active_within_s: float = ACTIVE_WITHIN_S,
) -> bool:
    """Whether the job should be stopped now, given the seconds since the last input."""
    if user_idle_s is None or (isinstance(user_idle_s, float) and math.isnan(user_idle_s)):
        return False
    if paused:
        return user_idle_s < resume_after_s
    return user_idle_s < min(active_within_s, resume_after_s)


class _Proc(Protocol):
    kill_deadline: float | None

    @property
    def proc(self) -> Any: ...

    def signal_group(self, sig: int) -> None: ...


def _default_reader() -> float | None:
    from runner.machine.policy import user_idle_seconds

    return user_idle_seconds()


class Pauser:
    """Applies ``should_pause`` to the runner's running jobs."""

    def __init__(
        self,
        resume_after_s: float = DEFAULT_RESUME_AFTER_S,
        *,
        read_idle: Callable[[], float | None] | None = None,
        log: Callable[[str], None] | None = None,
        read_every: float = READ_EVERY,
    ):
        self.resume_after_s = float(resume_after_s)
        self.read_idle = read_idle or _default_reader
        self.read_every = read_every
        self._log = log or (lambda msg: None)
        self._reading: float | None = None
        self._read_at = -math.inf
        self._warned = False
        self._paused: dict[str, float] = {}  # slot key -> when we last accounted its stopped time
        self._since: dict[str, float] = {}  # slot key -> when it was paused

    @classmethod
    def from_options(
        cls, when_user_idle_min: float | None, log: Callable[[str], None] | None = None
    ) -> Pauser:
        resume = when_user_idle_min * 60 if when_user_idle_min is not None else DEFAULT_RESUME_AFTER_S
        return cls(resume, log=log)

    def is_paused(self, key: str) -> bool:
        return key in self._paused

    def paused_for(self, key: str, now: float) -> float:
        """Seconds the job has been paused without a break (0 when running)."""
        since = self._since.get(key)
        return 0.0 if since is None else now - since

    def _idle(self, now: float) -> float | None:
        if now - self._read_at >= self.read_every:
            self._read_at = now
            try:
                self._reading = self.read_idle()
            except Exception:  # a reader that breaks must not stop the runner
                self._reading = None
            if self._reading is None and not self._warned:
                self._warned = True
                self._log("warning: user idle time unknown: --pause-when-busy pauses nothing")
        return self._reading

    def tend(self, key: str, proc: _Proc, now: float) -> float:
        """Stop or continue one job; returns the seconds it has been stopped since the last call."""
        paused = key in self._paused
        ending = proc.kill_deadline is not None or proc.proc.poll() is not None
        want = False if ending else should_pause(self._idle(now), paused, resume_after_s=self.resume_after_s)
        job = key.partition("@")[0]
        if want and not paused:
            proc.signal_group(signal.SIGSTOP)
            self._paused[key] = self._since[key] = now
            self._log(f"paused {job}: the machine is in use")
            return 0.0
        if paused:
            stopped = max(0.0, now - self._paused[key])
            if want:
                self._paused[key] = now
            else:
                proc.signal_group(signal.SIGCONT)
                del self._paused[key]
                self._since.pop(key, None)
                if not ending:
                    self._log(f"continued {job}: the machine is idle again")
            return stopped
        return 0.0
