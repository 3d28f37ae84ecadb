"""Checked-out revisions of the scripts folder, for jobs pinned to a `rev`.

A job with `rev` runs the script as it was at that commit: `git archive <commit> -- <scripts
folder>` is unpacked into a cache folder keyed by the commit (and by the job's `rev_diff`, the
stored diff applied on top with `git apply`). The cache is per machine, shared by its runners
(`$SPOOL_CACHE_DIR/revs`, else `$XDG_CACHE_HOME/housespool/revs`, else
`~/.cache/housespool/revs`): a checkout is built in a hidden temp folder and renamed into
place; when two slots or runners build the same one at once, one rename wins and the other
builder uses the winner's. Entries unused for `max_age_days` are removed (renamed away first).

A runner whose scripts repository lacks the commit does not claim the job (`available` is
checked before claiming and cached per rev); it says why in its heartbeat (`revs_missing`) and
leaves the job for a runner that has it. With `fetch` on and a remote configured, it fetches
once (per rev and `missing_ttl`) and looks again. A commit found missing only after the claim
is handed back to `pending/`, never failed: another runner may have it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spool.diffs import patch_files, patch_path
from spool.errors import InvalidJob, SpoolError, StorageError
from spool.gitinfo import GitUnavailable, Repo, explain, find_repo, git_env, run_git
from spool.jobs import check_script, utc_now
from spool.layout import Layout, resolve_inside
from spool.model import Job
from spool.protocol import FsOps, move, publish_json
from spool.states import State

__all__ = ["RevCache", "RevMissing", "RevContentMissing", "default_cache_dir", "MARKER"]

MARKER = ".housespool-rev.json"
FETCH_TIMEOUT = 120.0
ARCHIVE_TIMEOUT = 300.0
CLEAN_EVERY = 3600.0
STALE_TMP = 3600.0


def default_cache_dir() -> Path:
    """This machine's housespool cache folder (shared by its runners)."""
    explicit = os.environ.get("SPOOL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "housespool"


class RevMissing(Exception):
    """This runner's scripts repository does not have the commit: leave the job to others."""

    def __init__(self, rev: str, reason: str):
        self.rev = rev
        self.reason = reason
        super().__init__(reason)


class RevContentMissing(InvalidJob):
    """The pinned job's stored diff is not in the spool: no runner can run it."""

    kind = "rev_missing"


class RevCache:
    """Per-runner view of the machine's cache of checked-out revisions."""

    def __init__(
        self,
        scripts_dir: Path,
        spool_root: Path,
        *,
        cache_dir: Path | None = None,
        fetch: bool = False,
        missing_ttl: float = 60.0,
        max_age_days: float = 7.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.scripts_dir = scripts_dir
        self.spool_root = spool_root
        self.root = (cache_dir or default_cache_dir()) / "revs"
        self.fetch = fetch
        self.missing_ttl = missing_ttl
        self.max_age = max_age_days * 86400
        self._log = log or (lambda msg: None)
        self._clock = clock
        #: rev -> why this runner leaves its jobs; the heartbeat shows it as `revs_missing`
        self.notes: dict[str, str] = {}
        self._commits: dict[str, tuple[str | None, float]] = {}  # rev -> (commit or None, valid until)
        self._repo: Repo | None = None
        self._repo_error: tuple[str, float] | None = None
        self._fetched: dict[str, float] = {}
        self._next_clean = 0.0

    # -- is the commit here? ----------------------------------------------------
    def repo(self) -> Repo:
        """The scripts folder's repository (a failure is remembered for `missing_ttl`)."""
        if self._repo is not None:
            return self._repo
        now = self._clock()
        if self._repo_error is not None and now < self._repo_error[1]:
            raise GitUnavailable(self._repo_error[0])
        try:
            self._repo = find_repo(self.scripts_dir)
        except GitUnavailable as exc:
            reason = exc.reason
            if reason == "no git repository":
                reason = f"this runner's scripts folder {self.scripts_dir} is not in a git repository"
            elif reason == "git not installed":
                reason = "git is not installed on this runner's machine"
            self._repo_error = (reason, now + self.missing_ttl)
            raise GitUnavailable(reason) from None
        return self._repo

    def available(self, rev: str) -> bool:
        """Whether this runner can run jobs pinned to `rev` (cached; may fetch once)."""
        try:
            self.resolve(rev)
            return True
        except RevMissing:
            return False

    def resolve(self, rev: str) -> str:
        """The full commit id of `rev` in this runner's repository, or `RevMissing`."""
        now = self._clock()
        hit = self._commits.get(rev)
        if hit is not None and now < hit[1]:
            if hit[0] is None:
                raise RevMissing(
                    rev, self.notes.get(rev, f"rev {rev} is not in this runner's scripts repository")
                )
            return hit[0]
        try:
            repo = self.repo()
            commit = self._lookup(repo, rev)
            if commit is None and self.fetch and self._fetch(repo, rev, now):
                commit = self._lookup(repo, rev)
        except GitUnavailable as exc:
            return self._missing(rev, exc.reason, now)
        if commit is None:
            hint = "" if self.fetch else " (a runner with --git-fetch fetches from the remote)"
            return self._missing(rev, f"rev {rev} is not in the scripts repository {repo.top}{hint}", now)
        full = len(rev) == 40 and rev == commit
        self._commits[rev] = (commit, float("inf") if full else now + self.missing_ttl)
        if self.notes.pop(rev, None) is not None:
            self._log(f"rev {rev[:12]} is here now")
        return commit

    def mark_missing(self, rev: str, reason: str) -> None:
        """Skip `rev` for `missing_ttl` seconds (a claimed job turned out unrunnable here)."""
        self._commits[rev] = (None, self._clock() + self.missing_ttl)
        self.notes[rev] = reason

    def _missing(self, rev: str, reason: str, now: float) -> str:
        self._commits[rev] = (None, now + self.missing_ttl)
        if self.notes.get(rev) != reason:
            self._log(f"leaving jobs pinned to {rev[:12]} for other runners: {reason}")
        self.notes[rev] = reason
        raise RevMissing(rev, reason)

    @staticmethod
    def _lookup(repo: Repo, rev: str) -> str | None:
        rc, out, err = run_git(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], repo.top)
        if rc == 0:
            return out.decode().strip()
        if rc == 1:
            return None
        raise GitUnavailable(explain(rc, err))

    def _fetch(self, repo: Repo, rev: str, now: float) -> bool:
        """Fetch from the remotes once per rev and `missing_ttl`; True if anything was fetched."""
        if now < self._fetched.get(rev, -1e18) + self.missing_ttl:
            return False
        self._fetched[rev] = now
        rc, out, _ = run_git(["remote"], repo.top)
        remotes = out.decode().split() if rc == 0 else []
        if not remotes:
            return False
        self._log(f"rev {rev[:12]} is not here: fetching from {', '.join(remotes)}")
        rc, _, err = run_git(["fetch", "--quiet", "--all", "--tags"], repo.top, timeout=FETCH_TIMEOUT)
        if rc != 0:
            self._log(f"git fetch failed: {explain(rc, err)}")
        if self._lookup(repo, rev) is None and len(rev) == 40:
            for remote in remotes:  # a commit on no branch tip: ask for it by id
                rc, _, _ = run_git(["fetch", "--quiet", remote, rev], repo.top, timeout=FETCH_TIMEOUT)
                if rc == 0:
                    break
        return True

    # -- the checkout -----------------------------------------------------------
    def script_for(self, job: Job, job_id: str) -> tuple[Path, dict[str, Any] | None]:
        """(the script to run, `provenance.git` for a pinned job or None for the working tree).

        Raises `RevMissing` (hand the job back), `RevContentMissing` or `InvalidJob` (fail it).
        """
        if not job.rev:
            return check_script(self.scripts_dir, job, job_id), None
        commit = self.resolve(job.rev)
        repo = self.repo()
        root = self.checkout(commit, job.rev_diff)
        scripts = root / repo.prefix
        try:
            path = resolve_inside(scripts, job.script, "script")
        except SpoolError as exc:
            raise type(exc)(exc.message, file=job_id, field="script") from None
        if not path.is_file():
            at = f"rev {commit[:12]}" + (" with its diff" if job.rev_diff else "")
            raise InvalidJob(f"no script {job.script!r} at {at}", file=job_id, field="script")
        script_dirty = False
        if job.rev_diff:
            try:
                script_dirty = repo.path_of(job.script) in patch_files(
                    patch_path(self.spool_root, job.rev_diff).read_bytes()
                )
            except OSError:
                script_dirty = True
        git = {
            "commit": commit,
            "rev": job.rev,
            "pinned": True,
            "branch": None,
            "detached": None,
            "shallow": repo.shallow,
            "dirty": bool(job.rev_diff),
            "script_dirty": script_dirty,
            "repo_dirty": None,
            "diff": job.rev_diff,
        }
        return path, git

    def key(self, commit: str, rev_diff: str | None) -> str:
        prefix = hashlib.sha256(self.repo().prefix.encode()).hexdigest()[:8]
        return f"{commit}-{prefix}" + (f"-{rev_diff[:16]}" if rev_diff else "")

    def checkout(self, commit: str, rev_diff: str | None = None) -> Path:
        """The cached checkout of `commit` (+ `rev_diff`): its root, which holds the repo's paths."""
        final = self.root / self.key(commit, rev_diff)
        if (final / MARKER).exists():
            _touch(final / MARKER)
            return final
        self.clean()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=self.root))
        except OSError as exc:
            raise StorageError(f"cannot create the rev cache ({exc.strerror})", file=self.root) from None
        try:
            self._extract(commit, tmp)
            if rev_diff:
                self._apply(rev_diff, commit, tmp)
            meta = {"commit": commit, "prefix": self.repo().prefix, "diff": rev_diff, "built": utc_now()}
            (tmp / MARKER).write_text(json.dumps(meta) + "\n")
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / MARKER).exists():  # not a lost race: a real error
                    raise
                # another slot or runner built it first: use theirs
        except OSError as exc:
            raise StorageError(f"cannot build the checkout of {commit[:12]} ({exc})", file=final) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _touch(final / MARKER)
        return final

    def _extract(self, commit: str, dest: Path) -> None:
        repo = self.repo()
        exe = shutil.which("git")
        if exe is None:
            raise RevMissing(commit, "git is not installed on this runner's machine")
        spec = ["--", repo.prefix] if repo.prefix else []
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [exe, "archive", "--format=tar", commit, *spec],
                cwd=repo.top,
                env=git_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
            assert proc.stdout is not None
            problem: str | None = None
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                    _extract_all(tar, dest)
            except (tarfile.TarError, OSError) as exc:
                problem = str(exc)
            finally:
                proc.stdout.close()
                try:
                    rc = proc.wait(timeout=ARCHIVE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
            err.seek(0)
            message = err.read().decode("utf-8", "replace")
        if rc == 0 and problem is None:
            return
        try:
            gone = self._lookup(repo, commit) is None
        except GitUnavailable:
            gone = False
        if gone:  # judged by asking again, not by git's wording
            raise RevMissing(commit, f"rev {commit[:12]} is not in the scripts repository {repo.top}")
        if "did not match any files" in message:
            raise InvalidJob(f"the scripts folder {repo.prefix or './'} did not exist at {commit[:12]}")
        raise StorageError(f"git archive {commit[:12]} failed: {explain(rc, message) if rc else problem}")

    def _apply(self, rev_diff: str, commit: str, dest: Path) -> None:
        path = patch_path(self.spool_root, rev_diff)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RevContentMissing(
                f"the job's diff diffs/{rev_diff}.patch is missing from the spool", field="rev_diff"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot read the job's diff ({exc.strerror})", file=path) from None
        if hashlib.sha256(data).hexdigest() != rev_diff:
            raise InvalidJob(f"diffs/{rev_diff}.patch does not match its sha256 (changed on disk?)")
        # outside any repository (the ceiling stops git looking above the cache), paths from dest
        rc, _, err = run_git(
            ["apply", "--whitespace=nowarn", "-p1", "-"],
            dest,
            env={"GIT_CEILING_DIRECTORIES": str(self.root.resolve())},
            input=data,
        )
        if rc != 0:
            raise InvalidJob(
                f"the job's diff {rev_diff[:12]} does not apply to {commit[:12]}: {explain(rc, err)}",
                field="rev_diff",
            )

    # -- upkeep -----------------------------------------------------------------
    def clean(self, force: bool = False) -> int:
        """Remove checkouts unused for `max_age_days` and builds left by crashes; returns how many."""
        now_mono = self._clock()
        if not force and now_mono < self._next_clean:
            return 0
        self._next_clean = now_mono + CLEAN_EVERY
        removed = 0
        now = time.time()
        try:
            names = os.listdir(self.root)
        except OSError:
            return 0
        for name in names:
            path = self.root / name
            try:
                if name.startswith(".trash-"):
                    shutil.rmtree(path, ignore_errors=True)
                    continue
                if name.startswith("."):
                    if name.endswith(".tmp") and now - path.stat().st_mtime > STALE_TMP:
                        shutil.rmtree(path, ignore_errors=True)
                    continue
                used = (path / MARKER).stat().st_mtime
            except OSError:
                continue
            if now - used > self.max_age:
                trash = self.root / f".trash-{name}-{os.urandom(3).hex()}"
                try:
                    os.rename(path, trash)  # atomic: nobody sees half a checkout
                except OSError:
                    continue
                shutil.rmtree(trash, ignore_errors=True)
                removed += 1
        return removed

    # -- a claimed job this runner cannot run -------------------------------------
    def hand_back(
        self,
        layout: Layout,
        folder: Path,
        job_id: str,
        exc: RevMissing,
        runner: str,
        fs: FsOps | None = None,
    ) -> bool:
        """Put a claimed job back in pending/ (with a note why) and skip its rev for a while."""
        self.mark_missing(exc.rev, exc.reason)
        try:
            publish_json(
                folder / "handed_back.json",
                {"runner": runner, "reason": exc.reason, "at": utc_now()},
                fsync=False,
            )
            return move(layout, folder, job_id, State.PENDING, fs=fs or FsOps()) is not None
        except StorageError:
            return False  # the lease will hand it on


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _extract_all(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack a `git archive` stream, refusing members that would land outside `dest`."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()  # pragma: no cover - Python < 3.10.12 / 3.11.4
    for member in tar:  # pragma: no cover
        target = (root / member.name).resolve()
        if (target != root and root not in target.parents) or member.isdev():
            raise tarfile.TarError(f"refusing archive member {member.name!r}")
        if (member.issym() or member.islnk()) and (
            os.path.isabs(member.linkname) or ".." in Path(member.linkname).parts
        ):
            raise tarfile.TarError(f"refusing link {member.name!r} -> {member.linkname!r}")
        tar.extract(member, dest)
