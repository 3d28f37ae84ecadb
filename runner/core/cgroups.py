"""cgroup v2 folders: this process's own, and the few writes a job's cgroup needs.

Only the unified hierarchy (cgroup v2, alone or beside v1) is used. A cgroup is made under the
runner's own only where that is writable: as root, or delegated to the runner's user (a systemd
unit with `Delegate=yes`); everything here returns False or None instead of raising.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["cgroup_home", "write", "populated", "frozen", "wait_for", "rmdir", "listdir", "tidy"]


def write(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, text.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _events(path: Path) -> dict[str, str]:
    try:
        text = (path / "cgroup.events").read_text()
    except OSError:
        return {}
    return dict(ln.split(" ", 1) for ln in text.splitlines() if " " in ln)


def populated(path: Path) -> bool:
    return _events(path).get("populated", "0").strip() != "0"


def frozen(path: Path) -> bool:
    return _events(path).get("frozen", "1").strip() == "1"


def wait_for(cond: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() >= end:
            return False
        time.sleep(0.002)
    return True


def rmdir(path: Path) -> bool:
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def cgroup_home() -> Path | None:
    """This process's own cgroup v2 folder (`0::<path>` in /proc/self/cgroup, under a cgroup2
    mount), or None: not Linux, cgroup v1 only, or the cgroup is not visible from here."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    own = next((ln[3:] for ln in lines if ln.startswith("0::")), None)
    if own is None or ".." in own.split("/"):
        return None  # outside this cgroup namespace's root
    for line in mounts:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or not right.startswith("cgroup2 ") or len(fields) < 5:
            continue
        root, point = fields[3], fields[4].replace("\\040", " ")
        if own == root or own.startswith(root.rstrip("/") + "/"):
            folder = Path(point) / own[len(root) :].lstrip("/")
            if (folder / "cgroup.procs").is_file():
                return folder
    return None


def _alive_pid(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listdir(path: Path) -> list[str]:
    try:
        return [p.name for p in os.scandir(path) if p.is_dir()]
    except OSError:
        return []


def tidy(own: Path) -> None:
    """Remove the empty job cgroups of runners no longer running (killed, so not closed)."""
    for name in listdir(own):
        pid = name.removeprefix("housespool-")
        if name.startswith("housespool-") and pid.isdigit() and not _alive_pid(int(pid)):
            for job in listdir(own / name):
                rmdir(own / name / job)
            rmdir(own / name)
