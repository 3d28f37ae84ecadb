"""What a finished script left (`Outcome`) and how the script contract judges it (`classify`)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "classify", "MAX_LINE"]

MAX_LINE = 1 << 20  # the longest stdout line read as a metrics record (and so as the result)


@dataclass
class Outcome:
    """What a finished process left: its exit code, the last JSON object, the stderr tail."""

    exit_code: int | None
    result: dict[str, Any] | None
    metrics_count: int
    stderr_tail: str
    stdout_truncated: bool
    stderr_truncated: bool
    #: the last JSON-object-like line was over MAX_LINE: the result is unknown, never an earlier line
    overlong_result: bool = False
    rusage: Any = None  # `wait4`'s resource use of the script (None: a warm job)
    wall: float = 0.0  # seconds from the start to the exit
    leftovers: list[dict[str, Any]] | None = None  # what the job left running, killed at its end


def classify(
    o: Outcome, *, timed_out: bool = False, cancelled: bool = False, timeout: float | None = None
) -> tuple[str, dict[str, str] | None]:
    """`("done", None)` or `("failed", {"kind", "message"})` by the script contract."""
    if cancelled:
        return "failed", {"kind": "cancelled", "message": "cancelled while running"}
    if timed_out:
        return "failed", {"kind": "timeout", "message": f"stopped after the {timeout:g} s timeout"}
    if o.exit_code != 0:
        if o.exit_code is not None and o.exit_code < 0:
            try:
                name = signal.Signals(-o.exit_code).name
            except ValueError:
                name = f"signal {-o.exit_code}"
            return "failed", {"kind": "exit", "message": f"killed by {name}"}
        return "failed", {"kind": "exit", "message": f"exit code {o.exit_code}"}
    if o.overlong_result:
        return "failed", {
            "kind": "result_too_long",
            "message": f"the script's last JSON line is over {MAX_LINE} bytes, the most a result may be;"
            " it is in stdout.log, and no earlier line stands in for it",
        }
    if o.result is None:
        return "failed", {"kind": "no_result", "message": "the script printed no JSON object on stdout"}
    status = o.result.get("status")
    try:
        code = int(status) if status is not None and not isinstance(status, bool) else None
    except (TypeError, ValueError):
        code = None
    if code is not None and code >= 400:
        msg = o.result.get("message") or o.result.get("error") or f"status {code}"
        return "failed", {"kind": "status", "message": f"status {code}: {msg}"}
    return "done", None
