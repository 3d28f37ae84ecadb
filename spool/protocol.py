"""The spool protocol: publishing files and moving jobs between states.

This is the only module that renames. Every state move is one `rename`; losing a
race returns None and is normal. A rename that reports an error may still have
happened (NFS retransmits, a network hiccup): every move checks the outcome on disk
before concluding. `FsOps` is the seam through which every call goes, so tests can
inject failures around the real calls.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

from spool.errors import StorageError
from spool.layout import CHECKPOINT_DIR, CLAIM_FILE, JOB_FILE, RESULT_FILE, TOKEN_SEP, Entry, Layout
from spool.states import State, can_move
from spool.untrusted import read_json

__all__ = [
    "FsOps",
    "publish_bytes",
    "publish_text",
    "publish_json",
    "json_lines",
    "claim",
    "move",
    "archive_previous_attempt",
    "read_claim",
    "take_over",
    "blank_for",
    "publish_new",
    "publish_reserved",
    "links_work",
    "sync_folder",
    "drop_blanks",
    "drop_empty_claim",
    "BLANKS",
    "KEEP_ON_ARCHIVE",
    "ORIGINAL_JOB_FILE",
    "archive_job",
]


def blank_for(path: Path) -> Path:
    """The empty placeholder a runner may make ahead for `path` (see `publish_bytes`)."""
    return path.with_name(f".{path.name}.blank")


#: the placeholders a runner makes ahead in a job folder: claim.json's and result.json's.
BLANKS = (blank_for(Path(CLAIM_FILE)).name, blank_for(Path(RESULT_FILE)).name)


def drop_blanks(folder: Path, fs: FsOps | None = None) -> None:
    """Remove unused blanks, and an empty checkpoint folder, before a job folder's last move."""
    fs = fs or _DEFAULT_FS
    for name in BLANKS:
        try:
            fs.unlink(folder / name)
        except OSError:
            pass
    try:
        fs.rmdir(folder / CHECKPOINT_DIR)
    except OSError:  # ENOENT: none; ENOTEMPTY: the script saved something, kept for the user
        pass


#: the user's own job bytes, kept beside a job.json that `spool priority` changed
ORIGINAL_JOB_FILE = "job.original.json"

#: files that stay at the top of a job folder when an attempt is archived (blanks: for reuse;
#: the checkpoint folder: carried into the next attempt, on whichever machine it runs).
KEEP_ON_ARCHIVE = frozenset({JOB_FILE, ORIGINAL_JOB_FILE, "attempts", "retry.json", CHECKPOINT_DIR, *BLANKS})


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
            fs.unlink(tmp)
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
        fs.unlink(probe.with_name(probe.name + ".2"))
        _LINKS[dev] = True
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _LINKS[dev] = False
    finally:
        fs.unlink(probe)
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
            fs.unlink(tmp)
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


def claim(
    layout: Layout,
    entry: Entry,
    token: str,
    *,
    dest_id: str | None = None,
    kit: Path | None = None,
    inside: str | None = None,
    fs: FsOps = _DEFAULT_FS,
) -> Path | None:
    """Take a pending job with one rename into `claimed/<id>@<token>/`; None if another runner won.

    A fresh job (`pending/<id>.json`) is renamed into a runner-unique folder made first (or,
    given a `kit`, a folder the runner made earlier, renamed into place: no inode is created
    here; a lost claim renames it back to `kit`); a requeued job (`pending/<id>/`) is renamed
    as a whole. Either way the source vanishes, so exactly one claimer succeeds. With `inside`,
    the entry (a file or a folder) is renamed into a fresh folder under that name instead: a
    folder that is not a job is rejected so, its contents kept as they were.
    """
    assert entry.state is State.PENDING
    folder = layout.state_dir(State.CLAIMED) / f"{dest_id or entry.id}{TOKEN_SEP}{token}"
    if entry.is_folder and inside is None:
        target, src = folder, entry.path
    else:
        if kit is not None:
            try:
                fs.rename(kit, folder)
            except OSError:
                if not _exists(folder):  # gone or unusable (an error after the rename is fine)
                    kit = None
        if kit is None:
            try:
                fs.mkdir(folder)
            except FileExistsError:
                pass
            except OSError as exc:
                raise _storage_error(exc, folder) from None
        target, src = folder / (inside or JOB_FILE), entry.path
    try:
        fs.rename(src, target)
    except OSError as exc:
        if not _exists(folder / (inside or JOB_FILE)):  # really lost (or never happened): tidy
            if kit is not None and not entry.is_folder:
                _tidy_kit(folder, kit, fs)
            else:
                try:
                    fs.rmdir(folder)
                except OSError:
                    pass
            if exc.errno == errno.ENOENT or not _exists(src):
                return None  # the source went to another claimer (or our folder was tidied away)
            # EACCES, EROFS, EIO, ENOSPC with the job still pending: not a lost race but the
            # spool refusing. Said as such: a read-only share must not look like an empty queue.
            raise _storage_error(exc, folder) from None
    else:
        # Checked, one stat: through smbnetfs, when two hosts rename one file at the same instant,
        # both renames have been seen to report success while only one happened. The job is
        # then the other claimer's; our folder holds a kit's things at most, and goes.
        if not _exists(folder / (inside or JOB_FILE)):
            if kit is not None and not entry.is_folder:
                _tidy_kit(folder, kit, fs)
            elif not entry.is_folder:
                _remove_tree(folder, fs)
            return None
    return folder


def _tidy_kit(folder: Path, kit: Path, fs: FsOps) -> None:
    """After a lost claim: the kit goes back where it came from (for the next claim), or, if
    that rename fails, is emptied and removed: nothing of ours stays in `claimed/`."""
    try:
        fs.rename(folder, kit)
    except OSError:
        pass
    if _exists(folder):
        _remove_tree(folder, fs)


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


def drop_empty_claim(folder: Path, fs: FsOps = _DEFAULT_FS) -> None:
    """Remove a claim folder that stood still without its `job.json` for a whole lease (a claimer
    that died between its mkdir, or its kit's rename, and the job file's rename). What a kit
    holds (empty files, an empty `outputs/`) goes with it; a folder holding anything else stays."""
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    with os.scandir(e.path) as inner:
                        if next(inner, None) is not None:
                            return
                elif e.stat(follow_symlinks=False).st_size:
                    return
    except OSError:
        return
    _remove_tree(folder, fs)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so the names just renamed into it survive a power cut (Linux; elsewhere a
    folder cannot be opened for that, and the file's own fsync is what there is)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # EINVAL: a file system (some FUSE ones) that cannot sync a folder
        pass
    finally:
        os.close(fd)


def move(layout: Layout, folder: Path, job_id: str, dst: State, *, fs: FsOps = _DEFAULT_FS) -> Path | None:
    """Move a job folder to `dst` (finish, fail, requeue, retry) with one rename.

    A move to done/ or failed/ publishes the folder's result.json: the folder is synced first,
    so a power cut cannot leave a finished job whose result.json's name never reached the disk.

    Returns the new path, or None when the folder was gone (someone else moved it first:
    the caller has lost the job and must write nothing more for it). After an ambiguous error
    on a move to pending/, None can also mean the rename was ours and another runner claimed
    the job before we looked: indistinguishable, and the same to the caller, who holds it no more.
    """
    src_state = State(folder.parent.name)
    if not can_move(src_state, dst):
        raise ValueError(f"no transition {src_state} -> {dst}")
    target = layout.state_dir(dst) / job_id
    if not _exists(folder):
        return None  # already moved (a take-over, a cancel): whatever sits at `target` is not ours
    marker = read_claim(folder) if src_state is State.CLAIMED else None
    if dst in (State.DONE, State.FAILED):
        sync_folder(folder)
    try:
        fs.rename(folder, target)
    except OSError as exc:
        if _exists(folder):
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise StorageError(
                    f"cannot move job to {dst}: {target} already exists", file=folder
                ) from None
            if exc.errno == errno.ENOENT:
                return None
            raise _storage_error(exc, folder) from None
        # the source is gone: did our rename happen, or did someone else move it?
        if marker is not None and read_claim(target) == marker:
            return target
        if marker is None and _exists(target / JOB_FILE):
            return target
        return None
    return target


def take_over(
    layout: Layout, folder: Path, job_id: str, token: str, *, fs: FsOps = _DEFAULT_FS
) -> Path | None:
    """Take a claimed job whose lease expired, with one rename to our own token; None if we lost.

    Whoever wins then decides: back to pending/ (retries left) or to failed/.
    """
    mine = layout.state_dir(State.CLAIMED) / f"{job_id}{TOKEN_SEP}{token}"
    try:
        fs.rename(folder, mine)
    except OSError:
        if not _exists(mine / JOB_FILE):
            return None
    return mine if _exists(mine / JOB_FILE) else None


def read_claim(folder: Path) -> dict[str, Any] | None:
    try:
        data = read_json(folder / CLAIM_FILE, 1 << 20)  # written by a runner, read as untrusted
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def archive_previous_attempt(folder: Path, *, fs: FsOps = _DEFAULT_FS) -> int:
    """In a folder we just claimed, move the last attempt's files to `attempts/<n>/`.

    Returns the number of attempts made before this one.
    """
    attempts = folder / "attempts"
    leftovers = [p for p in folder.iterdir() if p.name not in KEEP_ON_ARCHIVE]
    previous = 0
    if attempts.is_dir():
        previous = sum(1 for p in attempts.iterdir() if p.name.isdigit())
    if not leftovers:
        return previous
    prev = read_claim(folder) or {}
    try:
        ended = int(prev.get("attempt", previous + 1))
        if ended <= previous:
            ended = previous + 1
    except (TypeError, ValueError):
        ended = previous + 1
    dest = attempts / str(ended)
    _make_dir(attempts, fs)
    _make_dir(dest, fs)
    for p in leftovers:
        fs.rename(p, dest / p.name)
    return ended


def _make_dir(path: Path, fs: FsOps) -> None:
    """`mkdir(exist_ok=True)` through `fs`: a folder already there is fine, a file there is not."""
    try:
        fs.mkdir(path)
    except FileExistsError:
        if not path.is_dir():
            raise


def archive_job(folder: Path, dest: Path, *, fs: FsOps = _DEFAULT_FS) -> bool:
    """Move a finished job's folder (or its notes) out of the state folders, to `dest`, with one
    rename (`spool gc`); False if it was gone already. Never replaces what is at `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _exists(dest):
        raise StorageError(f"cannot archive: {dest} already exists", file=folder)
    try:
        fs.rename(folder, dest)
    except OSError as exc:
        if _exists(dest) and not _exists(folder):
            return True  # the rename happened; only its reply was lost
        if not _exists(folder):
            return False
        raise _storage_error(exc, folder) from None
    return True


def result_path(folder: Path) -> Path:
    return folder / RESULT_FILE
