"""The doctor's Check record and its checks of the spool folder, the clock and the tools."""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.machine.proc import Run
from spool.publish import unlink_closed
from spool.settings import Settings
from spool.states import State

__all__ = [
    "OK",
    "WARN",
    "FAIL",
    "Check",
    "remove_probe",
    "path_exists",
    "check_spool",
    "check_writable",
    "check_rename",
    "check_clock",
    "check_git",
    "numpy_too_new",
    "check_torch",
    "check_interpreter",
]

OK, WARN, FAIL = "ok", "warn", "fail"
CLOCK_OK_S = 2.0
RACE_ROUNDS = 20


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _tag() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
    return f"doctor-{host}-{os.getpid()}-{os.urandom(3).hex()}"


def _err(exc: OSError) -> str:
    return exc.strerror or str(exc)


def remove_probe(path: Path) -> None:
    """Best-effort removal of a probe file after its check: the check's verdict is already made,
    and a probe that cannot be removed (gone already, a read-only share) must not change it."""
    try:
        unlink_closed(path)
    except OSError:
        pass


# --------------------------------------------------------------------------- spool folder


def check_spool(root: Path) -> tuple[Check, Settings | None]:
    """(check, settings or None)."""
    from spool.errors import SpoolError
    from spool.settings import load_settings

    fix_missing = (
        f"create it with `spool init --spool {root}`, or mount the shared folder there "
        "(docs/house-setup.md); `--spool DIR` or $SPOOL_DIR name another"
    )
    if not root.exists():
        return Check("spool", FAIL, f"{root} does not exist (or the share is not mounted)", fix_missing), None
    if not root.is_dir():
        return Check("spool", FAIL, f"{root} is not a folder", fix_missing), None
    if not (root / "spool.toml").exists():
        return Check("spool", FAIL, f"{root} has no spool.toml: not a spool", fix_missing), None
    try:
        settings = load_settings(root)
    except SpoolError as exc:
        return Check("spool", FAIL, f"spool.toml: {exc}", "fix spool.toml (docs/format.md)"), None
    missing = [s.value for s in State if not (root / s.value).is_dir()]
    if missing:
        return (
            Check(
                "spool",
                FAIL,
                f"{root} lacks {', '.join(m + '/' for m in missing)}",
                f"mkdir {' '.join(str(root / m) for m in missing)}",
            ),
            settings,
        )
    return Check("spool", OK, f"{root}"), settings


def check_writable(root: Path) -> Check:
    """Create and remove a hidden file in every state folder and ``runners/``."""
    problems = []
    folders = [s.value for s in State] + ["runners"]
    for name in folders:
        folder = root / name
        probe = folder / f".{_tag()}.tmp"
        try:
            if not folder.is_dir():
                folder.mkdir()
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, b"doctor")
                os.fsync(fd)
            finally:
                os.close(fd)
            unlink_closed(probe)
        except OSError as exc:
            problems.append(f"{name}/: {_err(exc)}")
    if problems:
        ro = any("Read-only" in p for p in problems)
        fix = (
            "mount the share read-write (NFS: `rw` in /etc/exports and the mount; SMB: `read only = no`)"
            if ro
            else "let this user write there: chown/chmod the spool, or fix the share's user mapping "
            "(NFS all_squash/anonuid, SMB `force user`)"
        )
        return Check("writable", FAIL, "cannot write: " + "; ".join(problems), fix)
    return Check("writable", OK, f"files can be created and removed in {', '.join(f + '/' for f in folders)}")


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def path_exists(path: Path) -> bool:
    """Whether ``os.stat`` finds ``path``; errors other than "not found" propagate."""
    try:
        os.stat(path)
        return True
    except FileNotFoundError:
        return False


def _race(src: Path, targets: tuple[Path, Path]) -> list[bool]:
    barrier = threading.Barrier(2)
    won = [False, False]

    def go(i: int) -> None:
        try:
            barrier.wait(5)
        except threading.BrokenBarrierError:
            pass
        try:
            os.rename(src, targets[i])
            won[i] = True
        except OSError:
            pass

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return won


def check_rename(root: Path, rounds: int = RACE_ROUNDS) -> Check:
    """The renames a claim and a move rely on, tried for real on this folder."""
    tag = _tag()
    pending, claimed, done = root / "pending", root / "claimed", root / "done"
    src = pending / f".{tag}.tmp"
    box = claimed / f".{tag}"
    occupied = done / f".{tag}"
    fix = "use a local folder, or one folder served by one machine (NFS, SMB, sshfs): see docs/house-setup.md"
    try:
        try:
            _write_file(src, b"doctor")
            box.mkdir()
            os.rename(src, box / "job.json")
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return Check("rename", FAIL, "pending/ and claimed/ are on different filesystems", fix)
            return Check("rename", FAIL, f"a rename from pending/ to claimed/ failed: {_err(exc)}", fix)
        if path_exists(src) or src.name in os.listdir(pending):
            return Check("rename", FAIL, "a renamed file still shows under its old name", fix)
        if (box / "job.json").read_bytes() != b"doctor":
            return Check("rename", FAIL, "a renamed file lost its content", fix)
        try:
            os.rename(src, box / "again.json")
            return Check("rename", FAIL, "renaming a file that was already renamed succeeded", fix)
        except FileNotFoundError:
            pass
        except OSError as exc:
            return Check("rename", WARN, f"a second rename failed oddly ({_err(exc)}), not with ENOENT", fix)
        occupied.mkdir()
        _write_file(occupied / "result.json", b"{}")
        try:
            os.rename(box, occupied)
            return Check("rename", FAIL, "a folder rename replaced a non-empty folder (a finished job)", fix)
        except OSError:
            pass
        for i in range(rounds):
            racer = pending / f".{tag}-{i}.tmp"
            _write_file(racer, b"race")
            won = _race(racer, (box / f"a{i}", box / f"b{i}"))
            present = [path_exists(box / f"a{i}"), path_exists(box / f"b{i}")]
            if sum(won) != 1 or sum(present) != 1:
                return Check(
                    "rename",
                    FAIL,
                    f"two racing renames of one file: {sum(won)} won, {sum(present)} copies (round {i + 1})",
                    fix,
                )
        return Check(
            "rename", OK, f"renames are atomic here (a claim race run {rounds} times: one winner each time)"
        )
    except OSError as exc:
        return Check("rename", FAIL, f"could not run the rename test: {_err(exc)}", fix)
    finally:
        for path in (box, occupied):
            shutil.rmtree(path, ignore_errors=True)
        for leftover in pending.glob(f".{tag}*"):
            try:
                leftover.unlink()
            except OSError:
                pass


def check_clock(root: Path, clock: Callable[[], float] = time.time) -> Check:
    """The spool's clock (mtime of a file written now) minus this machine's clock."""
    probe = root / "runners" / f".{_tag()}-clock"
    try:
        before = clock()
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"t")
            mtime = os.fstat(fd).st_mtime
        finally:
            os.close(fd)
        after = clock()
    except OSError as exc:
        return Check("clock", WARN, f"could not read the spool's clock: {_err(exc)}")
    finally:
        remove_probe(probe)
    offset = mtime - (before + after) / 2
    where = "ahead of" if offset > 0 else "behind"
    detail = (
        f"the spool's clock is {abs(offset):.1f} s {where} this machine's"
        if abs(offset) >= 0.05
        else "the spool's clock agrees with this machine's"
    )
    if abs(offset) <= CLOCK_OK_S:
        return Check("clock", OK, detail + " (leases use the spool's clock only)")
    return Check(
        "clock",
        WARN,
        detail + "; leases are unaffected, but --hours and the times in results use local clocks",
        "keep both clocks in time with NTP: Linux `timedatectl set-ntp true`; macOS System Settings > "
        "General > Date & Time > Set time automatically",
    )


# --------------------------------------------------------------------------- tools


def check_git(scripts: Path | None, run: Run) -> Check:
    rc, out, err = run(["git", "--version"], 15.0)
    if rc != 0:
        return Check(
            "git",
            WARN,
            "git is not installed: results record no commit, and jobs with `rev` fail here",
            "install git (Debian/Ubuntu: apt install git; macOS: xcode-select --install)",
        )
    version = out.strip().removeprefix("git version ").strip()
    if scripts is None or not scripts.is_dir():
        return Check("git", OK, f"git {version}")
    rc, out, err = run(["git", "-C", str(scripts), "rev-parse", "--show-toplevel"], 15.0)
    if rc != 0:
        return Check(
            "git",
            WARN,
            f"git {version}, but the scripts folder {scripts} is not in a git repository: "
            "results record no commit",
            f"cd {scripts} && git init && git add -A && git commit -m scripts",
        )
    return Check("git", OK, f"git {version}; scripts in the repository {out.strip()}")


def _version_tuple(v: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", v.split("+")[0])[:3]
    return tuple(int(n) for n in nums)


def numpy_too_new(torch_version: str, numpy_version: str) -> bool:
    """torch before 2.3 was built against numpy 1.x and cannot use numpy 2 arrays."""
    t, n = _version_tuple(torch_version), _version_tuple(numpy_version)
    return bool(t) and bool(n) and t < (2, 3) and n >= (2,)


def check_torch(
    python: str, run: Run, *, probe_torch: bool = True, system: str | None = None, machine: str | None = None
) -> Check:
    from runner.machine.capabilities import detect
    from spool.errors import SpoolError

    if not probe_torch:
        return Check("torch", OK, "not probed (--no-torch)")
    try:
        caps = detect(python, [], run=run, system=system, machine=machine)
    except SpoolError as exc:
        return Check("torch", FAIL, str(exc), "point --python at an interpreter that runs")
    hw = f"{caps.cpu_count} cpu, {caps.memory_gb:.0f} GB"
    torch = caps.torch
    py = f"{caps.python} (Python {caps.python_version or '?'})"
    if torch is None:
        fix = "pip install torch (docs/house-setup.md says which build suits this machine)"
        if (
            caps.os == "darwin"
            and caps.arch.lower() in ("x86_64", "i386")
            and _version_tuple(caps.python_version) >= (3, 13)
        ):
            fix = (
                "Intel Macs get torch 2.2.2 at most, with wheels up to Python 3.12: make a venv with "
                "Python 3.12 from python.org, then pip install 'torch==2.2.2' 'numpy<2'"
            )
        return Check("torch", WARN, f"torch is not installed in {py}: torch jobs fail here; {hw}", fix)
    version = torch.get("version")
    if version is None:
        return Check(
            "torch",
            FAIL,
            f"torch is broken in {py}: {torch.get('error')}",
            "reinstall torch in that interpreter (docs/house-setup.md)",
        )
    rc, out, _ = (
        run([caps.python, "-c", "import numpy; print(numpy.__version__)"], 60.0)
        if _version_tuple(str(version)) < (2, 3)
        else (1, "", "")
    )
    if rc == 0 and numpy_too_new(str(version), out.strip()):
        return Check(
            "torch",
            WARN,
            f"torch {version} with numpy {out.strip()} in {py}: this torch was built for numpy 1.x",
            f"{caps.python} -m pip install 'numpy<2'",
        )
    device = caps.device
    if caps.cuda_devices and not caps.gpu:
        return Check(
            "torch",
            WARN,
            f"torch {version} in {py} runs on the cpu: {caps.gpu_reason}; {hw}",
            "see docs/house-setup.md for the torch build this card needs",
        )
    return Check("torch", OK, f"torch {version} in {py}; device {device}: {caps.gpu_reason}; {hw}")


def check_interpreter() -> Check:
    from spool import __version__

    v = sys.version_info
    detail = f"{sys.executable} (Python {v.major}.{v.minor}.{v.micro}, housespool {__version__})"
    if v < (3, 10):
        return Check("interpreter", FAIL, detail + ": housespool needs Python 3.10 or newer")
    return Check("interpreter", OK, detail)
