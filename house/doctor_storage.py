"""What the spool folder lives on, for the doctor: its mount (local, NFS, SMB, sshfs) and replicated sync."""

from __future__ import annotations

import os
import platform
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from house.doctor_checks import FAIL, OK, WARN, Check
from runner.machine.proc import Run, subprocess_run_default

__all__ = [
    "Mount",
    "parse_mountinfo",
    "parse_mount_output",
    "find_mount",
    "describe_mount",
    "check_filesystem",
    "SYNC_MARKERS",
    "sync_markers",
    "conflict_files",
    "check_sync",
]

CONFLICT_SCAN_LIMIT = 5000


# --------------------------------------------------------------------------- what the folder is


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str
    options: tuple[str, ...]


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def parse_mountinfo(text: str) -> list[Mount]:
    """Linux ``/proc/self/mountinfo``: mount point, type, source, mount + super options."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        opts = lf[5].split(",") + (rf[2].split(",") if len(rf) > 2 else [])
        mounts.append(Mount(_unescape(lf[4]), rf[0], _unescape(rf[1]), tuple(opts)))
    return mounts


_MOUNT_LINE = re.compile(r"^(?P<source>.+?) on (?P<point>.+?) \((?P<opts>[^()]*)\)\s*$")


def parse_mount_output(text: str) -> list[Mount]:
    """macOS/BSD ``mount``: ``SOURCE on POINT (TYPE, opt, opt...)``."""
    mounts = []
    for line in text.splitlines():
        m = _MOUNT_LINE.match(line.strip())
        if not m:
            continue
        parts = [p.strip() for p in m.group("opts").split(",") if p.strip()]
        if not parts:
            continue
        mounts.append(Mount(m.group("point"), parts[0], m.group("source"), tuple(parts[1:])))
    return mounts


def find_mount(path: str, mounts: Iterable[Mount]) -> Mount | None:
    """The mount holding ``path``: the longest mount point that is a prefix of it."""
    best: Mount | None = None
    for m in mounts:
        point = m.point.rstrip("/") or "/"
        inside = path == point or path.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and (best is None or len(point) > len(best.point.rstrip("/") or "/")):
            best = m
    return best


_LOCAL = {
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "tmpfs", "overlay",
    "apfs", "hfs", "ufs", "bcachefs", "ramfs",
}  # fmt: skip
_NFS = {"nfs", "nfs4"}
_SMB = {"cifs", "smb3", "smbfs"}


def describe_mount(m: Mount) -> Check:
    t = m.fstype.lower()
    if t in _NFS:
        detail = f"NFS from {m.source}"
        extra = [o for o in m.options if o.startswith(("lookupcache", "actimeo", "acdir")) or o == "noac"]
        if extra:
            detail += f" ({', '.join(extra)})"
        if "soft" in m.options or any(o.startswith("softerr") for o in m.options):
            return Check(
                "filesystem",
                WARN,
                detail + ": a `soft` mount turns a slow server into I/O errors in the middle of a claim",
                "mount with `hard` (the default): see docs/house-setup.md",
            )
        return Check("filesystem", OK, detail + ": one folder served by one machine, safe for claims")
    if t in _SMB:
        return Check("filesystem", OK, f"SMB share {m.source}: one folder served by one machine")
    if t == "fuse.smbnetfs":  # libsmbclient, as gvfs: no hard links, no O_APPEND (see below)
        return Check("filesystem", OK, "SMB through smbnetfs: one folder served by one machine")
    if t == "fuse.sshfs" or (t in ("macfuse", "osxfuse", "fuse") and "@" in m.source):
        return Check("filesystem", OK, f"sshfs from {m.source}: one folder served by one machine")
    if t in _LOCAL or m.source.startswith("/dev/"):
        return Check("filesystem", OK, f"a local {m.fstype} folder: runners on other machines need it shared")
    return Check(
        "filesystem",
        WARN,
        f"a {m.fstype} mount ({m.source}): housespool has been checked on local folders, NFS, SMB and sshfs",
        "if other machines use this spool, serve it from one machine over NFS, SMB or sshfs",
    )


def check_filesystem(
    root: Path, *, system: str | None = None, run: Run = subprocess_run_default, mountinfo: str | None = None
) -> Check:
    sysname = (system if system is not None else platform.system()).lower()
    real = os.path.realpath(root)
    mounts: list[Mount] = []
    if mountinfo is not None:
        mounts = parse_mountinfo(mountinfo) if sysname == "linux" else parse_mount_output(mountinfo)
    elif sysname == "linux":
        try:
            mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text(errors="replace"))
        except OSError:
            mounts = []
    elif sysname == "darwin":
        rc, out, _ = run(["mount"], 15.0)
        mounts = parse_mount_output(out) if rc == 0 else []
    m = find_mount(real, mounts)
    if m is None:
        return Check("filesystem", OK, "mount table not available: not checked")
    return describe_mount(m)


#: marker name -> the sync tool that leaves it in (or above) a synced folder.
SYNC_MARKERS: dict[str, str] = {
    ".stfolder": "Syncthing",
    ".stversions": "Syncthing",
    ".stignore": "Syncthing",
    ".dropbox": "Dropbox",
    ".dropbox.cache": "Dropbox",
    ".dropbox.attr": "Dropbox",
    ".owncloudsync.log": "Nextcloud/ownCloud",
}
_SYNC_DB = re.compile(r"^\._?sync_[0-9a-f]+\.db$", re.IGNORECASE)  # Nextcloud/ownCloud .sync_*.db
_CONFLICT = (
    (re.compile(r"\.sync-conflict-\d{8}-\d{6}"), "Syncthing"),
    (re.compile(r"conflicted copy", re.IGNORECASE), "Dropbox/Nextcloud"),
    (re.compile(r"^\.syncthing\..+\.tmp$"), "Syncthing"),
)
_CLOUD_NAMES = (
    ("dropbox", "Dropbox"),
    ("onedrive", "OneDrive"),
    ("google drive", "Google Drive"),
    ("googledrive", "Google Drive"),
    ("icloud drive", "iCloud Drive"),
    ("mobile documents", "iCloud Drive"),
    ("cloudstorage", "a macOS cloud-storage provider"),
    ("nextcloud", "Nextcloud"),
    ("owncloud", "ownCloud"),
    ("pcloud", "pCloud"),
    ("seafile", "Seafile"),
)


def sync_markers(root: Path) -> list[str]:
    """Marker files of replicated-sync tools in ``root`` or any folder above it.

    A marker counts only if its folder's listing holds it: a name that merely answers `stat`
    is not one (at the top of an smbnetfs mount every name "exists": it is taken for a host or
    a share). A folder that cannot be listed is judged by `lstat` and the marker's kind."""
    found = []
    for folder in [root, *root.parents]:
        try:
            names: set[str] | None = set(os.listdir(folder))
        except OSError:
            names = None
        for marker, tool in SYNC_MARKERS.items():
            if _has(folder, marker, names):
                found.append(f"{tool} ({folder / marker})")
        if _has(folder, ".sync", names, want_dir=True) and _has(folder / ".sync", "ID", None):
            found.append(f"Resilio Sync ({folder / '.sync'})")
        if names is not None:
            found += [f"Nextcloud/ownCloud ({folder / n})" for n in sorted(names) if _SYNC_DB.match(n)]
    return found


def _has(folder: Path, name: str, names: set[str] | None, want_dir: bool | None = None) -> bool:
    if names is not None:
        return name in names
    try:
        st = os.lstat(folder / name)
    except OSError:
        return False
    kind = _MARKER_DIRS.get(name) if want_dir is None else want_dir
    return kind is None or stat.S_ISDIR(st.st_mode) == kind


#: what each marker is: a folder (True) or a file (False); None: either
_MARKER_DIRS: dict[str, bool | None] = {
    ".stfolder": None,  # a folder, an empty file in Syncthing before 1.x
    ".stversions": True,
    ".stignore": False,
    ".dropbox": False,
    ".dropbox.cache": True,
    ".dropbox.attr": False,
    ".owncloudsync.log": False,
}


def conflict_files(root: Path, limit: int = CONFLICT_SCAN_LIMIT) -> list[str]:
    """Conflict copies sync tools leave beside a file two replicas changed (a few levels deep)."""
    found: list[str] = []
    seen = 0
    folders = [root] + [root / n for n in ("pending", "claimed", "done", "failed", "runners", "sweeps")]
    claimed = root / "claimed"
    try:
        folders += [claimed / n for n in os.listdir(claimed)][:200]
    except OSError:
        pass
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            seen += 1
            if seen > limit:
                return found
            for pattern, tool in _CONFLICT:
                if pattern.search(name):
                    found.append(f"{tool}: {folder / name}")
                    break
    return found


def check_sync(root: Path) -> Check:
    fix = (
        "replicated sync is not safe for claims: two machines can both rename the same job, each on "
        "its own replica, and both run it. Serve the spool from one machine over NFS, SMB or sshfs "
        "(docs/house-setup.md), and keep it out of the synced folder"
    )
    markers = sync_markers(root)
    conflicts = conflict_files(root)
    if markers or conflicts:
        what = "; ".join(markers[:3] + conflicts[:3])
        return Check("sync", FAIL, f"this spool is in a replicated-sync folder: {what}", fix)
    hits = [
        tool for part in root.parts for key, tool in _CLOUD_NAMES if key in part.lower().replace("_", " ")
    ]
    if hits:
        return Check("sync", WARN, f"the path looks like a {hits[0]} folder: {root}", fix)
    return Check("sync", OK, "no sign of replicated sync (Syncthing, Dropbox, Nextcloud, Resilio)")
