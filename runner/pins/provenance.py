"""`provenance` in result.json: what exactly ran, so any result can be re-run and compared.

```
"provenance": {
  "git": {"commit", "branch", "detached", "shallow", "dirty", "script_dirty", "repo_dirty",
          "diff": "<sha256 of diffs/<sha>.patch>" | null, ["rev", "pinned"]}
         | {"error": "no git repository" | "git not installed" | ...},
  "python": {"executable": "/abs/bin/python", "version": "3.11.7"},
  "packages": {"numpy": "1.26.4", "pandas": null, "scikit-learn": ..., "torch": ...},
  "torch": {"version", "cuda_available", "cuda_usable", "cuda_version", "mps_available"} | null,
  "host": "desktop", "os": "Linux-6.1.0-...", "arch": "x86_64", "cpu": "...", "gpu": "..." | null,
  "housespool": "0.1.0",
  "inputs": {"data/iris.csv": {"sha256": "...", "size": 4551}, "data/missing.csv": {"error": "missing"}}
}
```

- `git` is read when the job starts (the working tree it ran from), or, for a job pinned with
  `rev`, describes the checkout it ran from (`pinned: true`).
- `packages` are the versions installed in the JOB's interpreter (`--python`), read from package
  metadata (nothing is imported), probed once per runner and interpreter; `torch` reuses what
  the runner's capability probe found for that interpreter.
- `inputs` are the sha256 of the job's input files: `dataPath` + `dataFileName` for argv4 jobs,
  and every path in `inputs` (spool-relative, never leaving the spool; a folder hashes its
  files). Hashing runs in a background thread from the start of the job and is cached per
  runner by (path, size, mtime_ns); when it is not finished by the end of the job (after a
  short wait) the entry says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import posixpath
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.machine.capabilities import Capabilities
from spool import gitinfo
from spool.errors import SpoolError
from spool.layout import resolve_inside
from spool.model import Contract, Job
from spool.untrusted import open_regular

__all__ = ["Provenance", "Started", "PACKAGES", "input_paths", "probe_packages"]

PACKAGES = ("numpy", "pandas", "scikit-learn", "torch")
#: recorded when installed
EXTRA_PACKAGES = ("scipy", "torchvision", "tensorflow", "jax", "xgboost", "lightgbm")
PROBE_TIMEOUT = 60.0
CHUNK = 1 << 20

# Runs in the job's interpreter, which may be old: no f-strings, metadata only, one JSON line.
PACKAGE_PROBE = r"""
import json, sys
try:
    from importlib.metadata import version as _version
    def get(name):
        try:
            return _version(name)
        except Exception:
            return None
except ImportError:
    def get(name):
        try:
            import pkg_resources
            return pkg_resources.get_distribution(name).version
        except Exception:
            return None
sys.stdout.write(json.dumps(dict((n, get(n)) for n in sys.argv[1:])) + "\n")
"""

_PACKAGES_CACHE: dict[str, dict[str, Any]] = {}
_PACKAGES_LOCK = threading.Lock()


def probe_packages(python: str) -> dict[str, Any]:
    """Versions of `PACKAGES` (always listed, None when missing) and `EXTRA_PACKAGES` (when
    installed) in the interpreter `python`; probed once per process and interpreter."""
    with _PACKAGES_LOCK:
        hit = _PACKAGES_CACHE.get(python)
        if hit is not None:
            return dict(hit)
        try:
            p = subprocess.run(
                [python, "-c", PACKAGE_PROBE, *PACKAGES, *EXTRA_PACKAGES],
                cwd=tempfile.gettempdir(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=PROBE_TIMEOUT,
                check=False,
            )
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            found = json.loads(lines[-1]) if lines else None
            if not isinstance(found, dict):
                tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
                out: dict[str, Any] = {"error": f"package probe failed (exit {p.returncode}): {tail}"}
            else:
                out = {n: found.get(n) for n in PACKAGES}
                out.update({n: found[n] for n in EXTRA_PACKAGES if found.get(n)})
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            out = {"error": f"package probe failed: {exc}"}
        _PACKAGES_CACHE[python] = out
        return dict(out)


def input_paths(job: Job, spool_root: Path) -> dict[str, Path | str]:
    """The job's input files, spool-relative name -> resolved path (or why it cannot be hashed)."""
    names: list[str] = []
    if job.contract is Contract.ARGV4:
        data, name = job.params.get("dataPath") or "data/", job.params.get("dataFileName")
        if isinstance(name, str) and name and isinstance(data, str):
            names.append(posixpath.normpath(posixpath.join(data, name)))
    names += [posixpath.normpath(p) for p in job.inputs]
    out: dict[str, Path | str] = {}
    for rel in names:
        if rel in out:
            continue
        if os.path.isabs(rel):
            out[rel] = "not a spool-relative path"
            continue
        try:
            out[rel] = resolve_inside(spool_root, rel, "input")
        except SpoolError as exc:
            out[rel] = exc.message
    return out


@dataclass
class Started:
    """What `Provenance.begin` took when a job started; `end` completes it."""

    git: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


class Provenance:
    """One per runner: the machine facts (read once), git per job, input hashes (cached)."""

    def __init__(
        self, spool_root: Path, scripts_dir: Path, python: str, caps: Capabilities, device: str = "cpu"
    ):
        self.spool_root = spool_root
        self.scripts_dir = scripts_dir
        self.python = python
        self.caps = caps
        self.device = device
        self._base: dict[str, Any] | None = None
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()
        self._repo_watch = gitinfo.RepoWatch()  # spares re-walking the scripts folder's parents

    # -- per job ----------------------------------------------------------------
    def begin(self, job: Job, git: dict[str, Any] | None = None) -> Started:
        """At the start of a job: its git state now (unless given: a pinned checkout) and
        its input hashes in a background thread."""
        if git is None:
            git = gitinfo.record(self.scripts_dir, job.script, self.spool_root, self._repo_watch)
        started = Started(git)
        paths = input_paths(job, self.spool_root)
        if not paths:
            started.done.set()
            return started
        started.inputs = {rel: ({"error": p} if isinstance(p, str) else None) for rel, p in paths.items()}

        def work() -> None:
            try:
                for rel, p in paths.items():
                    if not isinstance(p, str):
                        started.inputs[rel] = self.hash_path(p)
            finally:
                started.done.set()

        threading.Thread(target=work, name="provenance-hash", daemon=True).start()
        return started

    def end(self, started: Started | None, wait: float = 5.0) -> dict[str, Any]:
        """The `provenance` dict; never raises (a failure is recorded in it)."""
        try:
            out: dict[str, Any] = {"git": started.git} if started is not None else {}
            out.update(self.base())
            if started is not None and started.inputs:
                finished = started.done.wait(wait)
                out["inputs"] = {
                    rel: h if h is not None else {"error": "still hashing when the job ended"}
                    for rel, h in dict(started.inputs).items()
                }
                if not finished:
                    out["inputs_incomplete"] = True
            return out
        except Exception as exc:  # provenance must never stop a result from being published
            return {"error": f"provenance failed: {type(exc).__name__}: {exc}"}

    # -- per runner -------------------------------------------------------------
    def base(self) -> dict[str, Any]:
        """What does not change between jobs of this runner (computed once)."""
        if self._base is None:
            from spool import __version__

            caps = self.caps
            torch = None
            if caps.torch:
                t = caps.torch
                torch = {
                    k: t.get(k)
                    for k in ("version", "cuda_available", "cuda_usable", "cuda_version", "mps_available")
                }
            packages = probe_packages(self.python)
            if torch and torch.get("version") and "error" not in packages:
                packages["torch"] = torch["version"]
            gpus = [str(d.get("name")) for d in caps.cuda_devices if d.get("name")]
            self._base = {
                "python": {"executable": self.python, "version": caps.python_version or None},
                "packages": packages,
                "torch": torch,
                "host": caps.host,
                "os": platform.platform(),
                "arch": caps.arch,
                "cpu": caps.cpu_model or None,
                "gpu": ", ".join(gpus) if gpus else None,
                "device": self.device,
                "housespool": __version__,
            }
        return self._base

    def hash_path(self, path: Path) -> dict[str, Any]:
        """`{"sha256", "size"}` of a file, or of a folder (`files` too); `{"error"}` otherwise."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {"error": "missing"}
        except OSError as exc:
            return {"error": exc.strerror or str(exc)}
        try:
            if stat.S_ISDIR(st.st_mode):
                return self._hash_dir(path)
            if not stat.S_ISREG(st.st_mode):
                return {"error": "not a regular file"}
            return {"sha256": self._hash_file(path, st), "size": st.st_size}
        except OSError as exc:
            return {"error": exc.strerror or str(exc)}

    def _hash_file(self, path: Path, st: os.stat_result) -> str:
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._hashes.get(key)
        if hit is not None:
            return hit
        h = hashlib.sha256()
        with open_regular(path) as f:  # swapped for a FIFO since the stat: never block on it
            while chunk := f.read(CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        with self._lock:
            self._hashes[key] = digest
        return digest

    def _hash_dir(self, folder: Path) -> dict[str, Any]:
        """A folder's hash: sha256 over `relative path NUL file sha256 LF`, sorted by path."""
        root = self.spool_root.resolve()
        lines: list[str] = []
        size = 0
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                real = p.resolve()
                if real != root and root not in real.parents:
                    continue  # a symlink out of the spool is not followed
                st = os.stat(real)
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel = p.relative_to(folder).as_posix()
                lines.append(f"{rel}\0{self._hash_file(real, st)}\n")
                size += st.st_size
        lines.sort()
        return {
            "sha256": hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest(),
            "size": size,
            "files": len(lines),
        }
