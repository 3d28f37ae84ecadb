"""Provenance and reproducibility, end to end: real git repositories made in tmp_path, real
runner processes started through the `spool` console script with `--exit-when-idle`.

Jobs run with a bare venv's interpreter (no torch: the runner's capability probe is quick),
except where the package versions of the project's own interpreter are checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spool import Spool, State

BIN = Path(sys.executable).parent / "spool"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "tester",
    "GIT_AUTHOR_EMAIL": "tester@example.com",
    "GIT_COMMITTER_NAME": "tester",
    "GIT_COMMITTER_EMAIL": "tester@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# The script prints its own version marker and its sibling module's, and a data file's text
# when one sits beside it: which files ran is visible in the result.
VER = (
    "import json, os, helper\n"
    "MARK = {n}\n"
    "here = os.path.dirname(os.path.abspath(__file__))\n"
    "extra = os.path.join(here, 'extra.txt')\n"
    "text = open(extra).read().strip() if os.path.exists(extra) else None\n"
    "blob = os.path.join(here, 'blob.bin')\n"
    "size = os.path.getsize(blob) if os.path.exists(blob) else None\n"
    "print(json.dumps({{'script': MARK, 'helper': helper.VERSION, 'extra': text, 'blob': size}}))\n"
)
ARGV4 = "import json, sys\nprint(json.dumps({'file': sys.argv[1], 'dir': sys.argv[2]}))\n"


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv without packages: jobs run in it, and the runner's torch probe returns at once."""
    d = tmp_path_factory.mktemp("barevenv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(d)], check=True)
    return str(d / "bin" / "python")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of every command: a cache in tmp_path, git never looking above it."""
    e = {k: v for k, v in os.environ.items() if k != "SPOOL_DIR"}
    e.update(GIT_IDENTITY)
    e["SPOOL_CACHE_DIR"] = str(tmp_path / "cache")
    e["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    return e


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    p = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert p.returncode == 0, f"git {' '.join(args)}: {p.stderr}"
    return p.stdout.strip()


def write_version(scripts: Path, n: int, helper: int | None = None) -> None:
    (scripts / "ver.py").write_text(VER.format(n=n))
    (scripts / "helper.py").write_text(f"VERSION = {helper if helper is not None else n}\n")


def make_repo(root: Path, version: int = 1) -> tuple[Path, Path, str]:
    """A repository at `root` whose scripts folder is `root/experiments`; returns (repo, scripts, commit)."""
    scripts = root / "experiments"
    scripts.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write_version(scripts, version)
    (scripts / "argv4.py").write_text(ARGV4)
    (root / "README").write_text("not a script\n")
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"v{version}")
    return root, scripts, git(root, "rev-parse", "HEAD")


def commit_all(repo: Path, msg: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD")


def new_spool(tmp_path: Path, scripts: Path) -> Spool:
    return Spool.init(tmp_path / "spool", scripts=str(scripts))


def cli(sp: Spool, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "--spool", str(sp.root), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=sp.root.parent,
        timeout=120,
        check=False,
    )


def runner_cmd(sp: Spool, python: str, *args: str) -> list[str]:
    return [
        str(BIN),
        "--spool",
        str(sp.root),
        "runner",
        "--nice",
        "0",
        "--python",
        python,
        "--exit-when-idle",
        *args,
    ]


def run_runner(sp: Spool, python: str, *args: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run one runner until the spool is drained (of what it can run); returns its log."""
    p = subprocess.run(
        runner_cmd(sp, python, *args), capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert p.returncode == 0, p.stderr
    return p.stderr


def record(sp: Spool, job_id: str) -> dict[str, Any]:
    v = sp.get(job_id)
    assert v.result is not None, f"{job_id} is {v.state.value} with no result"
    return v.result


def prov(sp: Spool, job_id: str) -> dict[str, Any]:
    return record(sp, job_id)["provenance"]


def job_file(sp: Spool, job_id: str) -> dict[str, Any]:
    entry = sp.layout.find(job_id)
    assert entry is not None
    return json.loads(entry.job_file.read_bytes())


def submit(sp: Spool, *args: str, env: dict[str, str]) -> str:
    p = cli(sp, "submit", *args, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def heartbeats(sp: Spool) -> list[dict[str, Any]]:
    return [json.loads(p.read_bytes()) for p in sp.layout.runners.glob("*.json")]


# -- pinning ------------------------------------------------------------------------


def test_pinned_job_runs_the_commit_not_later_edits(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    pinned = submit(sp, "ver.py", "--pin", "-p", "lr=0.1", env=env)
    assert job_file(sp, pinned)["rev"] == c1 and "rev_diff" not in job_file(sp, pinned)

    write_version(scripts, 2)  # edit and commit
    c2 = commit_all(repo, "v2")
    write_version(scripts, 3)  # edit again, uncommitted
    later = submit(sp, "ver.py", "-p", "lr=0.1", env=env)

    run_runner(sp, bare_python, env=env)

    rec = record(sp, pinned)
    assert rec["state"] == "done", rec["error"]
    assert rec["result"] == {"script": 1, "helper": 1, "extra": None, "blob": None}  # the pinned version ran
    g = rec["provenance"]["git"]
    assert g["commit"] == c1 and g["pinned"] is True and g["dirty"] is False and g["diff"] is None

    rec = record(sp, later)
    assert rec["result"]["script"] == 3  # the working tree, as it was
    g = rec["provenance"]["git"]
    assert g["commit"] == c2 and g["branch"] == "main" and g["detached"] is False and g["shallow"] is False
    assert g["dirty"] is True and g["script_dirty"] is True and g["repo_dirty"] is True
    patch = (sp.root / "diffs" / f"{g['diff']}.patch").read_bytes()
    assert hashlib.sha256(patch).hexdigest() == g["diff"] and b"+MARK = 3" in patch

    p = rec["provenance"]
    assert p["python"]["executable"] == bare_python and p["python"]["version"]
    assert p["packages"] == {"numpy": None, "pandas": None, "scikit-learn": None, "torch": None}
    assert p["host"] and p["os"] and "cpu" in p and "gpu" in p

    # the checkout is cached by commit, and nothing half-built is left behind
    entries = os.listdir(tmp_path / "cache" / "revs")
    assert len(entries) == 1 and entries[0].startswith(c1)

    df = sp.results()
    assert {"git.commit", "git.dirty"} <= set(df.columns)
    by_id = df.set_index("id")
    assert by_id.loc[pinned, "git.commit"] == c1 and not by_id.loc[pinned, "git.dirty"]
    assert by_id.loc[later, "git.commit"] == c2 and by_id.loc[later, "git.dirty"]


def test_allow_dirty_stores_the_diff_and_applies_it(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    write_version(scripts, 2, helper=5)  # tracked changes...
    (scripts / "extra.txt").write_text("untracked text\n")  # ...and untracked files, one binary
    (scripts / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (repo / "README").write_text("changed outside the scripts folder\n")
    git(repo, "add", "experiments/helper.py")  # staged changes count too
    index_before = (repo / ".git" / "index").read_bytes()
    status_before = git(repo, "status", "--porcelain")

    err = one_line_error(cli(sp, "submit", "ver.py", "--pin", env=env))
    assert "uncommitted changes" in err and "--allow-dirty" in err and "ver.py" in err
    err = one_line_error(cli(sp, "submit", "ver.py", "--allow-dirty", env=env))
    assert "--allow-dirty goes with --pin" in err

    jid = submit(sp, "ver.py", "--pin", "--allow-dirty", env=env)
    job = job_file(sp, jid)
    assert job["rev"] == c1 and len(job["rev_diff"]) == 64
    patch = (sp.root / "diffs" / f"{job['rev_diff']}.patch").read_bytes()
    assert b"experiments/extra.txt" in patch and b"GIT binary patch" in patch
    assert b"README" not in patch  # the diff is of the scripts folder only
    # the user's index and status are untouched by taking the diff
    assert (repo / ".git" / "index").read_bytes() == index_before
    assert git(repo, "status", "--porcelain") == status_before

    # back to the commit: the run must come from the commit plus the stored diff
    git(repo, "reset", "-q", "--hard")
    (scripts / "extra.txt").unlink()
    (scripts / "blob.bin").unlink()
    run_runner(sp, bare_python, env=env)

    rec = record(sp, jid)
    assert rec["state"] == "done", rec["error"]
    assert rec["result"] == {"script": 2, "helper": 5, "extra": "untracked text", "blob": 1024}
    g = rec["provenance"]["git"]
    assert g["commit"] == c1 and g["dirty"] is True and g["script_dirty"] is True
    assert g["diff"] == job["rev_diff"]


def test_two_runners_race_on_the_same_rev_cache(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    write_version(scripts, 7)
    (scripts / "extra.txt").write_text("dirty\n")
    ids = [submit(sp, "ver.py", "--pin", "--allow-dirty", "-p", f"i={i}", env=env) for i in range(6)]
    git(repo, "reset", "-q", "--hard")
    procs = [
        subprocess.Popen(
            runner_cmd(sp, bare_python, "--slots", "2", "--name", f"racer{k}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for jid in ids:
        rec = record(sp, jid)
        assert rec["state"] == "done", rec["error"]
        assert rec["result"]["script"] == 7 and rec["result"]["extra"] == "dirty"
        assert rec["provenance"]["git"]["commit"] == c1
    revs = tmp_path / "cache" / "revs"
    assert len(os.listdir(revs)) == 1, os.listdir(revs)  # one checkout, no temp folders left


def test_missing_rev_is_left_pending_for_a_runner_that_has_it(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    _, scripts_a, _ = make_repo(tmp_path / "a")
    repo_b, scripts_b, _ = make_repo(tmp_path / "b", version=5)
    cb = git(repo_b, "rev-parse", "HEAD")
    sp = new_spool(tmp_path, scripts_a)
    theirs = sp.submit("ver.py", rev=cb)
    nowhere = sp.submit("ver.py", rev="0123456789" * 4)

    started = time.monotonic()
    log = run_runner(sp, bare_python, "--name", "runner-a", env=env)
    assert time.monotonic() - started < 60
    assert sp.get(theirs).state is State.PENDING and sp.get(nowhere).state is State.PENDING
    beat = json.loads((sp.layout.runners / "runner-a.json").read_bytes())
    assert "is not in the scripts repository" in beat["revs_missing"][cb]
    assert "0123456789" * 4 in beat["revs_missing"]
    assert "leaving jobs pinned to" in log

    run_runner(sp, bare_python, "--scripts", str(scripts_b), env=env)  # this one has the commit
    rec = record(sp, theirs)
    assert rec["state"] == "done" and rec["result"]["script"] == 5
    assert sp.get(nowhere).state is State.PENDING  # a rev no runner has: kept, never lost
    assert sp.get(nowhere).job is not None


def test_git_fetch_gets_a_missing_commit_from_the_remote(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    origin, scripts_o, _ = make_repo(tmp_path / "origin")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    write_version(scripts_o, 9)
    c9 = commit_all(origin, "v9")  # the clone does not have it yet
    sp = new_spool(tmp_path, clone / "experiments")
    jid = sp.submit("ver.py", rev=c9)

    run_runner(sp, bare_python, env=env)
    assert sp.get(jid).state is State.PENDING
    log = run_runner(sp, bare_python, "--git-fetch", env=env)
    assert "fetching from origin" in log
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["result"]["script"] == 9


def test_claimed_job_whose_commit_turns_out_missing_is_handed_back(
    tmp_path: Path, bare_python: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from runner.machine.capabilities import detect

    monkeypatch.setenv("SPOOL_CACHE_DIR", env["SPOOL_CACHE_DIR"])
    _, scripts, _ = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    ghost = "f" * 40
    jid = sp.submit("ver.py", rev=ghost)
    r = Runner(sp, RunnerOptions(name="tester", nice=0, python=bare_python), caps=detect(bare_python, []))
    r.revs._commits[ghost] = (ghost, float("inf"))  # an earlier look said yes; the claim finds otherwise
    r.run_once(now=1000.0)
    v = sp.get(jid)
    assert v.state is State.PENDING and not r.slots and r.started_count == 0
    note = json.loads((v.path / "handed_back.json").read_bytes())
    assert note["runner"] == "tester" and "not in the scripts repository" in note["reason"]
    r.run_once(now=2000.0)  # skipped for a while now: not claimed again
    assert sp.get(jid).state is State.PENDING
    assert not r.revs.available(ghost) and ghost in r.revs.notes


def test_missing_or_broken_diff_fails_the_pinned_job(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    from spool.gitinfo import store_patch

    _, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    lost = sp.submit("ver.py", rev=c1, rev_diff="a" * 64)
    bad = store_patch(
        sp.root,
        b"diff --git a/experiments/nope.py b/experiments/nope.py\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
    )
    broken = sp.submit("ver.py", rev=c1, rev_diff=bad)
    run_runner(sp, bare_python, env=env)
    err = record(sp, lost)["error"]
    assert err["kind"] == "rev_missing" and "missing from the spool" in err["message"]
    err = record(sp, broken)["error"]
    assert err["kind"] == "invalid" and "does not apply" in err["message"]
    assert sp.get(lost).state is State.FAILED and sp.get(broken).state is State.FAILED


def test_script_escaping_the_checkout_is_refused(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    repo, scripts, _ = make_repo(tmp_path / "repo")
    (scripts / "link.py").symlink_to("../README")  # inside the repo, outside the scripts folder
    c2 = commit_all(repo, "a link out")
    sp = new_spool(tmp_path, scripts)
    jid = sp.submit("ver.py", rev=c2)
    raw = json.dumps({"script": "link.py", "rev": c2}).encode()
    escaping = sp.layout.state_dir(State.PENDING) / "escape.json"
    escaping.write_bytes(raw)
    run_runner(sp, bare_python, env=env)
    assert record(sp, jid)["state"] == "done"
    rec = record(sp, "escape")
    assert rec["state"] == "failed" and rec["error"]["kind"] == "invalid"


# -- bad input: no git, no git installed, detached, shallow -------------------------


def test_scripts_folder_not_in_git_runs_and_records_no_git(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    sp = Spool.init(tmp_path / "spool")
    write_version(sp.scripts_dir, 4)
    jid = sp.submit("ver.py")
    err = one_line_error(cli(sp, "submit", "ver.py", "--pin", env=env))
    assert "is not in a git repository" in err
    pinned = sp.submit("ver.py", rev="abc1234")
    run_runner(sp, bare_python, "--name", "nogit", env=env)
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["result"]["script"] == 4
    assert rec["provenance"]["git"] == {"error": "no git repository"}
    assert sp.get(pinned).state is State.PENDING
    beat = json.loads((sp.layout.runners / "nogit.json").read_bytes())
    assert "not in a git repository" in beat["revs_missing"]["abc1234"]
    p = cli(sp, "show", jid, env=env)
    assert "git: no git repository" in p.stdout


def test_no_git_process_for_a_folder_outside_any_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner asks for every job; git runs only where its own search could find a repository."""
    from spool import gitinfo

    if not gitinfo.outside_any_repository(tmp_path):
        pytest.skip(f"{tmp_path} is inside a repository")
    plain = tmp_path / "plain" / "scripts"
    plain.mkdir(parents=True)
    _, scripts, commit = make_repo(tmp_path / "repo")
    bare = tmp_path / "bare"
    (bare / "sub").mkdir(parents=True)
    (bare / "HEAD").write_text("ref: refs/heads/main\n")  # looks like a git dir: git decides
    assert gitinfo.outside_any_repository(plain)
    assert not gitinfo.outside_any_repository(scripts)
    assert not gitinfo.outside_any_repository(bare / "sub")
    # a git on PATH that logs each call, then runs the real one
    real = shutil.which("git")
    assert real is not None
    bindir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bindir.mkdir()
    wrapper = bindir / "git"
    wrapper.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert gitinfo.record(plain, "s.py", tmp_path) == {"error": "no git repository"}
    assert not calls.exists(), calls.read_text()
    rec = gitinfo.record(scripts, "ver.py", tmp_path)
    assert rec["commit"] == commit and rec["dirty"] is False
    assert "rev-parse" in calls.read_text()


def test_repo_watch_sees_a_repository_appear_above_a_cached_folder(tmp_path: Path) -> None:
    from spool.gitfind import RepoWatch, outside_any_repository

    if not outside_any_repository(tmp_path):
        pytest.skip(f"{tmp_path} is inside a repository")
    scripts = tmp_path / "a" / "b" / "scripts"
    scripts.mkdir(parents=True)
    past = time.time() - 60  # old stamps: the verdict is cached (not within the racy 2 s)
    for d in (scripts, scripts.parent, scripts.parent.parent, tmp_path):
        os.utime(d, (past, past))
    watch = RepoWatch()
    assert watch.outside(scripts) and watch.outside(scripts)
    (tmp_path / "a" / ".git").mkdir()  # `git init` one level up: a.mtime moves
    assert not watch.outside(scripts)
    (tmp_path / "a" / ".git").rmdir()
    assert watch.outside(scripts)
    # the scripts folder is a symlink that is pointed elsewhere: judged for its new target
    _, repo_scripts, _ = make_repo(tmp_path / "repo")
    link = tmp_path / "link"
    link.symlink_to(scripts)
    assert watch.outside(link)
    link.unlink()
    link.symlink_to(repo_scripts)
    assert not watch.outside(link)


def test_git_not_installed(tmp_path: Path, bare_python: str, env: dict[str, str]) -> None:
    _, scripts, _ = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    empty = tmp_path / "bin-without-git"
    empty.mkdir()
    no_git = {**env, "PATH": str(empty)}
    err = one_line_error(cli(sp, "submit", "ver.py", "--pin", env=no_git))
    assert "git is not installed" in err
    jid = sp.submit("ver.py")
    run_runner(sp, bare_python, env=no_git)
    rec = record(sp, jid)
    assert rec["state"] == "done" and rec["provenance"]["git"] == {"error": "git not installed"}


def test_detached_head_in_a_shallow_clone(tmp_path: Path, bare_python: str, env: dict[str, str]) -> None:
    repo, scripts, _ = make_repo(tmp_path / "repo")
    write_version(scripts, 2)
    c2 = commit_all(repo, "v2")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    git(shallow, "checkout", "-q", "--detach", "HEAD")
    sp = new_spool(tmp_path, shallow / "experiments")
    plain = sp.submit("ver.py")
    pinned = submit(sp, "ver.py", "--pin", env=env)
    run_runner(sp, bare_python, env=env)
    g = prov(sp, plain)["git"]
    assert g["commit"] == c2 and g["detached"] is True and g["branch"] is None and g["shallow"] is True
    assert g["dirty"] is False and g["script_dirty"] is False
    rec = record(sp, pinned)
    assert rec["state"] == "done" and rec["result"]["script"] == 2
    assert "detached HEAD" in cli(sp, "show", plain, env=env).stdout


# -- rerun and diff -----------------------------------------------------------------


def test_rerun_and_diff(tmp_path: Path, bare_python: str, env: dict[str, str]) -> None:
    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    write_version(scripts, 2)  # run from a dirty tree
    first = submit(sp, "ver.py", "-p", "lr=0.1", env=env)
    run_runner(sp, bare_python, env=env)
    git(repo, "reset", "-q", "--hard")  # the working tree is back at v1
    other = submit(sp, "ver.py", "-p", "lr=0.2", env=env)

    p = cli(sp, "rerun", first, env=env)
    assert p.returncode == 0, p.stderr
    again = p.stdout.strip()
    job = job_file(sp, again)
    recorded = prov(sp, first)["git"]
    assert job["rev"] == c1 and job["rev_diff"] == recorded["diff"] and job["params"] == {"lr": 0.1}
    run_runner(sp, bare_python, env=env)
    assert (
        record(sp, again)["result"]
        == record(sp, first)["result"]
        == {
            "script": 2,
            "helper": 2,
            "extra": None,
            "blob": None,
        }
    )
    assert record(sp, other)["result"]["script"] == 1

    p = cli(sp, "diff", first, other, env=env)
    assert p.returncode == 0, p.stderr
    assert "param.lr" in p.stdout and "git.diff" in p.stdout and "result.script" in p.stdout
    p = cli(sp, "diff", first, other, "--json", env=env)
    rows = {r["key"]: r for r in json.loads(p.stdout)["differences"]}
    assert rows["param.lr"]["a"] == 0.1 and rows["param.lr"]["b"] == 0.2
    assert rows["git.dirty"]["a"] is True and rows["git.dirty"]["b"] is False
    assert "git.commit" not in rows and "host" not in rows and "package.numpy" not in rows

    rows = {
        r["key"] for r in json.loads(cli(sp, "diff", first, again, "--json", env=env).stdout)["differences"]
    }
    assert not any(k.startswith(("param.", "result.", "git.commit", "git.diff", "input.")) for k in rows), (
        rows
    )
    assert cli(sp, "diff", first, first, env=env).stdout.strip().endswith("no differences")

    # rerunning a run that recorded no commit says so, and still submits
    (tmp_path / "plain").mkdir()
    nogit = Spool.init(tmp_path / "plain" / "spool")
    write_version(nogit.scripts_dir, 8)
    jid = nogit.submit("ver.py")
    run_runner(nogit, bare_python, env=env)
    p = cli(nogit, "rerun", jid, "--json", env=env)
    assert p.returncode == 0 and "recorded no commit (no git repository)" in p.stderr
    assert "rev" not in job_file(nogit, json.loads(p.stdout)["id"])
    err = one_line_error(cli(sp, "rerun", "no-such-job", env=env))
    assert "no job" in err


def test_rerun_refuses_a_dirty_run_whose_diff_is_lost(
    tmp_path: Path, bare_python: str, env: dict[str, str]
) -> None:
    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    write_version(scripts, 2)
    jid = submit(sp, "ver.py", env=env)
    run_runner(sp, bare_python, env=env)
    diff = prov(sp, jid)["git"]["diff"]
    (sp.root / "diffs" / f"{diff}.patch").unlink()
    err = one_line_error(cli(sp, "rerun", jid, env=env))
    assert "--force" in err and "missing from the spool" in err
    p = cli(sp, "rerun", jid, "--force", env=env)
    assert p.returncode == 0 and "warning" in p.stderr
    job = job_file(sp, p.stdout.strip())
    assert job["rev"] == c1 and "rev_diff" not in job


# -- input hashes -------------------------------------------------------------------


def test_input_hashes_for_argv4_and_inputs(tmp_path: Path, env: dict[str, str]) -> None:
    _, scripts, _ = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    data = sp.root / "data"
    (data / "x.csv").write_text("a,b\n1,2\n")
    (data / "a.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (data / "folder" / "deep").mkdir(parents=True)
    (data / "folder" / "one.txt").write_text("one\n")
    (data / "folder" / "deep" / "two.txt").write_text("two\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    (data / "escape.txt").symlink_to(tmp_path / "outside.txt")
    jid = sp.submit(
        "argv4.py",
        {"dataFileName": "x.csv", "dataPath": "data/", "execution": {}},
        contract="argv4",
        inputs=["data/a.bin", "data/folder", "data/missing.csv", "data/escape.txt"],
    )
    run_runner(sp, sys.executable, env=env)  # the project's interpreter: real package versions
    p = prov(sp, jid)
    ins = p["inputs"]
    assert ins["data/x.csv"] == {
        "sha256": hashlib.sha256((data / "x.csv").read_bytes()).hexdigest(),
        "size": 8,
    }
    assert ins["data/a.bin"]["sha256"] == hashlib.sha256((data / "a.bin").read_bytes()).hexdigest()
    assert ins["data/folder"]["files"] == 2 and len(ins["data/folder"]["sha256"]) == 64
    assert ins["data/missing.csv"] == {"error": "missing"}
    assert "leaves" in ins["data/escape.txt"]["error"]

    from importlib.metadata import version

    assert p["packages"]["numpy"] == version("numpy") and p["packages"]["pandas"] == version("pandas")
    assert p["python"]["executable"] == sys.executable
    shown = cli(sp, "show", jid, env=env).stdout
    assert "inputs: data/x.csv" in shown and "numpy" in shown


def test_rerun_never_blocks_on_an_input_turned_into_a_fifo(tmp_path: Path, env: dict[str, str]) -> None:
    _, scripts, _ = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    data = sp.root / "data"
    (data / "x.csv").write_text("a,b\n1,2\n")
    (data / "y.csv").write_text("c\n3\n")
    jid = sp.submit(
        "argv4.py",
        {"dataFileName": "x.csv", "dataPath": "data/", "execution": {}},
        contract="argv4",
        inputs=["data/y.csv"],
    )
    run_runner(sp, sys.executable, env=env)
    assert prov(sp, jid)["inputs"]["data/y.csv"]["size"] == 4
    (data / "y.csv").unlink()
    os.mkfifo(data / "y.csv")  # nobody will ever write into it: an open for reading would wait for ever
    (data / "x.csv").unlink()
    p = cli(sp, "rerun", jid, "--json", env=env)
    assert p.returncode == 0, p.stderr
    warnings = json.loads(p.stdout)["warnings"]
    assert "input data/y.csv is not a regular file now" in warnings
    assert "input data/x.csv is missing now" in warnings


# -- sweeps, usage, the cache itself ------------------------------------------------


def test_sweep_pin_pins_every_job_and_resume_keeps_it(tmp_path: Path, env: dict[str, str]) -> None:
    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    p = cli(sp, "sweep", "ver.py", "--grid", "lr=0.1,0.2,0.3", "--pin", "--json", env=env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [job_file(sp, j)["rev"] for j in out["jobs"]] == [c1] * 3
    cut = out["jobs"][1]
    (sp.layout.state_dir(State.PENDING) / f"{cut}.json").unlink()  # as if cut short: a crash
    shutil.rmtree(sp.layout.reserved / cut)  # before its id was reserved leaves neither behind
    write_version(scripts, 2)
    commit_all(repo, "v2")
    assert cli(sp, "sweep", "--resume", out["sweep"], env=env).returncode == 0
    assert job_file(sp, out["jobs"][1])["rev"] == c1  # the sweep's pin, not the new HEAD

    write_version(scripts, 3)
    err = one_line_error(cli(sp, "sweep", "ver.py", "--grid", "lr=1,2", "--pin", env=env))
    assert "--allow-dirty" in err
    (tmp_path / "job.json").write_text(json.dumps({"script": "ver.py"}))
    err = one_line_error(cli(sp, "submit", str(tmp_path / "job.json"), "--pin", env=env))
    assert "--pin goes with a script name" in err


def test_concurrent_builders_share_one_checkout(tmp_path: Path, env: dict[str, str]) -> None:
    """Eight builders (as if eight slots or runners) ask for the same commit + diff at once."""
    import threading

    from runner.pins.revcache import MARKER, RevCache
    from spool.gitinfo import pin

    repo, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    write_version(scripts, 6)
    fields = pin(scripts, "ver.py", sp.root, allow_dirty=True)
    git(repo, "reset", "-q", "--hard")
    cache = tmp_path / "cache"
    barrier = threading.Barrier(8)
    results: list[Path | BaseException] = []

    def build() -> None:
        rc = RevCache(scripts, sp.root, cache_dir=cache)
        barrier.wait()
        try:
            results.append(rc.checkout(fields["rev"], fields["rev_diff"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and all(isinstance(r, Path) for r in results), results
    assert len(set(results)) == 1
    final = results[0]
    assert isinstance(final, Path)
    assert "MARK = 6" in (final / "experiments" / "ver.py").read_text()
    assert json.loads((final / MARKER).read_text())["commit"] == c1
    assert os.listdir(cache / "revs") == [final.name]  # the losers' temp folders are gone


def test_cache_cleaning_by_age(tmp_path: Path) -> None:
    from runner.pins.revcache import MARKER, RevCache

    _, scripts, c1 = make_repo(tmp_path / "repo")
    sp = new_spool(tmp_path, scripts)
    rc = RevCache(scripts, sp.root, cache_dir=tmp_path / "cache", max_age_days=1)
    fresh = rc.checkout(c1)
    old = tmp_path / "cache" / "revs" / ("0" * 40 + "-x")
    old.mkdir()
    (old / MARKER).write_text("{}")
    crashed = tmp_path / "cache" / "revs" / ".half-built.tmp"
    crashed.mkdir()
    long_ago = time.time() - 3 * 86400
    os.utime(old / MARKER, (long_ago, long_ago))
    os.utime(crashed, (long_ago, long_ago))
    assert rc.clean(force=True) == 1
    assert sorted(os.listdir(tmp_path / "cache" / "revs")) == [fresh.name]
    assert rc.checkout(c1) == fresh  # still cached
