"""The machine's capabilities without waiting for torch: a quick look now, the full probe on a thread.

The full probe runs the job interpreter to import torch and try the GPU: seconds on an old
machine (3 s measured here; more on the 2013 MacBook), and a runner used to wait for it before
taking its first job. Now a runner starts with a quick look (CPU, memory, OS, the interpreter's
version: no torch, no nvidia-smi, no system_profiler) and takes CPU jobs at once, while the full
probe runs on a thread; jobs that require a GPU wait for its verdict. The verdict is cached per
interpreter, keyed by its path, its file's mtime and the mtimes of its site-packages folders (an
install or removal of torch changes those), for at most `CACHE_DAYS`: the next start has the
full capabilities at once. The cache is `$XDG_CACHE_HOME/housespool/` (else `~/.cache/...`);
one that cannot be read or written is simply not used.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.machine.capabilities import Capabilities, detect
from runner.machine.proc import subprocess_run_default

__all__ = ["CapsProbe", "cache_key", "cache_dir", "CACHE_DAYS", "PROBING"]

CACHE_DAYS = 7
PROBING = "probing torch and the GPU in the background"
_SLOW_TOOLS = ("nvidia-smi", "system_profiler")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "housespool"


def cache_key(python: str) -> dict[str, Any] | None:
    """What the cached verdict is valid for: the interpreter's path and mtime, its site-packages'."""
    try:
        mtime = os.stat(python).st_mtime_ns
    except OSError:
        return None
    prefix = os.path.dirname(os.path.dirname(python))
    sites = {}
    for pattern in ("lib/python*/site-packages", "lib/site-packages", "lib/python*/dist-packages"):
        for site in sorted(glob.glob(os.path.join(prefix, pattern))):
            try:
                sites[site] = os.stat(site).st_mtime_ns
            except OSError:
                continue
    return {"python": python, "mtime_ns": mtime, "sites": sites}


def _cache_file(folder: Path, python: str) -> Path:
    return folder / f"probe-{hashlib.sha1(python.encode()).hexdigest()[:16]}.json"


def _load(folder: Path, key: dict[str, Any], tags: list[str]) -> Capabilities | None:
    try:
        doc = json.loads(_cache_file(folder, key["python"]).read_bytes())
        if doc.get("key") != key or time.time() - float(doc["at"]) > CACHE_DAYS * 86400:
            return None
        fields = {f.name for f in dataclasses.fields(Capabilities)}
        caps = Capabilities(**{k: v for k, v in doc["caps"].items() if k in fields})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    caps.tags = list(tags)
    return caps


def _save(folder: Path, key: dict[str, Any], caps: Capabilities) -> None:
    doc = {"key": key, "at": time.time(), "caps": dataclasses.asdict(caps)}
    path = _cache_file(folder, key["python"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass


def _quick_run(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """The `run` seam of the quick look: the slow tools are left for the full probe."""
    if os.path.basename(argv[0]) in _SLOW_TOOLS:
        return 127, "", "left for the background probe"
    return subprocess_run_default(argv, timeout)


class CapsProbe:
    """Capabilities for one interpreter: `caps` at once (cached, or the quick look), and `poll()`
    giving the full probe's result once, when its thread has it."""

    def __init__(
        self,
        python: str,
        tags: list[str],
        *,
        folder: Path | None = None,
        full: Callable[[str, list[str]], Capabilities] = detect,
        quick: Callable[[str, list[str]], Capabilities] | None = None,
        log: Callable[[str], None] = lambda msg: None,
        on_done: Callable[[], None] = lambda: None,
    ):
        self._folder = folder or cache_dir()
        self._full = full
        self._log = log
        self._on_done = on_done
        self._result: Capabilities | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        abs_python = os.path.abspath(python)
        self._key = cache_key(abs_python)
        cached = _load(self._folder, self._key, tags) if self._key else None
        self.from_cache = cached is not None
        if cached is not None:
            self.caps = cached
            self.ready = True
            self._done.set()
            return
        self.caps = (quick or _quick_look)(python, tags)
        self.ready = False
        self.started = time.monotonic()
        threading.Thread(target=self._run, args=(python, tags), name="probe", daemon=True).start()

    def _run(self, python: str, tags: list[str]) -> None:
        try:
            self._result = self._full(python, tags)
            if self._key is not None:
                _save(self._folder, self._key, self._result)
        except BaseException as exc:  # noqa: BLE001 - told to the loop, which logs it
            self._error = exc
        finally:
            self._done.set()
            self._on_done()

    def poll(self) -> Capabilities | None:
        """The full capabilities, once, when the probe has finished (else None). A probe that failed
        leaves the quick look in place (no GPU): said once in the log."""
        if self.ready or not self._done.is_set():
            return None
        self.ready = True
        if self._error is not None or self._result is None:
            self._log(f"the torch/GPU probe failed ({self._error}): running CPU jobs only")
            self.caps.gpu_reason = f"probe failed: {self._error}"
            return None
        return self._result

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


def _quick_look(python: str, tags: list[str]) -> Capabilities:
    caps = detect(python, tags, run=_quick_run, probe_torch=False)
    caps.gpu, caps.mps, caps.cuda_devices, caps.gpu_reason = False, False, [], PROBING
    return caps
