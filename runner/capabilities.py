"""What this machine can run: CPU, memory, CUDA devices, torch, MPS, tags.

Everything that touches the system goes through two seams so the decision logic is
testable for every platform on any machine:

- ``run(argv, timeout) -> (returncode, stdout, stderr)`` runs a program (``nvidia-smi``,
  ``sysctl``, ``system_profiler``, the job's interpreter). Returncode 127 means the program
  is missing, 124 that it timed out.
- ``read_file(path) -> str | None`` reads ``/proc/cpuinfo`` and ``/proc/meminfo``.

The parsers (``parse_cpuinfo``, ``parse_meminfo``, ``parse_nvidia_smi``, ``parse_probe``,
``parse_system_profiler``) take text and are pure.

The GPU rule: ``gpu`` is True only when a CUDA device exists AND either torch is not installed
in the job's interpreter (nothing to contradict the hardware) or torch actually ran a tensor
op on the card. A card that torch has no kernels for (a GTX 1060, sm_61, under a cu128/cu13
wheel) is reported with a plain reason and a fix, and the machine runs CPU jobs only.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

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

Run = Callable[[list[str], float], tuple[int, str, str]]
"""``run(argv, timeout) -> (returncode, stdout, stderr)``; 127 = missing, 124 = timed out."""

GIB = 1024**3

NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,compute_cap,memory.total",
    "--format=csv,noheader,nounits",
]
NVIDIA_SMI_QUERY_OLD = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total",
    "--format=csv,noheader,nounits",
]

TORCH_PROBE_TIMEOUT = 60.0
TOOL_TIMEOUT = 15.0

# Runs in the JOB's interpreter, which may be old: no f-strings, no walrus, prints one JSON
# line last. Warnings (e.g. "sm_61 is not compatible with the current PyTorch installation")
# are recorded, not printed.
PROBE_PROGRAM = r"""
import json, sys, warnings
out = {"python_version": "%d.%d.%d" % tuple(sys.version_info[:3]), "torch": None}
def short(e):
    s = str(e).strip().splitlines()
    return (type(e).__name__ + ": " + (s[0] if s else "")).strip()
def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--no-torch":
        return
    try:
        import torch
    except ImportError as e:
        if getattr(e, "name", None) == "torch" or str(e).replace("'", "") == "No module named torch":
            return
        out["torch"] = {"version": None, "cuda_available": False, "cuda_usable": False,
                        "mps_available": False, "error": "import torch failed: " + short(e)}
        return
    except Exception as e:
        out["torch"] = {"version": None, "cuda_available": False, "cuda_usable": False,
                        "mps_available": False, "error": "import torch failed: " + short(e)}
        return
    t = {"version": str(getattr(torch, "__version__", "?")), "cuda_available": False,
         "cuda_usable": False, "mps_available": False, "mps_usable": False, "error": None,
         "cuda_version": getattr(getattr(torch, "version", None), "cuda", None),
         "arch_list": [], "devices": [], "warnings": []}
    out["torch"] = t
    errors = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            t["cuda_available"] = bool(torch.cuda.is_available())
        except Exception as e:
            errors.append("cuda: " + short(e))
        if t["cuda_available"]:
            try:
                t["arch_list"] = list(torch.cuda.get_arch_list())
            except Exception:
                pass
            try:
                n = torch.cuda.device_count()
            except Exception as e:
                n = 0
                errors.append("cuda: " + short(e))
            for i in range(n):
                d = {"index": i, "name": None, "compute_capability": None, "memory_gb": None,
                     "usable": False, "error": None}
                try:
                    d["name"] = torch.cuda.get_device_name(i)
                    d["compute_capability"] = "%d.%d" % tuple(torch.cuda.get_device_capability(i))
                    d["memory_gb"] = round(
                        torch.cuda.get_device_properties(i).total_memory / 1073741824.0, 2)
                except Exception as e:
                    d["error"] = short(e)
                try:
                    x = torch.ones(4, device="cuda:%d" % i)
                    d["usable"] = float((x * 2).sum().item()) == 8.0
                except Exception as e:
                    d["error"] = short(e)
                t["devices"].append(d)
            if t["devices"]:
                t["cuda_usable"] = bool(t["devices"][0]["usable"])
                if not t["cuda_usable"] and t["devices"][0]["error"]:
                    errors.append(t["devices"][0]["error"])
        try:
            mps = getattr(getattr(torch, "backends", None), "mps", None)
            t["mps_available"] = bool(mps is not None and mps.is_available())
        except Exception as e:
            errors.append("mps: " + short(e))
        if t["mps_available"]:
            try:
                x = torch.ones(4, device="mps")
                t["mps_usable"] = float((x * 2).sum().item()) == 8.0
            except Exception as e:
                errors.append("mps: " + short(e))
    t["warnings"] = [str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()]
    t["error"] = "; ".join(errors) or None
main()
sys.stdout.write("\n" + json.dumps(out) + "\n")
"""


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


# --------------------------------------------------------------------------- running programs


def subprocess_run_default(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``argv`` (never through a shell) with a timeout; never raises for a missing program."""
    try:
        p = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        return 127, "", f"{argv[0]}: not found ({e.strerror or e})"
    except PermissionError as e:
        return 126, "", f"{argv[0]}: cannot execute ({e.strerror or e})"
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out, f"{argv[0]}: timed out after {timeout:g} s"
    except OSError as e:
        return 126, "", f"{argv[0]}: {e}"
    return p.returncode, p.stdout or "", p.stderr or ""


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _first_line(*texts: str) -> str:
    for t in texts:
        for line in (t or "").splitlines():
            if line.strip():
                return line.strip()
    return ""


# --------------------------------------------------------------------------- CPU and memory


def parse_cpuinfo(text: str) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (x86 ``model name``; ARM ``Hardware``/``Model``)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if value and key not in found:
            found[key] = value
    for key in ("model name", "cpu model", "hardware", "model", "processor"):
        value = found.get(key, "")
        # "processor : 0" is an index on x86; only take it when it is a name.
        if value and not value.isdigit():
            return value
    return ""


def parse_meminfo(text: str) -> float | None:
    """``MemTotal`` from ``/proc/meminfo`` in GiB (the file gives kB)."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                kb = float(parts[1])
            except (IndexError, ValueError):
                return None
            unit = parts[2].lower() if len(parts) > 2 else "kb"
            factor = {"kb": 1024, "mb": 1024**2, "gb": GIB}.get(unit, 1024)
            return round(kb * factor / GIB, 2)
    return None


def _sysconf_memory_gb() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    if pages <= 0 or size <= 0:
        return None
    return round(pages * size / GIB, 2)


def _windows_memory_gb() -> float | None:
    try:
        import ctypes

        class MEMORYSTATUSEX(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        stat = MEMORYSTATUSEX()
        stat.dwLength = ctypes.sizeof(MEMORYSTATUSEX)
        if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(stat)):  # type: ignore[attr-defined]
            return None
        return round(stat.ullTotalPhys / GIB, 2)
    except Exception:
        return None


def _sysctl(run: Run, name: str) -> str:
    rc, out, _ = run(["sysctl", "-n", name], TOOL_TIMEOUT)
    return out.strip() if rc == 0 else ""


def _cpu_and_memory(
    os_name: str, run: Run, read_file: Callable[[str], str | None]
) -> tuple[str, float | None]:
    model = ""
    memory: float | None = None
    if os_name == "linux":
        model = parse_cpuinfo(read_file("/proc/cpuinfo") or "")
        memory = parse_meminfo(read_file("/proc/meminfo") or "")
        if memory is None:
            memory = _sysconf_memory_gb()
    elif os_name == "darwin":
        model = _sysctl(run, "machdep.cpu.brand_string")
        raw = _sysctl(run, "hw.memsize")
        try:
            memory = round(int(raw) / GIB, 2)
        except ValueError:
            memory = None
    elif os_name == "windows":
        model = platform.processor()
        memory = _windows_memory_gb()
    return model or platform.processor() or platform.machine(), memory


# --------------------------------------------------------------------------- CUDA and torch


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_nvidia_smi(text: str, *, with_compute_cap: bool = True) -> list[dict[str, Any]]:
    """Rows of ``nvidia-smi --query-gpu=index,name[,compute_cap],memory.total --format=csv,...``.

    Memory comes in MiB (``nounits``); ``[N/A]``/``[Not Supported]`` fields become None.
    """
    devices: list[dict[str, Any]] = []
    width = 4 if with_compute_cap else 3
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < width or not parts[0].isdigit():
            continue
        # A name may contain commas: index first, the last one or two fields fixed.
        index = int(parts[0])
        mem_mib = _num(parts[-1])
        if with_compute_cap:
            cc_raw = parts[-2]
            name = ",".join(parts[1:-2]).strip()
        else:
            cc_raw = ""
            name = ",".join(parts[1:-1]).strip()
        cc = cc_raw if _num(cc_raw) is not None else None
        devices.append(
            {
                "index": index,
                "name": name,
                "compute_capability": cc,
                "memory_gb": round(mem_mib / 1024, 2) if mem_mib is not None else None,
            }
        )
    return devices


def _nvidia_devices(run: Run) -> tuple[list[dict[str, Any]], str]:
    """CUDA devices from nvidia-smi, and a note for when there are none."""
    rc, out, err = run(list(NVIDIA_SMI_QUERY), TOOL_TIMEOUT)
    if rc == 127:
        return [], "nvidia-smi not found"
    if rc == 0:
        devices = parse_nvidia_smi(out)
        if devices:
            return devices, ""
    text = f"{out}\n{err}"
    if rc != 0 and ("compute_cap" in text or "not a valid field" in text.lower()):
        # Drivers before ~510 do not know the compute_cap field.
        rc, out, err = run(list(NVIDIA_SMI_QUERY_OLD), TOOL_TIMEOUT)
        if rc == 0:
            devices = parse_nvidia_smi(out, with_compute_cap=False)
            if devices:
                return devices, ""
    if rc == 0:
        return [], "nvidia-smi lists no GPU"
    if rc == 124:
        return [], "nvidia-smi timed out"
    return [], f"nvidia-smi failed: {_first_line(out, err) or f'exit {rc}'}"


def parse_probe(rc: int, stdout: str, stderr: str) -> tuple[str, dict[str, Any] | None]:
    """(python_version, torch) from the probe's output; torch None when it is not installed.

    A probe that crashed or timed out (``import torch`` segfaults on some broken CUDA
    installs) still yields a torch dict, with the reason in ``error``.
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "python_version" in data:
                torch = data.get("torch")
                return str(data.get("python_version") or ""), torch if isinstance(torch, dict) else None
    if rc == 124:
        why = "the torch probe timed out (import torch hung)"
    elif rc < 0:
        why = f"the torch probe crashed (signal {-rc}): {_first_line(stderr) or 'no message'}"
    else:
        tail = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        why = f"the torch probe failed (exit {rc}): {tail[-1] if tail else 'no output'}"
    return "", {
        "version": None,
        "cuda_available": False,
        "cuda_usable": False,
        "mps_available": False,
        "error": why,
    }


def _short_name(name: str) -> str:
    for prefix in ("NVIDIA ", "GeForce "):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name.strip() or "the GPU"


def _sm(cc: str | None) -> str | None:
    if not cc:
        return None
    major, _, minor = cc.partition(".")
    if not (major.isdigit() and (minor.isdigit() or minor == "")):
        return None
    return f"sm_{major}{minor or '0'}"


def _arch_supports(arch_list: list[str], cc: str) -> bool | None:
    """Whether a torch arch list (``sm_60``, ``compute_90``...) has code that runs on ``cc``.

    A cubin runs on its own major version at an equal or higher minor; PTX (``compute_XY``)
    is JIT-compiled for any equal or newer card. None when it cannot be told.
    """
    major_s, _, minor_s = cc.partition(".")
    if not arch_list or not major_s.isdigit():
        return None
    major, minor = int(major_s), int(minor_s or 0)
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        digits = digits.rstrip("afAF")  # sm_90a, sm_100f
        if not digits.isdigit() or len(digits) < 2:
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def _kernel_fix(cc: str | None) -> str:
    if cc:
        major_s, _, minor_s = cc.partition(".")
        if major_s.isdigit() and (int(major_s), int(minor_s or 0)) <= (7, 0):
            # Maxwell/Pascal/Volta kernels ship only in the cu126 wheels, the last in 2.14.
            return (
                "install a cu126 build (torch <= 2.14): pip install 'torch<=2.14' "
                "--index-url https://download.pytorch.org/whl/cu126"
            )
    return "install a torch build whose CUDA arch list includes this card"


def gpu_decision(
    devices: list[dict[str, Any]],
    torch: dict[str, Any] | None,
    *,
    no_device_note: str = "",
    torch_checked: bool = True,
) -> tuple[bool, str]:
    """(gpu, gpu_reason) from the CUDA devices found and what torch said about them."""
    if not devices:
        if torch and torch.get("cuda_usable"):
            return True, f"torch {torch.get('version')} runs on CUDA (nvidia-smi: {no_device_note or 'n/a'})"
        return False, f"no NVIDIA GPU ({no_device_note or 'none found'})"
    dev = devices[0]
    name = _short_name(str(dev.get("name") or ""))
    cc = dev.get("compute_capability")
    sm = _sm(cc)
    label = f"{name} ({sm})" if sm else name
    if len(devices) > 1:
        label += f" and {len(devices) - 1} more"
    if torch is None:
        if torch_checked:
            return True, f"{label}; torch is not installed in this interpreter, so nothing contradicts it"
        return True, f"{label}; torch not probed"
    version = torch.get("version")
    error = str(torch.get("error") or "")
    if version is None:
        return False, f"{label} present but torch cannot be used: {error or 'unknown error'}"
    if torch.get("cuda_usable"):
        return True, f"{label} works with torch {version}"
    warnings = " ".join(str(w) for w in torch.get("warnings") or [])
    if not torch.get("cuda_available"):
        if "+cpu" in str(version) or not torch.get("cuda_version"):
            return False, (
                f"{label} present but this torch {version} is a CPU-only build: install a CUDA build of torch"
            )
        why = error or warnings or "torch.cuda.is_available() is False"
        return False, f"{label} present but torch {version} cannot use CUDA: {why}"
    arch_list = [str(a) for a in torch.get("arch_list") or []]
    supported = _arch_supports(arch_list, cc) if cc else None
    no_kernels = "no kernel image" in f"{error} {warnings}".lower() or supported is False
    if no_kernels:
        who = f"{name} is {sm}" if sm else name
        return False, f"{who}; this torch {version} has no kernels for it: {_kernel_fix(cc)}"
    return False, f"{label}: torch {version} cannot run on it: {error or warnings or 'tensor op failed'}"


# --------------------------------------------------------------------------- macOS GPU


def parse_system_profiler(text: str) -> tuple[list[str], bool]:
    """(chipset names, Metal supported) from ``system_profiler SPDisplaysDataType``."""
    names: list[str] = []
    metal = False
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "chipset model" and value:
            names.append(value)
        elif (
            key in ("metal support", "metal", "metal family")
            and value
            and not value.lower().startswith(("not supported", "unsupported", "no"))
        ):
            metal = True
    return names, metal


# --------------------------------------------------------------------------- detect


def _os_name(system: str) -> str:
    s = system.lower()
    if s.startswith("darwin"):
        return "darwin"
    if s.startswith(("windows", "win32", "cygwin", "msys")):
        return "windows"
    return "linux" if s.startswith("linux") else s


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
    read_file: Callable[[str], str | None] = _read_text,
) -> Capabilities:
    """Detect this machine's capabilities for jobs run with the interpreter ``python``.

    ``system``/``machine``/``host``/``cpu_count``/``read_file`` default to the real machine
    and exist so tests can play any platform.
    """
    os_name = _os_name(system if system is not None else platform.system())
    arch = machine if machine is not None else platform.machine()
    python_abs = _resolve_python(python)

    argv = [python_abs, "-c", PROBE_PROGRAM] + ([] if probe_torch else ["--no-torch"])
    rc, out, err = run(argv, TORCH_PROBE_TIMEOUT)
    if rc in (126, 127):
        raise ConfigError(
            f"cannot run the python interpreter {python_abs}: {_first_line(err) or 'not found'}"
        )
    python_version, torch = parse_probe(rc, out, err)
    if not probe_torch:
        torch = None

    cpu_model, memory = _cpu_and_memory(os_name, run, read_file)

    mps = False
    mps_note = ""
    if os_name == "darwin":
        devices: list[dict[str, Any]] = []
        note = "macOS has no CUDA"
        if torch is not None:
            # torch is installed (maybe broken): it alone says whether MPS works.
            mps = bool(torch.get("mps_available")) and bool(torch.get("mps_usable", True))
            version = torch.get("version") or "(broken install)"
            if mps:
                mps_note = f"MPS works with torch {version}"
            else:
                mps_note = f"torch {version} cannot use MPS" + (
                    f": {torch['error']}" if torch.get("error") else ""
                )
        else:
            rc_sp, sp_out, _ = run(["system_profiler", "SPDisplaysDataType"], TOOL_TIMEOUT)
            names, metal = parse_system_profiler(sp_out if rc_sp == 0 else "")
            mps = metal and arch.lower() in ("arm64", "aarch64")
            gpu_name = names[0] if names else "GPU"
            if mps:
                mps_note = f"{gpu_name} supports Metal; torch not installed, so MPS is unchecked"
            elif metal:
                mps_note = f"{gpu_name} supports Metal but is not Apple silicon"
            else:
                mps_note = "no Metal GPU found"
    else:
        devices, note = _nvidia_devices(run)

    # Fill what old nvidia-smi could not tell from torch, or the device list when nvidia-smi is
    # missing from PATH but torch sees the cards.
    torch_devices = [d for d in (torch or {}).get("devices") or [] if isinstance(d, dict)]
    if devices:
        for d in devices:
            if d.get("compute_capability") is None:
                for td in torch_devices:
                    if td.get("index") == d["index"] and td.get("compute_capability"):
                        d["compute_capability"] = td["compute_capability"]
    elif torch_devices:
        devices = [
            {k: td.get(k) for k in ("index", "name", "compute_capability", "memory_gb")}
            for td in torch_devices
        ]

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


# --------------------------------------------------------------------------- decisions


def pick_device(caps: Capabilities) -> str:
    """``cuda`` when the GPU is usable, else ``mps`` on Apple silicon, else ``cpu``."""
    if caps.gpu:
        return "cuda"
    if caps.mps:
        return "mps"
    return "cpu"


_OS_ALIASES = {
    "linux": "linux",
    "darwin": "darwin",
    "macos": "darwin",
    "mac": "darwin",
    "osx": "darwin",
    "windows": "windows",
    "win": "windows",
    "win32": "windows",
}

# The OS reports a little less memory than is installed (the kernel and firmware keep some):
# a "16 GB" machine shows 15.5. A requirement is met within this fraction.
MEMORY_TOLERANCE = 0.05


def normalize_os(name: str) -> str | None:
    """``linux``, ``darwin`` (also ``macos``, ``mac``, ``osx``) or ``windows``; None if unknown."""
    return _OS_ALIASES.get(str(name).strip().lower())


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
