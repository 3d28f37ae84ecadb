"""The warm server itself: what runs inside the long-lived process `runner.warm.pool.WarmPool` starts.

It runs with the *jobs'* interpreter (which may be an old venv without housespool), started as
`python -c <boot> server.py ...` and executed with `runpy.run_path`, so it imports the
standard library only and keeps to syntax Python 3.8 understands. It imports the requested
modules, checks that forking is still safe (no thread started, CUDA not initialised, nothing
refused by name: `KNOWN_FORK_SAFE`, `REFUSED`), then forks one child per job request and
reports each child's exit status. `runner.warm.pool` (the runner's side) imports the framing and
the fork-safety lists from here.
"""

from __future__ import annotations

import array
import io
import json
import os
import select
import signal
import socket
import struct
import sys
from typing import Any

__all__ = ["KNOWN_FORK_SAFE", "REFUSED", "send_frame", "recv_frame"]

#: top-level modules known to be safe to import before fork() (see the module docstring)
KNOWN_FORK_SAFE = frozenset(
    {"numpy", "scipy", "pandas", "sklearn", "torch", "matplotlib", "PIL", "yaml", "json", "csv", "math"}
)
#: modules refused by name: thread pools or GPU contexts at import, or fork documented unsafe
REFUSED = frozenset({"tensorflow", "jax", "jaxlib", "cupy", "pycuda", "polars", "ray"})
_MAX_FDS = 8


# --------------------------------------------------------------------------- framing


def send_frame(sock: socket.socket, obj: Any, fds: list[int] | None = None) -> None:
    body = json.dumps(obj).encode()
    data = struct.pack("!I", len(body)) + body
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    sent = sock.sendmsg([data], anc)
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv_frame(sock: socket.socket) -> tuple[Any, list[int]]:
    """One frame and the fds that came with it; EOFError when the other side has gone."""
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(4, socket.CMSG_SPACE(_MAX_FDS * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not msg:
        for fd in fds:
            os.close(fd)
        raise EOFError("connection closed")
    head = msg + _recv_exact(sock, 4 - len(msg)) if len(msg) < 4 else msg
    (size,) = struct.unpack("!I", head)
    return json.loads(_recv_exact(sock, size).decode()), list(fds)


# --------------------------------------------------------------------------- the server


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


def _preload(modules: list[str]) -> dict[str, Any]:
    """Import `modules`; the ready message, with `ok` false and a reason when not fork-safe.

    Known fork-safe modules are imported first. Each other module must leave the server with
    one Python thread and no new native threads, except the OpenBLAS pool that numpy brings
    when that module is what first imports numpy (OpenBLAS stops it around fork() itself).
    """
    import importlib
    import threading

    known = [m for m in modules if m.split(".")[0] in KNOWN_FORK_SAFE]
    others = [m for m in modules if m not in known]
    for name in known + others:
        if name.split(".")[0] in REFUSED:
            return {"ok": False, "reason": f"{name} is not fork-safe"}
        before, had_numpy = _os_threads(), "numpy" in sys.modules
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - a broken import must not kill the runner
            return {"ok": False, "reason": f"import {name} failed: {type(exc).__name__}: {exc}"}
        if threading.active_count() != 1:
            return {"ok": False, "reason": f"importing {name} started a Python thread; fork would break it"}
        openblas = not had_numpy and "numpy" in sys.modules
        if name in others and _os_threads() > before and not openblas:
            return {"ok": False, "reason": f"importing {name} started native threads; fork would break it"}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_initialized():
                return {"ok": False, "reason": "CUDA was initialised while importing; fork would break it"}
        except Exception:  # noqa: BLE001
            pass
    return {"ok": True}


def _watch_paths(scripts_dir: str) -> list[str]:
    """What the runner stats to notice a changed interpreter or scripts folder."""
    paths = {os.path.realpath(sys.executable), scripts_dir}
    for p in sys.path:
        if p and os.path.basename(p) in ("site-packages", "dist-packages"):
            paths.add(p)
    prefix = scripts_dir.rstrip(os.sep) + os.sep
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not isinstance(f, str):
            continue
        if f.startswith(prefix):
            paths.add(f)  # a module imported from the scripts folder: its edits count
        elif "." not in getattr(mod, "__name__", ".") and os.path.basename(f) == "__init__.py":
            folder = os.path.dirname(f)
            if os.path.basename(os.path.dirname(folder)) in ("site-packages", "dist-packages"):
                paths.add(folder)  # an installed package: an upgrade rewrites its folder
    return sorted(paths)


def _server_main(argv: list[str]) -> None:
    """Entry point in the server process: `<ctl fd> <modules,...> <scripts dir>`."""
    ctl = socket.socket(fileno=int(argv[0]))
    modules = [m for m in argv[1].split(",") if m]
    scripts_dir = argv[2]
    sys.path.insert(0, scripts_dir)  # what a cold script sees as sys.path[0]
    try:
        os.chdir(scripts_dir)
    except OSError:
        pass
    ready = _preload(modules)
    ready.update(
        pid=os.getpid(),
        modules=modules,
        python=sys.executable,
        version=".".join(str(v) for v in sys.version_info[:3]),
        watch=_watch_paths(scripts_dir) if ready["ok"] else [],
    )
    send_frame(ctl, ready)
    if not ready["ok"]:
        return
    import gc

    preloaded = set(sys.modules)
    gc.freeze()  # children's collections skip the server's objects (no copy-on-write of them)
    job = _serve(ctl)
    if job is not None:
        _run_job(job[0], job[1], preloaded)


def _serve(ctl: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """Fork a child per request. Returns only in a forked child (with its request), or None
    in the server when the runner has gone (its end of the socket closed)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner stops us: a terminal's ^C is not ours
    children: dict[int, int] = {}  # pid -> status fd
    while True:
        try:
            readable, _, _ = select.select([ctl.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            _reap(children)
        if ctl.fileno() not in readable:
            continue
        try:
            request, fds = recv_frame(ctl)
        except (EOFError, OSError):
            break
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        status_fd = fds[3]
        try:
            pid = os.fork()
        except OSError as exc:
            os.write(status_fd, b"error fork failed: %s\n" % str(exc).encode())
            for fd in fds:
                os.close(fd)
            continue
        if pid == 0:
            signal.set_wakeup_fd(-1)
            for fd in [wake_r, wake_w, *children.values()]:
                os.close(fd)
            ctl.close()
            return request, fds
        children[pid] = status_fd
        for fd in fds[:3]:
            os.close(fd)
    # the runner has gone: its jobs run on in their own sessions, as cold ones would
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in children.values():
        os.close(fd)
    return None


def _reap(children: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = children.pop(pid, None)
        if fd is not None:
            try:
                os.write(fd, b"exit %d\n" % _exit_code(status))
            except OSError:
                pass
            os.close(fd)


def _std_streams(env: dict[str, str]) -> None:
    """sys.stdin/stdout/stderr as a fresh interpreter makes them (the server's point at /dev/null)."""
    old = sys.__stdout__ or sys.stdout
    encoding = getattr(old, "encoding", None) or "utf-8"
    errors = getattr(old, "errors", None) or "strict"
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    stdin = io.BufferedReader(io.FileIO(0, "r", closefd=False))
    streams: dict[str, Any] = {"stdin": io.TextIOWrapper(stdin, encoding=encoding, errors=errors)}
    for name, fd, errs in (("stdout", 1, errors), ("stderr", 2, "backslashreplace")):
        raw = io.FileIO(fd, "w", closefd=False)
        buf: Any = raw if unbuffered else io.BufferedWriter(raw)
        line = not unbuffered and (name == "stderr" or os.isatty(fd))
        streams[name] = io.TextIOWrapper(
            buf, encoding=encoding, errors=errs, line_buffering=line, write_through=unbuffered
        )
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run_job(request: dict[str, Any], fds: list[int], preloaded: set[str]) -> None:
    """In the forked child: become the job, run the script as __main__, end as `python script` ends."""
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stdin_fd, out_fd, err_fd, status_fd = fds
    os.write(status_fd, b"pid %d\n" % os.getpid())  # after setsid: the runner may now signal the group
    os.close(status_fd)
    for target, fd in ((0, stdin_fd), (1, out_fd), (2, err_fd)):
        if fd != target:
            os.dup2(fd, target)
    for fd in {stdin_fd, out_fd, err_fd}:
        if fd > 2:
            os.close(fd)
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(request["cwd"])
    argv = request["argv"]
    script = argv[1]
    sys.argv = list(argv[1:])
    sys.path[0] = os.path.dirname(script)
    _std_streams(env)
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None:
        nprandom.seed()  # a cold interpreter seeds numpy's global generator afresh: so must we
    import builtins
    import types
    from importlib.machinery import SourceFileLoader

    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__package__ = None
    main.__spec__ = None
    main.__loader__ = SourceFileLoader("__main__", script)
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(script, "rb") as f:
            source = f.read()
        exec(compile(source, script, "exec", dont_inherit=True), main.__dict__)
    except SystemExit as exc:
        code = _system_exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - report it as the interpreter would, then exit 1
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        if tb is not None:
            exc.__traceback__ = tb  # what `python script` shows: from the script's frame on
        try:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        except BaseException:  # noqa: BLE001
            pass
        if isinstance(exc, KeyboardInterrupt):
            _finish(0, main, preloaded, signal.SIGINT)
        code = 1
    _finish(code, main, preloaded)


def _system_exit_code(exc: SystemExit) -> int:
    """The exit status `python script` gives for this SystemExit (printing a non-int message)."""
    value = exc.code
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value & 0xFF
    try:
        sys.stderr.write(f"{value}\n")
    except BaseException:  # noqa: BLE001
        pass
    return 1


def _finish(code: int, main: Any, preloaded: set[str], sig: int = 0) -> None:
    """End the job as the interpreter's shutdown would, without tearing down the preloaded
    modules: that teardown touches every page the server shares with us (copy-on-write) and
    costs half a second for pandas. Non-daemon threads are waited for and atexit runs; the
    job's own namespaces (its __main__ and the modules it imported) are cleared and collected,
    so the finalizers of what it left open run (an unclosed file is flushed)."""
    import gc
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        import atexit

        atexit._run_exitfuncs()
        main.__dict__.clear()
        for name in [n for n in list(sys.modules) if n not in preloaded]:
            mod = sys.modules.get(name)
            if mod is not None and mod is not sys and name not in ("builtins", "__main__"):
                try:
                    mod.__dict__.clear()
                except Exception:  # noqa: BLE001
                    pass
        gc.collect()
    except BaseException:  # noqa: BLE001 - never leave without flushing and exiting
        code = code or 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            code = code or 120  # what Python returns when flushing stdout fails at exit
    if sig:
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(code)


if __name__ == "__housespool_warm__":
    _server_main(sys.argv[2:])
