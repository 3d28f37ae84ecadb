"""The git state of the scripts folder, and its diff against the commit (kept by `spool.diffs`).

Used by `spool submit/sweep --pin` (what to pin) and by the runner (what each run ran).

- `find_repo(folder)`: the repository a folder is in, or `GitUnavailable` whose `reason` is
  what provenance records (`"git not installed"`, `"no git repository"`, or git's own words).
- `read_state(folder, script)`: commit, branch (None on a detached HEAD), shallow, and the
  dirty flags: `dirty` (the scripts folder differs from the commit: a tracked file changed,
  staged or not, or an untracked, non-ignored file is there), `script_dirty` (the script itself
  differs or is not in the commit) and `repo_dirty` (a tracked file changed anywhere in the
  repository).
- `scripts_patch(state)`: the diff of the scripts folder against the commit, untracked files
  included (as new files), binary-safe; `git apply` on a checkout of the commit reproduces
  the folder.
- `store_patch` / `patch_path` / `patch_files`: the spool's store of diffs, `diffs/<sha256>.patch`
  (defined in `spool.diffs`, which needs no git; importable from here too).
- `record(...)`: the `provenance.git` dict of a run (never raises); `pin(...)`: the `rev` and
  `rev_diff` fields for `--pin`.

Every git call is an argument list (never a shell) with a timeout, with optional locks off
(`GIT_OPTIONAL_LOCKS=0`: a runner never takes the user's `index.lock`), no prompts, the C
locale, and without the variables that would point git at another repository (`GIT_DIR`...).
The user's index is never written: the untracked files enter the diff through a copy of it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spool.diffs import DIFFS_DIR, SHA256_RE, patch_files, patch_path, store_patch
from spool.errors import StorageError, UsageError
from spool.gitfind import RepoWatch, outside_any_repository

__all__ = [
    "GitUnavailable",
    "Repo",
    "RepoWatch",
    "GitState",
    "run_git",
    "find_repo",
    "read_state",
    "scripts_patch",
    "store_patch",
    "patch_path",
    "patch_files",
    "record",
    "pin",
    "GIT_NOT_INSTALLED",
    "NO_GIT_REPO",
    "DIFFS_DIR",
    "SHA256_RE",
]

GIT_TIMEOUT = 60.0
GIT_NOT_INSTALLED = "git not installed"
NO_GIT_REPO = "no git repository"
#: an untracked file larger than this is left out of the diff (and named in `untracked_skipped`)
MAX_UNTRACKED_BYTES = 10 * 1024 * 1024
#: a diff larger than this is not stored
MAX_PATCH_BYTES = 64 * 1024 * 1024
_ARGV_CHUNK = 500

#: variables that would make git look at another repository, index or object store
_REPO_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)


class GitUnavailable(Exception):
    """The git state cannot be read; `reason` is one short line (what provenance records)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS}
    env.update({"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"})
    env.update(extra or {})
    return env


def run_git(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = GIT_TIMEOUT,
) -> tuple[int, bytes, str]:
    """`git ARGS` in `cwd`: (returncode, stdout bytes, stderr text); 124 = timed out.

    Raises `GitUnavailable` when git is not installed (not on PATH).
    """
    exe = _git_exe()
    try:
        p = subprocess.run(
            [exe, *args],
            cwd=cwd,
            env=git_env(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, b"", f"git {args[0]} timed out after {timeout:g} s"
    except FileNotFoundError:
        if not cwd.is_dir():
            raise GitUnavailable(f"folder {cwd} does not exist") from None
        _GIT_EXE.clear()  # uninstalled since it was found: look again next time
        raise GitUnavailable(GIT_NOT_INSTALLED) from None
    except OSError as exc:
        raise GitUnavailable(f"cannot run git: {exc.strerror or exc}") from None
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


_GIT_EXE: dict[str, str] = {}  # PATH -> git found on it (found ones only: an install is seen)


def _git_exe() -> str:
    """`git` on PATH, looked up once per PATH (a runner asks for every job)."""
    path = os.environ.get("PATH", os.defpath)
    exe = _GIT_EXE.get(path)
    if exe is None:
        exe = shutil.which("git", path=path)
        if exe is None:
            raise GitUnavailable(GIT_NOT_INSTALLED)
        _GIT_EXE[path] = exe
    return exe


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return ""


def explain(rc: int, err: str) -> str:
    """One line for a failed git call."""
    if "not a git repository" in err:
        return NO_GIT_REPO
    if "dubious ownership" in err:
        return "git refuses this repository (dubious ownership: see `git config --global safe.directory`)"
    return _first_line(err) or f"git failed (exit {rc})"


@dataclass(frozen=True)
class Repo:
    """A work tree and where the scripts folder sits in it."""

    top: Path
    prefix: str  # the scripts folder inside the repository: "" or "sub/dir/"
    shallow: bool

    def path_of(self, script: str) -> str:
        """A script's path from the top of the repository."""
        return posixpath.normpath(self.prefix + script)


def find_repo(folder: Path, watch: RepoWatch | None = None) -> Repo:
    """The repository `folder` is in; `GitUnavailable` if none (or git is missing)."""
    if not folder.is_dir():
        raise GitUnavailable(f"folder {folder} does not exist")
    _git_exe()  # "git not installed" before "no git repository", as git itself would say
    if watch.outside(folder) if watch is not None else outside_any_repository(folder):
        raise GitUnavailable(NO_GIT_REPO)
    rc, out, err = run_git(
        ["rev-parse", "--show-toplevel", "--show-prefix", "--is-shallow-repository"], folder
    )
    if rc != 0:
        raise GitUnavailable(explain(rc, err))
    lines = out.decode("utf-8", "surrogateescape").split("\n")
    if len(lines) < 3 or not lines[0]:
        raise GitUnavailable(f"unexpected output from git rev-parse: {out[:200]!r}")
    top, prefix, shallow = Path(lines[0]), lines[1], lines[2].strip()
    if shallow not in ("true", "false"):  # git older than 2.15
        rc, gitdir, _ = run_git(["rev-parse", "--git-dir"], top)
        shallow = "true" if rc == 0 and (top / gitdir.decode().strip() / "shallow").exists() else "false"
    return Repo(top, prefix, shallow == "true")


@dataclass
class GitState:
    repo: Repo
    commit: str | None  # None: the repository has no commits yet
    branch: str | None  # None: detached HEAD
    dirty: bool
    script_dirty: bool | None
    repo_dirty: bool
    changed: list[str] = field(default_factory=list)  # tracked files of the scripts folder that differ
    untracked: list[str] = field(default_factory=list)  # untracked files of the scripts folder
    script_in_commit: bool | None = None

    @property
    def detached(self) -> bool:
        return self.branch is None


def _split_z(out: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def _inside(path: str, prefix: str) -> bool:
    return not prefix or path.startswith(prefix)


def read_state(folder: Path, script: str | None = None, watch: RepoWatch | None = None) -> GitState:
    """The git state of the scripts folder `folder` (and of `script` in it, if given)."""
    repo = find_repo(folder, watch)
    top = repo.top
    rc, out, err = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], top)
    commit = out.decode().strip() if rc == 0 else None
    if rc not in (0, 1):
        raise GitUnavailable(explain(rc, err))
    rc, out, _ = run_git(["symbolic-ref", "-q", "--short", "HEAD"], top)
    branch = out.decode("utf-8", "replace").strip() if rc == 0 else None
    rc, out, err = run_git(["status", "--porcelain", "-z", "--untracked-files=no", "--no-renames"], top)
    if rc != 0:
        raise GitUnavailable(explain(rc, err))
    tracked = [entry[3:] for entry in _split_z(out)]
    spec = [repo.prefix] if repo.prefix else []
    rc, out, err = run_git(
        ["--literal-pathspecs", "ls-files", "-z", "--others", "--exclude-standard", "--", *spec], top
    )
    if rc != 0:
        raise GitUnavailable(explain(rc, err))
    untracked = _split_z(out)
    changed = [p for p in tracked if _inside(p, repo.prefix)]
    state = GitState(
        repo,
        commit,
        branch,
        dirty=bool(changed or untracked) or commit is None,
        script_dirty=None,
        repo_dirty=bool(tracked),
        changed=changed,
        untracked=untracked,
    )
    if script is not None:
        path = repo.path_of(script)
        if commit is None:
            state.script_in_commit = False
        else:
            rc, _, _ = run_git(["cat-file", "-e", f"{commit}:{path}"], top)
            state.script_in_commit = rc == 0
        state.script_dirty = path in changed or path in untracked or not state.script_in_commit
    return state


def scripts_patch(state: GitState) -> tuple[bytes, list[str]]:
    """(the diff of the scripts folder against the commit, untracked files left out for size).

    Untracked files enter as new files through a copy of the index (intent-to-add), so the
    user's own index is never touched.
    """
    repo = state.repo
    if state.commit is None:
        raise GitUnavailable("the repository has no commits yet")
    skipped: list[str] = []
    include: list[str] = []
    for rel in state.untracked:
        try:
            size = os.lstat(repo.top / rel).st_size
        except OSError:
            continue
        (skipped if size > MAX_UNTRACKED_BYTES else include).append(rel)
    spec = [repo.prefix] if repo.prefix else ["."]
    diff_args = [
        "--literal-pathspecs",
        "diff",
        state.commit,
        "--binary",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--",
        *spec,
    ]
    with tempfile.TemporaryDirectory(prefix="housespool-index-") as td:
        env: dict[str, str] | None = None
        if include:
            rc, out, err = run_git(["rev-parse", "--git-path", "index"], repo.top)
            if rc != 0:
                raise GitUnavailable(explain(rc, err))
            index = Path(td) / "index"
            real = repo.top / out.decode("utf-8", "surrogateescape").strip()
            if real.exists():
                shutil.copy2(real, index)  # keeps its mtime: git's racy-entry check needs it
            env = {"GIT_INDEX_FILE": str(index)}
            if not real.exists():
                rc, _, err = run_git(["read-tree", state.commit], repo.top, env=env)
                if rc != 0:
                    raise GitUnavailable(explain(rc, err))
            for i in range(0, len(include), _ARGV_CHUNK):
                chunk = include[i : i + _ARGV_CHUNK]
                rc, _, err = run_git(["--literal-pathspecs", "add", "-N", "--", *chunk], repo.top, env=env)
                if rc != 0:
                    raise GitUnavailable(explain(rc, err))
        rc, out, err = run_git(diff_args, repo.top, env=env)
        if rc != 0:
            raise GitUnavailable(explain(rc, err))
    return out, skipped


def record(
    folder: Path, script: str | None, spool_root: Path, watch: RepoWatch | None = None
) -> dict[str, Any]:
    """`provenance.git` for a run of `script` from the scripts folder `folder`; never raises.

    `{"error": "git not installed" | "no git repository" | ...}` when there is no git state.
    """
    try:
        st = read_state(folder, script, watch)
    except GitUnavailable as exc:
        return {"error": exc.reason}
    out: dict[str, Any] = {
        "commit": st.commit,
        "branch": st.branch,
        "detached": st.detached,
        "shallow": st.repo.shallow,
        "dirty": st.dirty,
        "script_dirty": st.script_dirty,
        "repo_dirty": st.repo_dirty,
        "diff": None,
    }
    if st.commit is None:
        out["note"] = "the repository has no commits yet"
        return out
    if st.dirty:
        try:
            data, skipped = scripts_patch(st)
            if skipped:
                out["untracked_skipped"] = skipped
            if len(data) > MAX_PATCH_BYTES:
                out["diff_error"] = (
                    f"the diff is {len(data) / 1e6:.0f} MB; larger than {MAX_PATCH_BYTES >> 20} MB"
                )
            elif data:
                out["diff"] = store_patch(spool_root, data)
        except GitUnavailable as exc:
            out["diff_error"] = exc.reason
        except StorageError as exc:
            out["diff_error"] = str(exc)
    return out


def _rel_to_folder(repo: Repo, paths: list[str]) -> list[str]:
    return [p[len(repo.prefix) :] for p in paths]


def pin(folder: Path, script: str, spool_root: Path, *, allow_dirty: bool) -> dict[str, str]:
    """`{"rev": <commit>}` (plus `"rev_diff"` with `allow_dirty`) for a job of `script`.

    Raises `UsageError` (one clear line) when there is nothing to pin or the folder is dirty.
    """
    try:
        st = read_state(folder, script)
    except GitUnavailable as exc:
        if exc.reason == GIT_NOT_INSTALLED:
            raise UsageError("--pin needs git, and git is not installed (not on PATH)") from None
        if exc.reason == NO_GIT_REPO:
            raise UsageError(f"--pin: the scripts folder {folder} is not in a git repository") from None
        raise UsageError(f"--pin: cannot read the git state of {folder}: {exc.reason}") from None
    if st.commit is None:
        raise UsageError("--pin: the scripts repository has no commits yet; commit the scripts first")
    path = st.repo.path_of(script)
    if not st.script_in_commit and path not in st.untracked:
        raise UsageError(f"--pin: {script} is not in git (is it ignored?); add and commit it first")
    if st.dirty and not allow_dirty:
        files = _rel_to_folder(st.repo, st.changed + st.untracked)
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        what = f"the script {script}" if st.script_dirty else "the scripts folder"
        raise UsageError(
            f"--pin: {what} has uncommitted changes ({shown}); commit them, "
            f"or add --allow-dirty to pin {st.commit[:12]} plus this diff"
        )
    out = {"rev": st.commit}
    if st.dirty:
        try:
            data, skipped = scripts_patch(st)
        except GitUnavailable as exc:
            raise UsageError(f"--allow-dirty: cannot take the diff: {exc.reason}") from None
        if skipped:
            raise UsageError(
                f"--allow-dirty: the untracked file {skipped[0]} is larger than "
                f"{MAX_UNTRACKED_BYTES >> 20} MB; commit it, ignore it (.gitignore) or move it away"
            )
        if len(data) > MAX_PATCH_BYTES:
            raise UsageError(f"--allow-dirty: the diff is larger than {MAX_PATCH_BYTES >> 20} MB")
        if data:
            out["rev_diff"] = store_patch(spool_root, data)
    return out
