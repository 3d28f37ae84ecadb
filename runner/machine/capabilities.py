"""What this machine can run: CPU, memory, CUDA devices, torch, MPS, tags.

Everything that touches the system goes through two seams so the decision logic is
testable for every platform on any machine:

- ``run(argv, timeout) -> (returncode, stdout, stderr)`` runs a program (``nvidia-smi``,
  ``sysctl``, ``system_profiler``, the job's interpreter). Returncode 127 means the program
  is missing, 124 that it timed out.
- ``read_file(path) -> str | None`` reads ``/proc/cpuinfo`` and ``/proc/meminfo``.

The parsers (``parse_cpuinfo``, ``parse_meminfo``, ``parse_nvidia_smi``, ``parse_probe``,
``parse_system_profiler``) take text and are pure. They live in ``runner.machine.hw`` (CPU, memory,
OS, macOS displays) and ``runner.machine.cuda`` (nvidia-smi, the torch probe, ``gpu_decision``); the
``run`` seam lives in ``runner.machine.proc``. This module combines them and re-exports them.

The GPU rule: ``gpu`` is True only when a CUDA device exists AND either torch is not installed
in the job's interpreter (nothing to contradict the hardware) or torch actually ran a tensor
op on the card. A card that torch has no kernels for (a GTX 1060, sm_61, under a cu128/cu13
wheel) is reported with a plain reason and a fix, and the machine runs CPU jobs only.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from runner.machine.cuda import (
    NVIDIA_SMI_QUERY,
    NVIDIA_SMI_QUERY_OLD,
    PROBE_PROGRAM,
    TORCH_PROBE_TIMEOUT,
    gpu_decision,
    nvidia_devices,
    parse_nvidia_smi,
    parse_probe,
)
from runner.machine.hw import (
    TOOL_TIMEOUT,
    cpu_and_memory,
    normalize_os,
    os_from_system,
    parse_cpuinfo,
    parse_meminfo,
    parse_system_profiler,
    read_text,
)
from runner.machine.proc import Run, first_line, subprocess_run_default
from spool.errors import ConfigError

__all__ = [
    "Run",
    "Capabilities",
    "subprocess_run_default",
    "detect",
    "pick_device",
    "meets",
    "normalize_os",
    "parse_cpuinfo",
    "parse_meminfo",
    "parse_nvidia_smi",
    "parse_probe",
    "parse_system_profiler",
    "gpu_decision",
    "PROBE_PROGRAM",
    "NVIDIA_SMI_QUERY",
    "NVIDIA_SMI_QUERY_OLD",
]


@dataclass
class Capabilities:
    host: str
    os: str
    arch: str
    cpu_count: int
    cpu_model: str
    memory_gb: float
    gpu: bool
    gpu_reason: str
    cuda_devices: list[dict[str, Any]] = field(default_factory=list)
    torch: dict[str, Any] | None = None
    mps: bool = False
    tags: list[str] = field(default_factory=list)
    python: str = ""
    python_version: str = ""

    @property
    def device(self) -> str:
        """What ``SPOOL_DEVICE`` gets on this machine: ``cuda``, ``mps`` or ``cpu``."""
        return pick_device(self)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["device"] = self.device
        return d


# --------------------------------------------------------------------------- detect


def _resolve_python(python: str) -> str:
    # abspath, not realpath: a venv's python is a symlink whose target is not the venv.
    if os.sep not in python and (os.altsep is None or os.altsep not in python):
        found = shutil.which(python)
        if found:
            return os.path.abspath(found)
    return os.path.abspath(python)


def detect(
    python: str,
    tags: list[str],
    *,
    run: Run = subprocess_run_default,
    probe_torch: bool = True,
    system: str | None = None,
    machine: str | None = None,
    host: str | None = None,
    cpu_count: int | None = None,
    read_file: Callable[[str], str | None] = read_text,
) -> Capabilities:
    """Detect this machine's capabilities for jobs run with the interpreter ``python``.

    ``system``/``machine``/``host``/``cpu_count``/``read_file`` default to the real machine
    and exist so tests can play any platform.
    """
    os_name = os_from_system(system if system is not None else platform.system())
    arch = machine if machine is not None else platform.machine()
    python_abs = _resolve_python(python)

    argv = [python_abs, "-c", PROBE_PROGRAM] + ([] if probe_torch else ["--no-torch"])
    rc, out, err = run(argv, TORCH_PROBE_TIMEOUT)
    if rc in (126, 127):
        raise ConfigError(f"cannot run the python interpreter {python_abs}: {first_line(err) or 'not found'}")
    python_version, torch = parse_probe(rc, out, err)
    if not probe_torch:
        torch = None

    cpu_model, memory = cpu_and_memory(os_name, run, read_file)

    mps, mps_note = False, ""
    if os_name == "darwin":
        devices: list[dict[str, Any]] = []
        note = "macOS has no CUDA"
        mps, mps_note = _mps(torch, arch, run)
    else:
        devices, note = nvidia_devices(run)
    devices = _with_torch_devices(devices, torch)

    gpu, reason = gpu_decision(devices, torch, no_device_note=note, torch_checked=probe_torch)
    if mps_note:
        reason = f"{reason}; {mps_note}"

    return Capabilities(
        host=host if host is not None else (socket.gethostname() or platform.node()),
        os=os_name,
        arch=arch,
        cpu_count=cpu_count if cpu_count is not None else (os.cpu_count() or 1),
        cpu_model=cpu_model,
        memory_gb=float(memory) if memory is not None else 0.0,
        gpu=gpu,
        gpu_reason=reason,
        cuda_devices=devices,
        torch=torch,
        mps=mps,
        tags=list(tags),
        python=python_abs,
        python_version=python_version or (platform.python_version() if python_abs == sys.executable else ""),
    )


def _mps(torch: dict[str, Any] | None, arch: str, run: Run) -> tuple[bool, str]:
    """(MPS usable, why) on macOS: torch says, if installed; else the GPU's Metal support."""
    if torch is not None:
        # torch is installed (maybe broken): it alone says whether MPS works.
        mps = bool(torch.get("mps_available")) and bool(torch.get("mps_usable", True))
        version = torch.get("version") or "(broken install)"
        if mps:
            return True, f"MPS works with torch {version}"
        why = f": {torch['error']}" if torch.get("error") else ""
        return False, f"torch {version} cannot use MPS{why}"
    rc_sp, sp_out, _ = run(["system_profiler", "SPDisplaysDataType"], TOOL_TIMEOUT)
    names, metal = parse_system_profiler(sp_out if rc_sp == 0 else "")
    mps = metal and arch.lower() in ("arm64", "aarch64")
    gpu_name = names[0] if names else "GPU"
    if mps:
        return True, f"{gpu_name} supports Metal; torch not installed, so MPS is unchecked"
    if metal:
        return False, f"{gpu_name} supports Metal but is not Apple silicon"
    return False, "no Metal GPU found"


def _with_torch_devices(devices: list[dict[str, Any]], torch: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Fill what old nvidia-smi could not tell from torch, or the device list when nvidia-smi is
    missing from PATH but torch sees the cards."""
    torch_devices = [d for d in (torch or {}).get("devices") or [] if isinstance(d, dict)]
    if devices:
        for d in devices:
            if d.get("compute_capability") is None:
                for td in torch_devices:
                    if td.get("index") == d["index"] and td.get("compute_capability"):
                        d["compute_capability"] = td["compute_capability"]
        return devices
    keys = ("index", "name", "compute_capability", "memory_gb")
    return [{k: td.get(k) for k in keys} for td in torch_devices]


# --------------------------------------------------------------------------- decisions


def pick_device(caps: Capabilities) -> str:
    """``cuda`` when the GPU is usable, else ``mps`` on Apple silicon, else ``cpu``."""
    if caps.gpu:
        return "cuda"
    if caps.mps:
        return "mps"
    return "cpu"


# The OS reports a little less memory than is installed (the kernel and firmware keep some):
# a "16 GB" machine shows 15.5. A requirement is met within this fraction.
MEMORY_TOLERANCE = 0.05


def _fmt_gb(x: float) -> str:
    return f"{x:g}"


def meets(requires: Mapping[str, Any] | Any | None, caps: Capabilities) -> tuple[bool, str]:
    """Whether a job's ``requires`` can run here: ``(True, "")`` or ``(False, reason)``.

    Keys: ``gpu`` (True needs a usable CUDA GPU; False asks nothing), ``min_memory_gb``,
    ``tags`` (all must be among the runner's tags), ``os`` (one name or a list of names).
    An unknown key is not met: a runner never claims a job it does not understand.
    """
    if requires is None:
        return True, ""
    if not isinstance(requires, Mapping):
        dump = getattr(requires, "model_dump", None)
        requires = dump(exclude_none=True) if callable(dump) else dict(vars(requires))
    reasons: list[str] = []
    for key, value in requires.items():
        if value is None:
            continue
        if key == "gpu":
            if value and not caps.gpu:
                reasons.append(f"needs a GPU; {caps.gpu_reason or 'this machine has none'}")
        elif key == "min_memory_gb":
            try:
                need = float(value)
            except (TypeError, ValueError):
                reasons.append(f"min_memory_gb {value!r} is not a number")
                continue
            if caps.memory_gb < need * (1 - MEMORY_TOLERANCE):
                reasons.append(
                    f"needs {_fmt_gb(need)} GB memory; this machine has {_fmt_gb(caps.memory_gb)} GB"
                )
        elif key == "tags":
            wanted = [value] if isinstance(value, str) else [str(t) for t in value]
            missing = [t for t in wanted if t not in caps.tags]
            if missing:
                have = ", ".join(caps.tags) or "none"
                reasons.append(f"needs tags {', '.join(missing)}; this runner has {have}")
        elif key == "os":
            names = [value] if isinstance(value, str) else [str(v) for v in value]
            wanted_os = []
            for n in names:
                norm = normalize_os(n)
                if norm is None:
                    reasons.append(f"unknown os {n!r} (use linux, darwin/macos or windows)")
                    break
                wanted_os.append(norm)
            else:
                if wanted_os and caps.os not in wanted_os:
                    reasons.append(f"needs os {' or '.join(names)}; this machine is {caps.os}")
        else:
            reasons.append(f"unknown requirement {key!r}")
    return (not reasons), "; ".join(reasons)
