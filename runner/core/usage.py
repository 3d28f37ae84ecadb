"""What a run cost: peak memory of the script's process tree, CPU seconds, wall time, GPU memory.

Two sources, combined per attempt into result.json's `usage`:

- `wait4`'s rusage when the runner reaps the script (`Running` reaps it that way): user and system
  CPU of the script and of every descendant it waited for, and `ru_maxrss`, the peak of the
  largest single process among them (kilobytes on Linux, bytes on macOS).
- Sampling (Linux, /proc): every `every` seconds a thread sums the resident memory of every
  process in the script's session (the runner starts each script in a session of its own, so a
  pool of workers is counted together, which `ru_maxrss` never does); on machines with an NVIDIA
  GPU, `nvidia-smi --query-compute-apps` at every lease renewal (a quarter lease) gives the GPU
  memory of the job's processes. A warm (forked) script is not the runner's child: its CPU is the
  sampled figure, a lower bound.

`max_rss_mb` is the larger of the two peaks. `gpu_mem_mb` is absent when the machine has no
NVIDIA GPU or nvidia-smi cannot be run. The parsers are pure functions (tested on text).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.machine.proc import Run, subprocess_run_default

__all__ = [
    "COMPUTE_APPS_QUERY",
    "Peak",
    "UsageSampler",
    "parse_proc_stat",
    "parse_compute_apps",
    "session_usage",
    "usage_record",
    "maxrss_bytes",
    "gpu_sampling_every",
]

COMPUTE_APPS_QUERY = [
    "nvidia-smi",
    "--query-compute-apps=pid,used_memory",
    "--format=csv,noheader,nounits",
]
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MB = 1024 * 1024


def parse_proc_stat(text: str) -> tuple[int, int, int, float] | None:
    """`/proc/<pid>/stat` as (ppid, session, rss bytes, cpu seconds of it and its reaped children),
    or None if it does not read (the command name may hold spaces and parentheses: split at the last
    ')')."""
    try:
        fields = text.rsplit(")", 1)[1].split()
        ppid, session = int(fields[1]), int(fields[3])
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        return ppid, session, int(fields[21]) * _PAGE, ticks / _TICK
    except (IndexError, ValueError):
        return None


def parse_compute_apps(text: str) -> dict[int, float]:
    """`nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits` as
    {pid: MiB}. Lines it cannot read (`[N/A]`, `[Not Supported]` on old cards, a header) are
    skipped; a pid listed twice (one process on two GPUs) is summed."""
    out: dict[int, float] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        try:
            pid, mib = int(parts[0]), float(parts[1].removesuffix("MiB").strip())
        except ValueError:
            continue
        out[pid] = out.get(pid, 0.0) + mib
    return out


def session_usage(sessions: Iterable[int], proc: str = "/proc") -> dict[int, tuple[int, float, set[int]]]:
    """For each session id: (resident bytes summed over its processes, their CPU seconds, pids)."""
    wanted = set(sessions)
    out: dict[int, tuple[int, float, set[int]]] = {}
    try:
        names = [n for n in os.listdir(proc) if n.isdigit()]
    except OSError:
        return out
    for name in names:
        try:
            with open(f"{proc}/{name}/stat") as f:
                parsed = parse_proc_stat(f.read())
        except OSError:
            continue  # ended while we looked
        if parsed is None or parsed[1] not in wanted:
            continue
        rss, cpu, pids = out.get(parsed[1], (0, 0.0, set()))
        pids.add(int(name))
        out[parsed[1]] = (rss + parsed[2], cpu + parsed[3], pids)
    return out


def maxrss_bytes(ru_maxrss: int, platform: str = sys.platform) -> int:
    """`ru_maxrss` in bytes: macOS reports bytes, Linux and the BSDs kilobytes."""
    return ru_maxrss if platform == "darwin" else ru_maxrss * 1024


@dataclass
class Peak:
    """What sampling saw of one job."""

    rss: int = 0
    cpu: float = 0.0
    gpu_mib: float | None = None
    samples: int = 0


class UsageSampler:
    """One thread for all of a runner's jobs: samples each job's session now and then."""

    def __init__(
        self,
        every: float = 1.0,
        gpu_every: float | None = None,
        *,
        run: Run = subprocess_run_default,
        proc: str = "/proc",
    ):
        self.every = every
        self.gpu_every = gpu_every  # None: no NVIDIA GPU here, never run nvidia-smi
        self._run = run
        self._proc = proc
        self._jobs: dict[int, Peak] = {}  # session id (the script's pid) -> peak
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_gpu = 0.0
        self.enabled = os.path.isdir(proc)

    def add(self, pid: int) -> None:
        with self._lock:
            self._jobs[pid] = Peak()
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="usage", daemon=True)
            self._thread.start()

    def remove(self, pid: int) -> Peak:
        """Stop watching a job; what was seen of it."""
        with self._lock:
            return self._jobs.pop(pid, Peak())

    def close(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._wake.wait(self.every):
            self.sample_once(time.monotonic())

    def sample_once(self, now: float) -> None:
        with self._lock:
            sessions = list(self._jobs)
        if not sessions:
            return
        seen = session_usage(sessions, self._proc)
        gpu: dict[int, float] | None = None
        if self.gpu_every is not None and now >= self._next_gpu:
            self._next_gpu = now + self.gpu_every
            rc, out, _ = self._run(COMPUTE_APPS_QUERY, 10.0)
            gpu = parse_compute_apps(out) if rc == 0 else None
        with self._lock:
            for sid, (rss, cpu, pids) in seen.items():
                peak = self._jobs.get(sid)
                if peak is None:
                    continue
                peak.rss = max(peak.rss, rss)
                peak.cpu = max(peak.cpu, cpu)
                peak.samples += 1
                if gpu is not None:
                    mib = sum(gpu.get(p, 0.0) for p in pids)
                    peak.gpu_mib = max(peak.gpu_mib or 0.0, mib)


def usage_record(wall: float, rusage: Any | None, peak: Peak, platform: str = sys.platform) -> dict[str, Any]:
    """result.json's `usage` for one attempt."""
    rec: dict[str, Any] = {"wall_s": round(wall, 3)}
    rss = peak.rss
    if rusage is not None:
        rec["user_s"] = round(rusage.ru_utime, 3)
        rec["sys_s"] = round(rusage.ru_stime, 3)
        rss = max(rss, maxrss_bytes(int(rusage.ru_maxrss), platform))
    elif peak.samples:
        rec["cpu_s"] = round(peak.cpu, 3)  # user + system, as sampled (a lower bound)
    if rss:
        rec["max_rss_mb"] = round(rss / MB, 1)
    if peak.gpu_mib is not None:
        rec["gpu_mem_mb"] = round(peak.gpu_mib, 1)
    rec["samples"] = peak.samples
    return rec


def gpu_sampling_every(cuda_devices: list[dict[str, Any]], lease_seconds: float) -> float | None:
    """nvidia-smi every lease renewal (a quarter lease) on a machine with NVIDIA cards, else never."""
    return lease_seconds / 4 if cuda_devices else None

