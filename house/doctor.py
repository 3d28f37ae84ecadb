"""`spool doctor`: check that this machine can work on a spool, and say how to fix what cannot.

Each check is ``Check(name, status, detail, fix)`` with status ``ok``, ``warn`` or ``fail``;
``spool doctor`` exits 1 when any check fails. The checks, in order:

- ``interpreter``: the Python running housespool (>= 3.10);
- ``spool``: the folder exists, has ``spool.toml`` (readable) and its state folders;
- ``scripts``: the scripts folder exists;
- ``writable``: a file can be created and removed in every state folder and ``runners/``;
- ``rename``: the renames claims rely on behave on this folder: the source vanishes at once,
  a second rename of it fails, a rename onto a non-empty folder is refused, and of two
  threads racing to rename one file exactly one wins;
- ``clock``: the spool's clock (the mtime of a file just written there) against this
  machine's. Leases never compare two machines' clocks, so an offset is only a warning (the
  ``--hours`` rule and the times in results use the local clock);
- ``filesystem``: what the folder is mounted from (Linux ``/proc/self/mountinfo``, macOS
  ``mount``): local, NFS (``soft`` mounts warned about), SMB, sshfs, or something untested;
- ``sync``: replicated sync is not safe for claims. Detected by the marker files such tools
  keep in the synced folder or one of its parents (Syncthing ``.stfolder``/``.stversions``,
  Dropbox ``.dropbox``/``.dropbox.cache``, Nextcloud/ownCloud ``.sync_*.db``, Resilio
  ``.sync/ID``), by conflict copies in the spool (``*.sync-conflict-*``, "conflicted copy"),
  and, as a warning only, by path names (``Dropbox``, ``OneDrive``, ``iCloud Drive``...);
- ``git``: git is installed and the scripts folder is inside a repository;
- ``torch``: the job interpreter's torch and the device it will use (``runner.machine.capabilities
  .detect``), numpy 2 under a torch older than 2.3, Python 3.13+ on an Intel Mac.

Everything that runs a program goes through ``run(argv, timeout)``, and the clock, the mount
table and the platform are parameters, so every check is tested on any machine.

The checks live in ``house.doctor_checks`` (folder, clock, tools) and ``house.doctor_storage``
(filesystem, sync); this module runs them in order, formats them and re-exports them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from house.doctor_checks import (
    FAIL,
    OK,
    WARN,
    Check,
    check_clock,
    check_git,
    check_interpreter,
    check_rename,
    check_spool,
    check_torch,
    check_writable,
    numpy_too_new,
)
from house.doctor_features import check_features
from house.doctor_storage import (
    check_filesystem,
    check_sync,
    conflict_files,
    describe_mount,
    find_mount,
    parse_mount_output,
    parse_mountinfo,
    sync_markers,
)
from runner.machine.proc import Run, subprocess_run_default

__all__ = [
    "OK",
    "WARN",
    "FAIL",
    "Check",
    "run_doctor",
    "check_writable",
    "check_rename",
    "check_clock",
    "check_sync",
    "check_filesystem",
    "check_git",
    "check_torch",
    "parse_mountinfo",
    "parse_mount_output",
    "find_mount",
    "describe_mount",
    "sync_markers",
    "conflict_files",
    "numpy_too_new",
    "format_checks",
]

# --------------------------------------------------------------------------- all of it


def run_doctor(
    spool: Path,
    *,
    python: str | None = None,
    scripts: str | None = None,
    probe_torch: bool = True,
    run: Run = subprocess_run_default,
    clock: Callable[[], float] = time.time,
    system: str | None = None,
    mountinfo: str | None = None,
) -> list[Check]:
    """Every check, in order; checks that need the spool are left out when it is not there."""
    checks = [check_interpreter()]
    spool_check, settings = check_spool(spool)
    checks.append(spool_check)
    scripts_dir: Path | None = None
    if settings is not None:
        scripts_dir = Path(scripts).expanduser().resolve() if scripts else settings.scripts_dir(spool)
        if scripts_dir.is_dir():
            checks.append(Check("scripts", OK, str(scripts_dir)))
        else:
            checks.append(
                Check(
                    "scripts",
                    FAIL,
                    f"the scripts folder {scripts_dir} does not exist on this machine",
                    "set `scripts` in spool.toml, or give this machine's folder: spool runner --scripts DIR",
                )
            )
    if spool_check.status != FAIL:
        writable = check_writable(spool)
        checks.append(writable)
        if writable.status == OK:
            checks.append(check_rename(spool))
            checks.append(check_clock(spool, clock))
        checks.append(check_filesystem(spool, system=system, run=run, mountinfo=mountinfo))
        checks.append(check_sync(spool))
    checks.append(check_git(scripts_dir, run))
    checks.append(check_torch(python or sys.executable, run, probe_torch=probe_torch, system=system))
    if spool_check.status != FAIL and checks_writable(checks):
        checks += check_features(spool)  # last: its O_APPEND probe can upset an SMB mount for seconds
    return checks


def checks_writable(checks: list[Check]) -> bool:
    return any(c.name == "writable" and c.status == OK for c in checks)


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failed")
    return "\n".join(lines) + "\n"
