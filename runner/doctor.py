"""`spool doctor`: check that this machine can work on a spool, and say how to fix what cannot.

Each check is ``Check(name, status, detail, fix)`` with status ``ok``, ``warn`` or ``fail``;
``spool doctor`` exits 1 when any check fails. The checks, in order:

- ``interpreter``: the Python running housespool (>= 3.10);
- ``spool``: the folder exists, has ``spool.toml`` (readable) and its state folders;
- ``scripts``: the scripts folder exists;
- ``writable``: a file can be created and removed in every state folder and ``runners/``;
- ``rename``: the renames claims rely on behave on this folder: the source vanishes at once,
  a second rename of it fails, a rename onto a non-empty folder is refused, and of two
  threads racing to rename one file exactly one wins;
- ``clock``: the spool's clock (the mtime of a file just written there) against this
  machine's. Leases never compare two machines' clocks, so an offset is only a warning (the
  ``--hours`` rule and the times in results use the local clock);
- ``filesystem``: what the folder is mounted from (Linux ``/proc/self/mountinfo``, macOS
  ``mount``): local, NFS (``soft`` mounts warned about), SMB, sshfs, or something untested;
- ``sync``: replicated sync is not safe for claims. Detected by the marker files such tools
  keep in the synced folder or one of its parents (Syncthing ``.stfolder``/``.stversions``,
  Dropbox ``.dropbox``/``.dropbox.cache``, Nextcloud/ownCloud ``.sync_*.db``, Resilio
  ``.sync/ID``), by conflict copies in the spool (``*.sync-conflict-*``, "conflicted copy"),
  and, as a warning only, by path names (``Dropbox``, ``OneDrive``, ``iCloud Drive``...);
- ``git``: git is installed and the scripts folder is inside a repository;
- ``torch``: the job interpreter's torch and the device it will use (``runner.capabilities
  .detect``), numpy 2 under a torch older than 2.3, Python 3.13+ on an Intel Mac.

Everything that runs a program goes through ``run(argv, timeout)``, and the clock, the mount
table and the platform are parameters, so every check is tested on any machine.
"""

from __future__ import annotations

import errno
import os
import platform
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.capabilities import Run, subprocess_run_default
from spool.settings import Settings
from spool.states import State

__all__ = [
    "Check",
    "run_doctor",
    "check_writable",
    "check_rename",
    "check_clock",
    "check_sync",
    "check_filesystem",
    "parse_mountinfo",
    "parse_mount_output",
    "find_mount",
    "sync_markers",
    "conflict_files",
    "numpy_too_new",
    "format_checks",
]

OK, WARN, FAIL = "ok", "warn", "fail"
CLOCK_OK_S = 2.0
RACE_ROUNDS = 20
CONFLICT_SCAN_LIMIT = 5000


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
            os.unlink(probe)
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


def _exists(path: Path) -> bool:
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
        if _exists(src) or src.name in os.listdir(pending):
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
            present = [_exists(box / f"a{i}"), _exists(box / f"b{i}")]
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
        try:
            probe.unlink()
        except OSError:
            pass
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
    """Marker files of replicated-sync tools in ``root`` or any folder above it."""
    found = []
    for folder in [root, *root.parents]:
        try:
            names = set(os.listdir(folder)) if folder == root else None
        except OSError:
            names = None
        for marker, tool in SYNC_MARKERS.items():
            present = (marker in names) if names is not None else _exists(folder / marker)
            if present:
                found.append(f"{tool} ({folder / marker})")
        if _exists(folder / ".sync" / "ID"):
            found.append(f"Resilio Sync ({folder / '.sync'})")
        if names is not None:
            found += [f"Nextcloud/ownCloud ({folder / n})" for n in sorted(names) if _SYNC_DB.match(n)]
    return found


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
    from runner.capabilities import detect
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


# --------------------------------------------------------------------------- all of it


def run_doctor(
    spool: Path,
    *,
    python: str | None = None,
    scripts: str | None = None,
    probe_torch: bool = True,
    run: Run = subprocess_run_default,
    clock: Callable[[], float] = time.time,
    system: str | None = None,
    mountinfo: str | None = None,
) -> list[Check]:
    """Every check, in order; checks that need the spool are left out when it is not there."""
    checks = [check_interpreter()]
    spool_check, settings = check_spool(spool)
    checks.append(spool_check)
    scripts_dir: Path | None = None
    if settings is not None:
        scripts_dir = Path(scripts).expanduser().resolve() if scripts else settings.scripts_dir(spool)
        if scripts_dir.is_dir():
            checks.append(Check("scripts", OK, str(scripts_dir)))
        else:
            checks.append(
                Check(
                    "scripts",
                    FAIL,
                    f"the scripts folder {scripts_dir} does not exist on this machine",
                    "set `scripts` in spool.toml, or give this machine's folder: spool runner --scripts DIR",
                )
            )
    if spool_check.status != FAIL:
        writable = check_writable(spool)
        checks.append(writable)
        if writable.status == OK:
            checks.append(check_rename(spool))
            checks.append(check_clock(spool, clock))
        checks.append(check_filesystem(spool, system=system, run=run, mountinfo=mountinfo))
        checks.append(check_sync(spool))
    checks.append(check_git(scripts_dir, run))
    checks.append(check_torch(python or sys.executable, run, probe_torch=probe_torch, system=system))
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failed")
    return "\n".join(lines) + "\n"
