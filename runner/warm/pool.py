"""Warm mode: a fork server per interpreter, so a job skips `import pandas` and friends.

`spool runner --warm pandas,sklearn` starts one long-lived *server* process with the jobs'
interpreter. It imports those modules once, checks that it is still safe to fork, and then
waits. Each job is a fresh `fork()` of the server: the child calls `setsid()` (its own process
group, as a cold job has), takes the job's pipes as stdin/stdout/stderr, its cwd, its
environment and its argv, and runs the script as `__main__` with `runpy` inside the normal
interpreter shutdown (non-daemon threads are waited for, `atexit` runs, `sys.exit` codes and
uncaught exceptions end the process exactly as they end `python script.py`). Nothing carries
from one job to the next: every job forks from the same untouched server.

The runner sees a warm job as an ordinary process it can signal (`WarmProcess`, a look-alike
of `subprocess.Popen`): the same log pumping, metrics, timeouts, cancel, leases and result.
Exit statuses come from the server, which is the jobs' parent and reaps them.

Fork safety. The server never initialises CUDA and never starts a thread before forking:
- known fork-safe imports: the standard library, numpy, scipy, pandas, scikit-learn (sklearn),
  torch (CUDA is initialised lazily, on first use, never by import), matplotlib (the backend is
  chosen on first plot), PIL, yaml. numpy and scipy load OpenBLAS, whose worker threads are
  stopped before a fork and restarted in the child by OpenBLAS's own `pthread_atfork` handlers;
- refused by name: tensorflow, jax, jaxlib, cupy, pycuda, polars, ray (they start thread pools
  or a GPU context at import, or document that a forked child may deadlock);
- any other module is accepted only if, after importing it, the server still has exactly one
  Python thread and no more native threads than the known modules account for, and CUDA is not
  initialised. A server that fails these checks refuses to serve, and every job runs cold with
  the reason in its result.json.

Fallback. Any failure of the server (it will not start, an import fails, the checks fail, it
died, it did not answer) starts the job cold and says so in `result.json` as
`"warm": {"used": false, "reason": ...}`; a warm job has `"warm": {"used": true, ...}`. A job
with `"warm": false` runs cold. Warm mode is off on macOS (its system libraries are not
fork-safe once initialised) unless the runner is given `--warm-on-macos`.

Restarts. Before each warm job the runner compares a fingerprint of the interpreter (the
executable, its site-packages folders, the folders of the preloaded packages: a `pip install`
changes them) and of the scripts folder (the folder and any module the server imported from
it) with the one taken when the server started, and restarts the server when it changed.

The server's own code is `runner/warm/server.py`: it runs with the *job's* interpreter (which
may be an old venv without housespool), so it imports the standard library only. This module is
the runner's side: starting, watching and restarting the server (a forked job: `runner.warm.process`).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.warm.process import WarmProcess
from runner.warm.server import KNOWN_FORK_SAFE, REFUSED, recv_frame, send_frame

if TYPE_CHECKING:  # pragma: no cover
    from runner.core.contract import Invocation

__all__ = [
    "WarmPool",
    "WarmProcess",
    "WarmUnavailable",
    "KNOWN_FORK_SAFE",
    "REFUSED",
    "check_fork_safe",
    "warm_default_allowed",
]

#: environment variables an interpreter applies only at start: a job that sets them runs cold
_STARTUP_ENV_PREFIXES = ("PYTHON", "LC_", "LD_", "DYLD_")
_STARTUP_ENV_NAMES = ("LANG", "LANGUAGE")
_STARTUP_ENV_IGNORED = ("PYTHONUNBUFFERED",)

READY_WAIT = 120.0  # seconds for the server to import its modules
ANSWER_WAIT = 10.0  # seconds for a forked job to report its pid
RESTARTS = 3  # restarts allowed within RESTART_WINDOW before warm mode rests for that long
RESTART_WINDOW = 60.0
RETRY_BROKEN = 300.0  # seconds before a server that refused or failed is tried again
SERVER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
_BOOT = "import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv[1], run_name='__housespool_warm__')"


class WarmUnavailable(Exception):
    """The warm path cannot take this job; the message says why (it goes into result.json)."""


def check_fork_safe(modules: list[str]) -> None:
    """ValueError naming the first module known not to survive a fork (threads or a GPU
    context at import); the server refuses them too, this says so before a runner starts."""
    for name in modules:
        if name.split(".")[0] in REFUSED:
            raise ValueError(f"{name} is not fork-safe (it starts threads or a GPU context at import)")


def warm_default_allowed(platform: str | None = None) -> tuple[bool, str]:
    """Warm mode is off on macOS unless asked for by name (fork safety of its system libraries)."""
    plat = sys.platform if platform is None else platform
    if plat == "darwin":
        return False, "warm mode is off on macOS (fork safety); --warm-on-macos turns it on"
    if not hasattr(os, "fork"):
        return False, "this system has no fork()"
    return True, ""


def _fingerprint(paths: list[str]) -> tuple[Any, ...]:
    out: list[Any] = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, None))
    return tuple(out)


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in env.items()
        if (k.startswith(_STARTUP_ENV_PREFIXES) or k in _STARTUP_ENV_NAMES) and k not in _STARTUP_ENV_IGNORED
    }


class WarmPool:
    """The runner's handle on its fork server: start, check, restart, fork a job, fall back."""

    def __init__(
        self,
        python: str,
        modules: list[str],
        scripts_dir: str,
        *,
        allowed: tuple[bool, str] | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.python = python
        self.modules = modules
        self.scripts_dir = os.path.realpath(scripts_dir)
        self._log = log or (lambda msg: None)
        self.allowed = allowed if allowed is not None else warm_default_allowed()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.ready: dict[str, Any] | None = None
        self.broken: str | None = None  # why the current server cannot serve
        self._broken_at = 0.0
        self._fingerprint: tuple[Any, ...] = ()
        self._server_env: dict[str, str] = {}
        self._restarts: list[float] = []
        self.forks = 0
        if self.allowed[0]:
            self.start()

    # -- server lifetime --------------------------------------------------------
    def start(self) -> None:
        """Start a server (its imports run in the background; `_ensure` waits for them)."""
        self.stop()
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW] + [now]
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        self._server_env = _startup_env(env)
        try:
            self.proc = subprocess.Popen(
                [self.python, "-c", _BOOT, SERVER_FILE, str(child.fileno())]
                + [",".join(self.modules), self.scripts_dir],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=self.scripts_dir,
                start_new_session=True,
            )
        except OSError as exc:
            self._fail(f"cannot start the warm server: {exc}")
            parent.close()
            return
        finally:
            child.close()
        self.sock = parent
        self.ready = None
        self.broken = None

    def stop(self) -> None:
        """Close the server's socket (it exits on EOF); jobs it forked run on to their end."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            if self.ready is None:  # still importing: it would not notice the socket closing
                self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2)
            self.proc = None
        self.ready = None

    close = stop

    def _ensure(self) -> str | None:
        """None when a ready server is there; else why not (the job then runs cold).

        The first job waits for the server's imports. A server found dead, or older than a
        change of the interpreter or the scripts folder, is restarted: the job that found it
        runs cold, the next ones wait for the new server. A server that refused (an import
        failed, not fork-safe) or restarted too often is tried again after `RETRY_BROKEN` s.
        """
        if not self.allowed[0]:
            return self.allowed[1]
        alive = self.proc is not None and self.proc.poll() is None
        if self.ready is not None and alive:
            if _fingerprint(self.ready.get("watch") or []) == self._fingerprint:
                return None
            return self._restart(
                "the interpreter or the scripts folder changed since the warm server started"
            )
        if self.ready is not None:
            code = self.proc.poll() if self.proc is not None else None
            return self._restart(f"the warm server had exited (code {code})")
        if self.sock is None:
            if self.broken is not None and time.monotonic() - self._broken_at < RETRY_BROKEN:
                return self.broken
            self.start()
            if self.sock is None:
                return self.broken
        return self._wait_ready()

    def _restart(self, why: str) -> str:
        now = time.monotonic()
        if len([t for t in self._restarts if now - t < RESTART_WINDOW]) >= RESTARTS:
            self.stop()
            self._fail(f"{why}; restarted {RESTARTS} times within {RESTART_WINDOW:g} s, resting")
            return str(self.broken)
        self._log(f"{why}: restarting it")
        self.start()  # it imports in the background: this job runs cold, the next one waits for it
        return f"{why}; it is restarting"

    def _fail(self, reason: str) -> None:
        self.broken = reason
        self._broken_at = time.monotonic()

    def _wait_ready(self) -> str | None:
        if self.sock is None:
            return self.broken or "no warm server"
        ready, _, _ = select.select([self.sock], [], [], READY_WAIT)
        try:
            if not ready:
                raise WarmUnavailable(f"the warm server did not finish importing within {READY_WAIT:g} s")
            msg, fds = recv_frame(self.sock)
            for fd in fds:
                os.close(fd)
            if not msg.get("ok"):
                raise WarmUnavailable(str(msg.get("reason") or "the warm server refused"))
        except (WarmUnavailable, EOFError, OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, WarmUnavailable) else f"the warm server failed: {exc}"
            if isinstance(exc, EOFError) and self.proc is not None:
                reason = f"the warm server exited while importing (code {self.proc.wait(5)})"
            self.stop()
            self._fail(reason)
            self._log(f"warm mode unavailable: {reason}; jobs run cold")
            return reason
        self.ready = msg
        self._fingerprint = _fingerprint(msg.get("watch") or [])
        self._log(f"warm server {msg.get('pid')} ready with {', '.join(self.modules)}")
        return None

    # -- one job ----------------------------------------------------------------
    def spawner(self, job: Any) -> tuple[Callable[[Invocation], Any], dict[str, Any]]:
        """A `spawn` for `Running` and the job's `warm` record (filled in when it runs)."""
        info: dict[str, Any] = {"used": False}

        def spawn(inv: Invocation) -> Any:
            if getattr(job, "warm", None) is False:
                info["reason"] = 'the job says "warm": false'
                return None
            try:
                proc = self.fork(inv)
            except WarmUnavailable as exc:
                info["reason"] = str(exc)
                return None  # Running starts it cold
            info.clear()
            info.update(used=True, server=self.ready.get("pid") if self.ready else None, modules=self.modules)
            return proc

        return spawn, info

    def fork(self, inv: Invocation) -> WarmProcess:
        """Fork the server into this job; raises WarmUnavailable to start it cold instead."""
        if inv.argv[0] != self.python:
            raise WarmUnavailable(f"the job runs {inv.argv[0]}, the warm server {self.python}")
        env = {str(k): str(v) for k, v in inv.env.items()}
        startup = _startup_env(env)
        if startup != self._server_env:
            changed = sorted(set(startup.items()) ^ set(self._server_env.items()))
            raise WarmUnavailable(f"the job sets {changed[0][0]}, which only a fresh interpreter applies")
        reason = self._ensure()
        if reason is not None:
            raise WarmUnavailable(reason)
        assert self.sock is not None
        mine: list[int] = []
        theirs: list[int] = []
        try:
            if inv.stdin is not None:
                in_r, in_w = os.pipe()
                mine.append(in_w)
                theirs.append(in_r)
            else:
                theirs.append(os.open(os.devnull, os.O_RDONLY))
            for _ in range(3):  # stdout, stderr, status
                r, w = os.pipe()
                mine.append(r)
                theirs.append(w)
            request = {"argv": [str(a) for a in inv.argv], "env": env, "cwd": str(inv.cwd)}
            try:
                send_frame(self.sock, request, theirs)
            except OSError as exc:
                raise WarmUnavailable(f"the warm server is not answering: {exc}") from None
        except BaseException:
            for fd in mine:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        status_fd = mine[-1]
        pid, rest = self._read_pid(status_fd, mine)
        self.forks += 1
        stdin = os.fdopen(mine[0], "wb") if inv.stdin is not None else None
        out_i = 1 if inv.stdin is not None else 0
        stdout = os.fdopen(mine[out_i], "rb", buffering=0)
        stderr = os.fdopen(mine[out_i + 1], "rb", buffering=0)
        return WarmProcess(pid, stdin, stdout, stderr, status_fd, rest)

    def _read_pid(self, status_fd: int, mine: list[int]) -> tuple[int, bytes]:
        buf = b""
        end = time.monotonic() + ANSWER_WAIT
        try:
            while b"\n" not in buf:
                left = end - time.monotonic()
                ready, _, _ = select.select([status_fd], [], [], max(0.0, left))
                if not ready:
                    raise WarmUnavailable(f"the warm server did not fork within {ANSWER_WAIT:g} s")
                chunk = os.read(status_fd, 256)
                if not chunk:
                    raise WarmUnavailable("the warm server closed the job before it started")
                buf += chunk
            line, rest = buf.split(b"\n", 1)
            word, _, value = line.decode(errors="replace").partition(" ")
            if word != "pid":
                raise WarmUnavailable(f"the warm server could not start the job ({word} {value})".strip())
            return int(value), rest
        except (WarmUnavailable, ValueError) as exc:
            for fd in mine:
                os.close(fd)
            if self.proc is not None and self.proc.poll() is None and "did not fork" in str(exc):
                self.stop()  # hung: the next job gets a new server
            raise WarmUnavailable(str(exc)) from None
