"""Tools for the reliability scenarios: sizes, job scripts, real runner processes, waiting.

Nothing here fakes the spool: runners are the installed `spool runner` command started as
separate processes; jobs are files dropped into `pending/` the way a user or tool would.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from spool import Spool
from spool.states import State

FULL = os.environ.get("HOUSESPOOL_FULL") == "1"
SPOOL_EXE = Path(sys.executable).parent / "spool"

# Jobs run under the system interpreter when there is one: the scripts need only the standard
# library, start in ~10 ms instead of ~30 ms, and the runner's torch probe of an interpreter
# without torch takes 20 ms instead of ~1.5 s (which matters when a storm restarts runners).
JOB_PYTHON = next(
    (p for p in ("/usr/bin/python3", sys.executable) if os.path.isfile(p) and os.access(p, os.X_OK)),
    sys.executable,
)


def size(full: int, reduced: int) -> int:
    """The scenario's size: the issue's figure with HOUSESPOOL_FULL=1, else the CI one."""
    return full if FULL else reduced


def timeout_for(full: float, reduced: float) -> pytest.MarkDecorator:
    return pytest.mark.timeout(full if FULL else reduced)


# -- job scripts ---------------------------------------------------------------------------------

#: `mark.py` leaves one marker file per execution in data/runs/ (named job.pid.random), so a
#: test can count how often each job really ran. Flags: --s=seconds to sleep, --tick=seconds
#: between progress lines, --out=bytes of stdout, --fail=1 to exit 1.
MARK = r"""
import json, os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
job = os.environ["SPOOL_JOB_ID"]
runs = os.path.join(os.environ["SPOOL_DATA_DIR"], "runs")
tag = "%s.%d.%s" % (job, os.getpid(), os.urandom(3).hex())
try:
    os.mkdir(runs)
except FileExistsError:
    pass
os.close(os.open(os.path.join(runs, tag), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
out = int(float(args.get("out", 0)))
if out:
    line = b"o" * 99 + b"\n"
    for _ in range(out // 100):
        sys.stdout.buffer.write(line)
    sys.stdout.flush()
s, tick = float(args.get("s", 0)), float(args.get("tick", 0))
end = time.monotonic() + s
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    if tick:
        print("pid %d alive" % os.getpid(), flush=True)
    time.sleep(min(left, tick) if tick else left)
if args.get("fail") == "1":
    sys.exit(1)
print(json.dumps({"ok": True, "pid": os.getpid(), "run": tag}))
"""

SCRIPTS = {"mark.py": MARK}


class Digest(str):
    """Stands for a big file's bytes in a `submitted` map: its sha256 (compared with the kept file)."""

    @classmethod
    def of(cls, raw: bytes) -> Digest:
        import hashlib

        return cls(hashlib.sha256(raw).hexdigest())


def keepable(raw: bytes) -> bytes | Digest:
    """What a test remembers of a dropped file: the bytes, or the digest of a big one."""
    return Digest.of(raw) if len(raw) > 65536 else raw


def job_bytes(i: int, **fields: Any) -> bytes:
    """A small job file for mark.py; `i` makes each one's bytes distinct."""
    params = {"i": i, **fields.pop("params", {})}
    return json.dumps({"script": "mark.py", "params": params, **fields}).encode() + b"\n"


def drop(sp: Spool, job_id: str, raw: bytes, *, age: float = 0.0) -> None:
    """Put a job file into pending/ the careful way (hidden temp name, then rename).

    `age` back-dates the file's times, as `cp -p` or a job queued yesterday would have them.
    """
    pending = sp.layout.state_dir(State.PENDING)
    tmp = pending / f".{job_id}.json.{os.getpid()}.tmp"
    tmp.write_bytes(raw)
    if age:
        then = time.time() - age
        os.utime(tmp, (then, then))
    os.rename(tmp, pending / f"{job_id}.json")


def drop_many(sp: Spool, jobs: dict[str, bytes]) -> dict[str, bytes]:
    """Drop every job; returns {file name in pending/: bytes} for the invariant checker."""
    for job_id, raw in jobs.items():
        drop(sp, job_id, raw)
    return {f"{j}.json": raw for j, raw in jobs.items()}


def make_spool(root: Path, **settings: Any) -> Spool:
    sp = Spool.init(root)
    for name, text in SCRIPTS.items():
        (sp.scripts_dir / name).write_text(text)
    if settings:
        set_settings(sp, **settings)
    return sp


def set_settings(sp: Spool, **values: object) -> None:
    """Edit spool.toml's top-level settings (runners read it when they start)."""
    text = (sp.root / "spool.toml").read_text()
    head, _, tail = text.partition("[defaults]")
    lines = [ln for ln in head.splitlines() if ln.split("=")[0].strip() not in values]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    (sp.root / "spool.toml").write_text("\n".join(lines) + "\n[defaults]" + tail)
    sp._settings = None


def run_markers(sp: Spool) -> dict[str, int]:
    """How many times each job's script started (from mark.py's marker files)."""
    counts: dict[str, int] = {}
    try:
        names = os.listdir(sp.root / "data" / "runs")
    except FileNotFoundError:
        return counts
    for name in names:
        job = name.rsplit(".", 2)[0]
        counts[job] = counts.get(job, 0) + 1
    return counts


def marker_pids(sp: Spool) -> list[int]:
    try:
        names = os.listdir(sp.root / "data" / "runs")
    except FileNotFoundError:
        return []
    return [int(n.rsplit(".", 2)[1]) for n in names]


def kill_stray_scripts(sp: Spool, sig: int = signal.SIGKILL) -> int:
    """Kill mark.py processes this spool started that still live (a power cut kills them too)."""
    killed = 0
    for pid in marker_pids(sp):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"mark.py" in cmdline and str(sp.root).encode() in cmdline:
            try:
                os.kill(pid, sig)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def count(sp: Spool, state: State) -> int:
    try:
        return len(os.listdir(sp.layout.state_dir(state)))
    except FileNotFoundError:
        return 0


def finished(sp: Spool) -> int:
    return count(sp, State.DONE) + count(sp, State.FAILED)


def wait_for(cond: Callable[[], Any], timeout: float, step: float = 0.1, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        time.sleep(step)


# -- runner processes ----------------------------------------------------------------------------


@dataclass
class RunnerProc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Runners:
    """Start, kill and reap real `spool runner` processes; every one is ended at teardown."""

    sp: Spool
    logdir: Path
    procs: list[RunnerProc] = field(default_factory=list)
    _n: int = 0

    def start(
        self,
        *args: str,
        name: str | None = None,
        exit_when_idle: bool = False,
        events: bool = True,
        quiet: bool = True,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        python: str = JOB_PYTHON,
        spool_path: Path | None = None,
    ) -> RunnerProc:
        self._n += 1
        name = name or f"r{self._n}"
        cmd = [*prefix, str(SPOOL_EXE), "--spool", str(spool_path or self.sp.root), "runner"]
        cmd += ["--nice", "0", "--name", name, "--python", python, *args]
        if quiet:
            cmd.append("-q")
        if exit_when_idle:
            cmd.append("--exit-when-idle")
        if not events:
            cmd.append("--no-events")
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = self.logdir / f"{name}.{self._n}.stderr"
        full_env = {k: v for k, v in os.environ.items() if k != "SPOOL_DIR"}
        full_env.update(env or {})
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=full_env,
                start_new_session=True,  # a poison script that kills its parent's group hits only the runner
            )
        rp = RunnerProc(name, proc, log)
        self.procs.append(rp)
        return rp

    def kill(self, rp: RunnerProc, sig: int = signal.SIGKILL) -> None:
        rp.killed = True
        try:
            os.kill(rp.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            rp.proc.wait(10)

    def alive(self) -> list[RunnerProc]:
        return [rp for rp in self.procs if rp.alive()]

    def wait_all(self, timeout: float) -> None:
        """Wait for every runner started with --exit-when-idle (or stopped) to exit."""
        end = time.monotonic() + timeout
        for rp in self.procs:
            left = max(0.1, end - time.monotonic())
            try:
                rp.proc.wait(left)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"runner {rp.name} still running after {timeout:g} s") from None

    def stop_all(self, timeout: float = 30) -> None:
        """SIGTERM twice (finish or hand back), then SIGKILL whatever is left."""
        live = self.alive()
        for rp in live:
            try:
                os.kill(rp.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        for rp in live:
            try:
                os.kill(rp.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + timeout
        for rp in live:
            try:
                rp.proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                rp.killed = True
                rp.proc.kill()
                rp.proc.wait(10)

    def crashes(self) -> list[str]:
        """Runners that died by themselves, or printed a traceback: each one a problem."""
        out = []
        for rp in self.procs:
            text = rp.stderr()
            if "Traceback" in text:
                out.append(f"{rp.name} (pid {rp.pid}) printed a traceback:\n{text[-3000:]}")
            elif not rp.killed and rp.proc.returncode not in (None, 0):
                out.append(f"{rp.name} (pid {rp.pid}) exited {rp.proc.returncode}:\n{text[-2000:]}")
        return out

    def logs(self) -> str:
        return "\n".join(f"--- {rp.name} ---\n{rp.stderr()}" for rp in self.procs)


def pick(rng: random.Random, items: Iterable[RunnerProc]) -> RunnerProc:
    return rng.choice(list(items))


def have(*tools: str) -> str | None:
    """The first tool that is missing, or None."""
    for t in tools:
        if shutil.which(t) is None:
            return t
    return None


# -- injected faults (the one allowed fake: it wraps the real calls) ------------------------------


class AmbiguousRenames:
    """Mixed into `spool.protocol.FsOps`: with probability `rate`, a rename reports EIO, half the
    time after really renaming (a lost NFS reply) and half the time without renaming."""

    def __init__(self, rate: float = 0.01, seed: int | None = None):
        import threading

        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.before = self.after = self.calls = 0

    def rename(self, src: Path, dst: Path) -> None:
        import errno

        with self.lock:
            r = self.rng.random()
            self.calls += 1
        if r < self.rate / 2:
            with self.lock:
                self.before += 1
            raise OSError(errno.EIO, "injected: I/O error, rename not done")
        os.rename(src, dst)
        if r < self.rate:
            with self.lock:
                self.after += 1
            raise OSError(errno.EIO, "injected: I/O error after the rename was done")


def flaky_fs(rate: float = 0.01, seed: int | None = None) -> Any:
    from spool.protocol import FsOps

    class Flaky(AmbiguousRenames, FsOps):
        pass

    return Flaky(rate, seed)
