"""What the spool's file system can do, for the doctor: hard links, O_EXCL, fsync, O_APPEND,
each probed for real in `runners/`, and what housespool does where one is missing.

The O_APPEND probe goes last: through smbnetfs (libsmbclient) over SMB3 it fails, and the mount
then answers EIO to every call for a few seconds, so the doctor waits for the share to recover
before it ends.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

from house.doctor_checks import FAIL, OK, WARN, Check, remove_probe
from spool.protocol import links_work

__all__ = ["check_features"]

RECOVER_SECONDS = 15.0


def _probe_name(folder: Path, what: str) -> Path:
    return folder / f".doctor-{what}.{os.getpid()}.{os.urandom(3).hex()}.tmp"


def _excl(folder: Path) -> Check:
    path = _probe_name(folder, "excl")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            msg = "an exclusive create fails when the name exists (adaptive-sweep slots rely on it)"
            return Check("O_EXCL", OK, msg)
        return Check(
            "O_EXCL",
            FAIL,
            "an exclusive create of an existing name succeeded: two processes could both take one sweep slot",
            "serve the spool over NFSv3+/SMB2+ or sshfs; old NFSv2 and some FUSE file systems ignore O_EXCL",
        )
    except OSError as exc:
        return Check("O_EXCL", FAIL, f"cannot create a file exclusively ({exc.strerror})")
    finally:
        remove_probe(path)


def _links(folder: Path) -> Check:
    try:
        ok = links_work(folder)
    except OSError as exc:
        return Check("hard links", WARN, f"could not probe hard links ({exc.strerror})")
    if ok:
        msg = "hard links work (a file that must not replace another is linked into place)"
        return Check("hard links", OK, msg)
    return Check(
        "hard links",
        OK,
        "no hard links here (SMB through smbnetfs/gvfs or macOS): not needed. A name that must not "
        "replace another is made with O_EXCL instead (a reader may see it empty for an instant), and "
        "job ids are reserved by renaming a folder",
    )


def _fsync(folder: Path) -> Check:
    path = _probe_name(folder, "fsync")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"doctor")
            os.fsync(fd)
        finally:
            os.close(fd)
        if sys.platform.startswith("linux"):
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
                    raise
                return Check("fsync", OK, "files can be synced; folders cannot (the file's own sync is used)")
            finally:
                os.close(dfd)
        msg = "files and folders can be synced: results are on disk before they are published"
        return Check("fsync", OK, msg)
    except OSError as exc:
        return Check(
            "fsync",
            WARN,
            f"cannot sync a file to disk here ({exc.strerror}): a power cut may lose a finished result",
            "use a file system that honours fsync (local disk, NFS, SMB, sshfs do)",
        )
    finally:
        remove_probe(path)


def _append(folder: Path) -> Check:
    path = _probe_name(folder, "append")
    try:
        with open(path, "ab") as f:
            f.write(b"doctor")
        return Check("O_APPEND", OK, "files can be opened for appending")
    except OSError as exc:
        _wait_for(folder)
        return Check(
            "O_APPEND",
            OK,
            f"files cannot be opened for appending here ({exc.strerror}; libsmbclient over SMB3): housespool "
            "never appends, but a script that opens a file in the spool with mode 'a' will fail, and the "
            "share may answer EIO for a few seconds after",
        )
    finally:
        for _ in range(3):
            try:
                os.unlink(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                _wait_for(folder)


def _wait_for(folder: Path) -> None:
    """Until `folder` can be looked at again (a share's EIO burst), at most RECOVER_SECONDS."""
    end = time.monotonic() + RECOVER_SECONDS
    while time.monotonic() < end:
        try:
            os.listdir(folder)
            return
        except OSError:
            time.sleep(0.2)


def check_features(root: Path) -> list[Check]:
    """Hard links, O_EXCL, fsync and (last) O_APPEND, probed in `root/runners/`."""
    folder = root / "runners"
    return [_links(folder), _excl(folder), _fsync(folder), _append(folder)]
