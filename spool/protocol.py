"""The spool protocol: moving jobs between states.

This is the only module that renames or removes job folders. Every state move is one
`rename`; losing a race returns None and is normal. A rename that reports an error may
still have happened (NFS retransmits, a network hiccup): every move checks the outcome on
disk before concluding. Every call goes through `FsOps` (`spool.publish`), so tests can
inject failures around the real calls. Publishing files (the one atomic write) is
`spool.publish`'s; its names are re-exported here, where every caller has found them.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

from spool.errors import StorageError
from spool.layout import CHECKPOINT_DIR, CLAIM_FILE, JOB_FILE, RESULT_FILE, TOKEN_SEP, Entry, Layout
from spool.publish import (
    _DEFAULT_FS,
    BLANKS,
    FsOps,
    _exists,
    _remove_tree,
    _storage_error,
    blank_for,
    json_lines,
    links_work,
    publish_bytes,
    publish_json,
    publish_new,
    publish_reserved,
    publish_text,
)
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

