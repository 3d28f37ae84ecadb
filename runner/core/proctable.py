"""The process table, read without privilege: each process's parent, group and start time.

Linux reads `/proc/<pid>/stat` (and `environ`, `cmdline`); elsewhere (macOS) `ps` is run with an
argument list, never through a shell. `runner.core.descendants` follows a job's processes by it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "ProcInfo", "Table", "CMD_MAX", "proc_table", "parse_ps", "ps_table", "cmdline", "stat_of", "carrying",
]  # fmt: skip

CMD_MAX = 200


@dataclass(frozen=True)
class ProcInfo:
    """One row of the process table. `(pid, start)` names one process, whatever reuses its pid."""

    ppid: int
    pgid: int
    start: str
    zombie: bool = False
    cmd: str = ""  # `ps` gives it; from /proc it is read only for what is signalled


Table = Callable[[], dict[int, ProcInfo]]


def proc_table() -> dict[int, ProcInfo]:
    """Linux: every process's parent, group and start time, from `/proc/<pid>/stat`."""
    out: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = raw.rsplit(b")", 1)[-1].split()  # the command name may hold spaces and ")"
        if len(fields) > 19:
            zombie = fields[0] in (b"Z", b"X")
            out[int(name)] = ProcInfo(int(fields[1]), int(fields[2]), fields[19].decode(), zombie)
    return out


def parse_ps(text: str) -> dict[int, ProcInfo]:
    """`ps -A -o pid=,ppid=,pgid=,stat=,lstart=,command=` (LC_ALL=C) as a table."""
    out: dict[int, ProcInfo] = {}
    for line in text.splitlines():
        parts = line.split(None, 9)  # pid ppid pgid stat Dow Mon DD HH:MM:SS YYYY command
        if len(parts) < 9 or not all(p.isdigit() for p in parts[:3]):
            continue
        cmd = parts[9].strip() if len(parts) > 9 else ""
        out[int(parts[0])] = ProcInfo(
            int(parts[1]), int(parts[2]), " ".join(parts[4:9]), parts[3].startswith("Z"), cmd[:CMD_MAX]
        )
    return out


def ps_table() -> dict[int, ProcInfo]:
    """Where there is no /proc (macOS): the same table from `ps`, run with a list argv."""
    try:
        r = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat=,lstart=,command="],
            capture_output=True, text=True, errors="replace", timeout=10,
            env={**os.environ, "LC_ALL": "C"}, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_ps(r.stdout)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(CMD_MAX * 4)
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").strip().decode("utf-8", "replace")[:CMD_MAX]


def stat_of(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return None
    if len(fields) <= 19:
        return None
    return ProcInfo(int(fields[1]), int(fields[2]), fields[19].decode(), fields[0] in (b"Z", b"X"))


def carrying(marker: bytes | None, among: Iterable[int] | None = None) -> list[int]:
    """Linux: the processes (not this one; of `among`, when given) whose initial environment
    holds the line `marker`."""
    if not marker or not os.path.isdir("/proc/self"):
        return []
    me, out = os.getpid(), []
    pids = among if among is not None else (int(n) for n in os.listdir("/proc") if n.isdigit())
    for pid in pids:
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    out.append(pid)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return out
