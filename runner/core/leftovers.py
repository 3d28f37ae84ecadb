"""What a job left running after its script's own process exited: found and ended.

A helper started in a new session (`start_new_session=True`, a server, `setsid`) is outside the
script's process group, so ending the group misses it; if it inherited stdout it holds the job's
pipes open, and the job would never end. Every process a job starts inherits the job's
environment, and `SPOOL_OUTPUT_DIR` names the claim's own folder (its token in the name), so on
Linux the job's descendants, wherever they were reparented, are the processes whose initial
environment holds that one line. (A cgroup would also catch a helper that cleared its
environment; one is not always there to be had, and this needs no privilege.) Elsewhere only the
process group is ended.
"""

from __future__ import annotations

import os
import signal

__all__ = ["find", "end"]


def find(marker: bytes) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment holds the line `marker`."""
    if not os.path.isdir("/proc/self"):
        return []
    out = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
            if marker not in env.split(b"\0"):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").strip().decode("utf-8", "replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        out.append((int(name), cmd[:200]))
    return out


def end(pgid: int, marker: bytes | None) -> list[dict[str, object]]:
    """SIGKILL the job's process group and every process carrying `marker`; what was killed."""
    killed: list[dict[str, object]] = []
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid, cmd in find(marker) if marker else []:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append({"pid": pid, "cmd": cmd})
        except (ProcessLookupError, PermissionError):
            pass
    return killed
