"""NVIDIA and torch: what nvidia-smi lists, what torch in the job's interpreter can do, and the GPU rule."""

from __future__ import annotations

import json
from typing import Any

from runner.machine.hw import TOOL_TIMEOUT
from runner.machine.proc import Run, first_line

__all__ = [
    "NVIDIA_SMI_QUERY",
    "NVIDIA_SMI_QUERY_OLD",
    "TORCH_PROBE_TIMEOUT",
    "PROBE_PROGRAM",
    "parse_nvidia_smi",
    "nvidia_devices",
    "parse_probe",
    "gpu_decision",
]

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


def nvidia_devices(run: Run) -> tuple[list[dict[str, Any]], str]:
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
    return [], f"nvidia-smi failed: {first_line(out, err) or f'exit {rc}'}"


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
        why = f"the torch probe crashed (signal {-rc}): {first_line(stderr) or 'no message'}"
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
