"""Where things live in a spool folder, and how entry names map to job ids.

Reading only: every rename lives in `spool.protocol`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spool.errors import PathEscape
from spool.ids import is_valid_id
from spool.states import State

__all__ = [
    "Layout",
    "Entry",
    "is_ignored_name",
    "TOKEN_SEP",
    "JOB_FILE",
    "RESULT_FILE",
    "CLAIM_FILE",
    "DROPPED",
    "resolve_inside",
    "listed_name",
    "check_write_path",
    "SPOOL_OWN_NAMES",
    "relocated",
]

TOKEN_SEP = "@"
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
CLAIM_FILE = "claim.json"
#: the folder in a job folder that survives attempts and machines (`SPOOL_CHECKPOINT_DIR`)
CHECKPOINT_DIR = "checkpoint"
#: in a failed/ folder: a dropped folder that was not a job (its name was no id), kept whole
DROPPED = "dropped"
_IGNORED_SUFFIXES = (".tmp", ".part", ".swp", "~", ".crdownload", ".partial")


def is_ignored_name(name: str) -> bool:
    """Names editors and copy tools write while a file is incomplete: never jobs."""
    return name.startswith(".") or name.endswith(_IGNORED_SUFFIXES)



def listed_name(name: str) -> str:
    """A claimed folder's name as listed: smbnetfs (libsmbclient) lists `@` as `%40` (and `%` as
    `%25`) while it opens either spelling, so a listed `%40` is read as the `@` it stands for."""
    if TOKEN_SEP in name or "%40" not in name:
        return name
    return name.replace("%40", TOKEN_SEP).replace("%25", "%")


@dataclass(frozen=True)
class Entry:
    """One job as found on disk: its id, state and path (a file in pending/, else a folder)."""

    id: str
    state: State
    path: Path
    is_folder: bool = True

    @property
    def is_job_name(self) -> bool:
        """False for a pending entry that cannot be a job as named (bad id, or a file not `.json`)."""
        if not is_valid_id(self.id):
            return False
        return self.is_folder or self.path.name.endswith(".json")

    @property
    def job_file(self) -> Path:
        return self.path / JOB_FILE if self.is_folder else self.path

    @property
    def token(self) -> str | None:
        if self.state is State.CLAIMED:
            return self.path.name.partition(TOKEN_SEP)[2]
        return None


#: the spool's own names, which no job may write into (argv4's `writePath`): the state folders,
#: the runners' heartbeats, sweep definitions, pinned diffs, the report, reserved ids, notes,
#: the archive and the settings
SPOOL_OWN_NAMES = frozenset(
    {"pending", "claimed", "done", "failed", "runners", "sweeps", "diffs", "report", "ids", "notes",
     "archive", "spool.toml"}
)


def check_write_path(root: Path, rel: str, scripts_dir: Path, own: Path | None = None) -> Path:
    """`root/rel` resolved (symlinks too), refused unless a job may write there.

    Kept: `data/` (the original jobs write beside their data) and the job's own folder `own`,
    and any folder of the user's in the spool. Refused: the spool itself, the folders and files
    of `SPOOL_OWN_NAMES`, hidden names (`.serve-token`...), and the scripts folder: a job
    writing there would make phantom jobs, write into other jobs or change what runs."""
    what = "params.writePath"
    target = resolve_inside(root, rel, what)
    base = root.resolve()
    if own is not None and (target == own.resolve() or own.resolve() in target.parents):
        return target
    scripts = scripts_dir.resolve()
    if target == scripts or scripts in target.parents:
        raise PathEscape(f"writePath {rel!r} is inside the scripts folder", field=what)
    if target == base:
        raise PathEscape(f"writePath {rel!r} is the spool folder itself; use data/...", field=what)
    first = target.relative_to(base).parts[0]
    if first in SPOOL_OWN_NAMES or first.startswith("."):
        raise PathEscape(f"writePath {rel!r} is inside the spool's own {first}; use data/...", field=what)
    return target


def relocated(root: str | os.PathLike[str], folder: str | os.PathLike[str], rel: str) -> str:
    """Where an output path recorded at write-up (spool-relative, `<state>/<id>/outputs/x`) is on
    this machine now: under the spool, or, if the job has moved since, under its current folder."""
    parts = rel.split("/", 2)
    if len(parts) == 3 and not os.path.exists(os.path.join(root, rel)):
        return os.path.join(folder, parts[2])
    return os.path.join(root, rel)


def resolve_inside(base: Path, rel: str, what: str) -> Path:
    """`base/rel` resolved (symlinks too), refused if it leaves `base`."""
    root = base.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise PathEscape(f"{what} {rel!r} leaves {root}", field=what)
    return target


class Layout:
    """The folders of one spool."""

    def __init__(self, root: Path):
        self.root = root

    def state_dir(self, state: State) -> Path:
        return self.root / state.value

    @property
    def runners(self) -> Path:
        return self.root / "runners"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sweeps(self) -> Path:
        return self.root / "sweeps"

    @property
    def reserved(self) -> Path:
        """`ids/`: reservations of explicit job ids (`spool.protocol.publish_reserved`), one per
        id, kept for the life of the spool; made on first use."""
        return self.root / "ids"

    def all_dirs(self) -> list[Path]:
        return [self.state_dir(s) for s in State] + [self.runners, self.data, self.sweeps]

    def entries(self, state: State) -> Iterator[Entry]:
        """Every job in one state, by one scandir; names that are not jobs are skipped."""
        try:
            it = os.scandir(self.state_dir(state))
        except FileNotFoundError:
            return
        with it:
            for de in it:
                try:
                    is_dir = de.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                entry = self.entry_from_name(state, de.name, is_dir)
                if entry is not None:
                    yield entry

    def ids(self, state: State) -> Iterator[tuple[str, str]]:
        """(job id, entry name) of every job in one state: `entries` without building paths,
        for counting 100,000 jobs quickly (`spool status`)."""
        try:
            it = os.scandir(self.state_dir(state))
        except FileNotFoundError:
            return
        pending = state is State.PENDING
        with it:
            for de in it:
                try:
                    is_dir = de.is_dir(follow_symlinks=False) if pending else True
                except OSError:
                    continue
                job_id = self.id_from_name(state, de.name, is_dir)
                if job_id is not None:
                    yield job_id, de.name

    def id_from_name(self, state: State, name: str, is_dir: bool = True) -> str | None:
        """The job id a directory name stands for (see `entry_from_name`), or None."""
        if is_ignored_name(name):
            return None
        if state is State.PENDING:  # a name that is no id is kept too, to be rejected
            return name[:-5] if not is_dir and name.endswith(".json") else name
        if state is State.CLAIMED:
            job_id, sep, token = listed_name(name).partition(TOKEN_SEP)
            if not sep or not token:
                return None
        else:
            job_id = name
        return job_id if is_valid_id(job_id) else None

    def entry_from_name(self, state: State, name: str, is_dir: bool = True) -> Entry | None:
        """The entry a directory name stands for; pending files with bad names are kept (to reject)."""
        job_id = self.id_from_name(state, name, is_dir)
        if job_id is None:
            return None
        folder = is_dir if state is State.PENDING else True
        if state is State.CLAIMED:
            name = listed_name(name)
        return Entry(job_id, state, self.state_dir(state) / name, folder)

    def find(self, job_id: str) -> Entry | None:
        """Where a job is now, or None if it is nowhere.

        The places are looked at in the order a job moves through them (pending/, claimed/,
        then done/ and failed/), so a job that moves on during the look (claimed as it is
        looked for, ending as claimed/ is read) is always found further on: no timing, no
        folder times (which a network folder may not keep: smbnetfs reports 0) are relied on.
        Only a move back (a requeue, a retry) or a take-over of this very job while it is
        looked for can hide it from one look: those enter pending/ or rename within claimed/,
        so a miss is looked at again (twice at most) when either changed during the look, or
        when their times cannot tell."""
        if not is_valid_id(job_id):
            return None
        for _ in range(3):
            before = self._stamps()
            entry = self._find_once(job_id)
            if entry is not None:
                return entry
            after = self._stamps()
            if after == before and all(st is not None and st[0] for st in after):
                return None  # neither pending/ nor claimed/ changed: nothing moved back
        return None

    def _stamps(self) -> list[tuple[int, int, int] | None]:
        out: list[tuple[int, int, int] | None] = []
        for state in (State.PENDING, State.CLAIMED):
            try:
                st = os.stat(self.root / state.value)
            except OSError:
                out.append(None)
                continue
            out.append((st.st_mtime_ns, st.st_ctime_ns, st.st_nlink))
        return out

    def _find_once(self, job_id: str) -> Entry | None:
        pending = self.state_dir(State.PENDING)
        if (pending / f"{job_id}.json").is_file():
            return Entry(job_id, State.PENDING, pending / f"{job_id}.json", False)
        if (pending / job_id).is_dir():
            return Entry(job_id, State.PENDING, pending / job_id, True)
        prefix = job_id + TOKEN_SEP
        for e in self.entries(State.CLAIMED):
            if e.path.name.startswith(prefix) and (e.path / JOB_FILE).exists():
                return e
        for state in (State.DONE, State.FAILED):
            p = self.state_dir(state) / job_id
            if (p / JOB_FILE).exists() or (state is State.FAILED and (p / DROPPED).is_dir()):
                return Entry(job_id, state, p)
        return None
