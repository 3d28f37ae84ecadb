"""Publishing files: the one atomic write (temp + fsync + rename: readers see all or nothing),
names published once (`publish_new`, `publish_reserved`), and `FsOps`, the seam every call of
the protocol goes through so tests can inject failures around the real calls.

Only new names are made here (a job file in `pending/`, a result, a heartbeat, a report);
moving or removing job folders is `spool.protocol`'s alone.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from spool.errors import StorageError
from spool.layout import CLAIM_FILE, JOB_FILE, RESULT_FILE

__all__ = [
    "FsOps",
    "publish_bytes",
    "publish_text",
    "publish_json",
    "json_lines",
    "blank_for",
    "publish_new",
    "publish_reserved",
    "links_work",
    "unlink_closed",
    "BLANKS",
]


def blank_for(path: Path) -> Path:
    """The empty placeholder a runner may make ahead for `path` (see `publish_bytes`)."""
    return path.with_name(f".{path.name}.blank")


#: the placeholders a runner makes ahead in a job folder: claim.json's and result.json's.
BLANKS = (blank_for(Path(CLAIM_FILE)).name, blank_for(Path(RESULT_FILE)).name)



class FsOps:
    """The filesystem calls the protocol makes. Subclass to inject faults; never to fake."""

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def link(self, src: Path, dst: Path) -> None:
        os.link(src, dst)

    def write_new(self, path: Path, data: bytes, fsync: bool) -> None:
        self._write(path, data, fsync, os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def write_into(self, path: Path, data: bytes, fsync: bool) -> None:
        """Write into an existing file (a blank), truncating it; FileNotFoundError if none."""
        self._write(path, data, fsync, os.O_WRONLY | os.O_TRUNC)

    def _write(self, path: Path, data: bytes, fsync: bool, flags: int) -> None:
        fd = os.open(path, flags, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


_DEFAULT_FS = FsOps()


def _storage_error(exc: OSError, path: Path) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError("the spool's disk is full", file=path)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(f"the spool is not writable ({exc.strerror})", file=path)
    return StorageError(f"cannot write ({exc.strerror})", file=path)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")


def publish_bytes(
    path: Path, data: bytes, *, fsync: bool = True, fs: FsOps = _DEFAULT_FS, blank: bool = False
) -> None:
    """Write `data` to a hidden temp name beside `path`, fsync, then rename: readers see all or nothing.

    With `blank`, the temp file is `blank_for(path)` if it is there: an empty file made ahead
    (off the runner's busy moments; a create is the dearest metadata operation on some disks),
    written into and renamed like a temp file. Without one, a temp file is created as usual."""
    tmp = blank_for(path) if blank else _temp_name(path)
    renaming = False
    try:
        if blank:
            try:
                fs.write_into(tmp, data, fsync)
            except FileNotFoundError:  # no blank here: a temp file of our own
                blank = False
                tmp = _temp_name(path)
        if not blank:
            fs.write_new(tmp, data, fsync)
        renaming = True
        fs.rename(tmp, path)
    except OSError as exc:
        if renaming and not _exists(tmp):
            return  # the rename happened and only its reply was lost: the file is published
        try:
            unlink_closed(tmp, fs)
        except OSError:
            pass
        raise _storage_error(exc, path) from None


def publish_text(path: Path, text: str, *, fsync: bool = True, fs: FsOps = _DEFAULT_FS) -> None:
    """`publish_bytes` for text (UTF-8). With `publish_bytes` and `publish_json`, the one atomic
    write in housespool: job files, results, heartbeats, reports, unit files all come through it."""
    publish_bytes(path, text.encode("utf-8"), fsync=fsync, fs=fs)


RESERVED_FILE = "reserved.json"
_LINKS: dict[tuple[int, type], bool] = {}  # (st_dev, FsOps class) -> whether link() works there

#: errnos meaning "this file system has no hard links" (smbnetfs: EPERM; others: ENOTSUP, ENOSYS)
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV})


#: How long `unlink_closed` waits out EBUSY. smbnetfs (FUSE over libsmbclient) hands a close on
#: to the server after close() has returned, and an unlink arriving first is refused as a sharing
#: violation, EBUSY (measured over SMB3: 8 of 600 create-write-close-unlink rounds, each settled
#: within 4 ms). A file still busy after this is really held open by someone.
UNLINK_SETTLE_S = 2.0


def unlink_closed(path: Path, fs: FsOps = _DEFAULT_FS, settle: float = UNLINK_SETTLE_S) -> None:
    """Remove a file this process has just closed, waiting out the EBUSY of a close still on
    its way to an SMB server; other errors, and EBUSY past `settle` seconds, raise."""
    deadline = time.monotonic() + settle
    pause = 0.002
    while True:
        try:
            fs.unlink(path)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def links_work(folder: Path, fs: FsOps = _DEFAULT_FS) -> bool:
    """Whether `link()` works in `folder`'s file system: probed once per mount (st_dev) and
    `FsOps`, then remembered. A probe failing for another reason (EIO, a full disk) raises and
    is not remembered."""
    dev = (os.stat(folder).st_dev, type(fs))
    known = _LINKS.get(dev)
    if known is not None:
        return known
    probe = _temp_name(folder / ".links")
    fs.write_new(probe, b"", False)
    try:
        fs.link(probe, probe.with_name(probe.name + ".2"))
        unlink_closed(probe.with_name(probe.name + ".2"), fs)
        _LINKS[dev] = True
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _LINKS[dev] = False
    finally:
        unlink_closed(probe, fs)
    return _LINKS[dev]


def publish_new(path: Path, data: bytes, *, fsync: bool = True, fs: FsOps = _DEFAULT_FS) -> bool:
    """Like `publish_bytes`, but never replaces an existing file: False if `path` exists.

    Where the mount has hard links, the bytes are written whole under a temp name and linked
    to `path` (a link cannot replace its target, so of two publishers one wins). Without them
    (smbnetfs, macOS's SMB client), `path` is created with O_EXCL after the bytes are safe in
    the temp file, then written: readers of a name published this way must take a file that
    does not parse yet as one still being written (the pending scanner does).
    """
    tmp = _temp_name(path)
    try:
        fs.write_new(tmp, data, fsync)
        if links_work(path.parent, fs):
            try:
                fs.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:
                if not (_exists(path) and os.stat(path).st_ino == os.stat(tmp).st_ino):
                    raise _storage_error(exc, path) from None
            return True
        try:
            fs.write_new(path, data, fsync)
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise _storage_error(exc, path) from None
    finally:
        try:
            unlink_closed(tmp, fs)
        except OSError:
            pass


def publish_reserved(
    reserved: Path, job_id: str, target: Path, data: bytes, *, fsync: bool = True, fs: FsOps = _DEFAULT_FS
) -> bool:
    """Publish `data` as `target` under an id reserved once for the life of the spool: False if
    `job_id` was ever reserved (whatever became of its job since: run, failed, claimed again).

    The reservation is a folder `ids/<id>/` holding `reserved.json`, made whole under a temp name
    and renamed into place: a folder cannot be renamed onto a non-empty one, so of two publishers
    one wins, with or without hard links. The job's bytes wait in it as `job.json` and are
    published by one rename to `target`; whoever finds them still there (a publisher that died
    or stalled between the two renames) makes that same rename, and only one rename can succeed.
    """
    final = reserved / job_id
    nonce = os.urandom(8).hex()
    tmp = reserved / f".{job_id}.{nonce}.tmp"
    try:
        try:
            fs.mkdir(tmp)
        except FileNotFoundError:
            reserved.mkdir(exist_ok=True)
            fs.mkdir(tmp)
        fs.write_new(tmp / RESERVED_FILE, json_lines({"id": job_id, "nonce": nonce}), fsync)
        fs.write_new(tmp / JOB_FILE, data, fsync)
        try:
            fs.rename(tmp, final)
            won = True
        except OSError as exc:  # taken already, or an error whose rename may have happened
            won = not _exists(tmp) and _nonce(final) == nonce
            if not won and exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise
            _remove_tree(tmp, fs)
        _finish_reserved(final, target, fs)
        return won
    except OSError as exc:
        _remove_tree(tmp, fs)
        raise _storage_error(exc, final) from None


def _nonce(folder: Path) -> str | None:
    try:
        return json.loads((folder / RESERVED_FILE).read_bytes()).get("nonce")
    except (OSError, ValueError, AttributeError):
        return None


def _finish_reserved(final: Path, target: Path, fs: FsOps) -> None:
    """Move a reservation's waiting job bytes (if still there) to their published name."""
    try:
        fs.rename(final / JOB_FILE, target)
    except FileNotFoundError:
        pass  # published already (by us or by whoever finished it)
    except OSError:
        if _exists(final / JOB_FILE):
            raise


def json_lines(obj: Any) -> bytes:
    """JSON with one top-level key per line, each value compact.

    Readable and diffable by key, and encoded by the C encoder: `indent=` makes `json` fall
    back to its pure-Python encoder, 10-20x slower (a runner writes a result per job)."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) for k in obj):
        return json.dumps(obj, default=str).encode() + b"\n"
    dumps = json.dumps
    body = ",\n".join(f" {dumps(k)}: {dumps(v, default=str)}" for k, v in obj.items())
    return ("{\n" + body + "\n}\n").encode()


def publish_json(
    path: Path, obj: Any, *, fsync: bool = True, fs: FsOps = _DEFAULT_FS, blank: bool = False
) -> None:
    publish_bytes(path, json_lines(obj), fsync=fsync, fs=fs, blank=blank)


def _exists(path: Path) -> bool:
    """The name is there: `lstat`, so a dropped symlink (dangling, or a loop) counts as the
    file it is, to be claimed and rejected with its reason, never tidied away as a lost race."""
    try:
        os.lstat(path)
        return True
    except OSError:
        return False



def _remove_tree(folder: Path, fs: FsOps) -> None:
    """`rmtree(ignore_errors=True)` made of `FsOps` calls, so a fault test reaches each one."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        entries = []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                _remove_tree(Path(e.path), fs)
            else:
                fs.unlink(Path(e.path))
        except OSError:
            pass
    try:
        fs.rmdir(folder)
    except OSError:
        pass
