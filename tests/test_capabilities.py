"""Capabilities: every platform's decision driven by captured outputs, plus the real machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner.machine.capabilities import (
    NVIDIA_SMI_QUERY,
    NVIDIA_SMI_QUERY_OLD,
    PROBE_PROGRAM,
    Capabilities,
    detect,
    gpu_decision,
    meets,
    normalize_os,
    parse_cpuinfo,
    parse_meminfo,
    parse_nvidia_smi,
    parse_probe,
    parse_system_profiler,
    pick_device,
    subprocess_run_default,
)
from spool.errors import ConfigError

PYVER = ".".join(str(n) for n in sys.version_info[:3])

# --------------------------------------------------------------------------- captured outputs

CPUINFO_X86 = """\
processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 158
model name	: Intel(R) Core(TM) i7-7700 CPU @ 3.60GHz
stepping	: 9
cpu MHz		: 3600.000

processor	: 1
vendor_id	: GenuineIntel
model name	: Intel(R) Core(TM) i7-7700 CPU @ 3.60GHz
"""

CPUINFO_RPI = """\
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41

Hardware	: BCM2835
Revision	: c03111
Model		: Raspberry Pi 4 Model B Rev 1.1
"""

MEMINFO_16G = """\
MemTotal:       16318124 kB
MemFree:         9512320 kB
MemAvailable:   12875400 kB
Buffers:          412356 kB
"""

# nvidia-smi 535 on the old desktop: knows compute_cap.
SMI_GTX1060 = "0, NVIDIA GeForce GTX 1060 6GB, 6.1, 6144\n"
SMI_TWO = "0, NVIDIA GeForce RTX 3090, 8.6, 24576\n1, NVIDIA GeForce GTX 1080 Ti, 6.1, 11264\n"
# nvidia-smi 470 does not know the compute_cap field (exit 2) and names lack "NVIDIA ".
SMI_OLD_ERROR = 'Field "compute_cap" is not a valid field to query.\n\n'
SMI_OLD_GTX1060 = "0, GeForce GTX 1060 6GB, 6078\n"
SMI_NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n\n"
)
SMI_NO_DEVICES = "No devices were found\n"

NO_KERNEL = "RuntimeError: CUDA error: no kernel image is available for execution on the device"

# What the probe prints for torch 2.9.0+cu128 on a GTX 1060 (sm_61 kernels are not in cu128).
PROBE_GTX1060_CU128 = json.dumps(
    {
        "python_version": "3.12.3",
        "torch": {
            "version": "2.9.0+cu128",
            "cuda_available": True,
            "cuda_usable": False,
            "mps_available": False,
            "mps_usable": False,
            "error": NO_KERNEL,
            "cuda_version": "12.8",
            "arch_list": ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
            "devices": [
                {
                    "index": 0,
                    "name": "NVIDIA GeForce GTX 1060 6GB",
                    "compute_capability": "6.1",
                    "memory_gb": 5.93,
                    "usable": False,
                    "error": NO_KERNEL,
                }
            ],
            "warnings": [
                "NVIDIA GeForce GTX 1060 6GB with CUDA capability sm_61 is not compatible "
                "with the current PyTorch installation."
            ],
        },
    }
)

PROBE_GTX1060_CU126 = json.dumps(
    {
        "python_version": "3.12.3",
        "torch": {
            "version": "2.6.0+cu126",
            "cuda_available": True,
            "cuda_usable": True,
            "mps_available": False,
            "mps_usable": False,
            "error": None,
            "cuda_version": "12.6",
            "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
            "devices": [
                {
                    "index": 0,
                    "name": "NVIDIA GeForce GTX 1060 6GB",
                    "compute_capability": "6.1",
                    "memory_gb": 5.93,
                    "usable": True,
                    "error": None,
                }
            ],
            "warnings": [],
        },
    }
)

PROBE_CPU_TORCH = json.dumps(
    {
        "python_version": "3.11.9",
        "torch": {
            "version": "2.5.1+cpu",
            "cuda_available": False,
            "cuda_usable": False,
            "mps_available": False,
            "mps_usable": False,
            "error": None,
            "cuda_version": None,
            "arch_list": [],
            "devices": [],
            "warnings": [],
        },
    }
)

PROBE_OLD_DRIVER = json.dumps(
    {
        "python_version": "3.10.12",
        "torch": {
            "version": "2.9.0+cu128",
            "cuda_available": False,
            "cuda_usable": False,
            "mps_available": False,
            "mps_usable": False,
            "error": None,
            "cuda_version": "12.8",
            "arch_list": [],
            "devices": [],
            "warnings": [
                "CUDA initialization: The NVIDIA driver on your system is too old (found version 11040)."
            ],
        },
    }
)

PROBE_NO_TORCH = json.dumps({"python_version": "3.8.10", "torch": None})

PROBE_M1 = json.dumps(
    {
        "python_version": "3.12.2",
        "torch": {
            "version": "2.5.1",
            "cuda_available": False,
            "cuda_usable": False,
            "mps_available": True,
            "mps_usable": True,
            "error": None,
            "cuda_version": None,
            "arch_list": [],
            "devices": [],
            "warnings": [],
        },
    }
)

PROBE_INTEL_MAC = json.dumps(
    {
        "python_version": "3.11.5",
        "torch": {
            "version": "2.2.2",
            "cuda_available": False,
            "cuda_usable": False,
            "mps_available": False,
            "mps_usable": False,
            "error": None,
            "cuda_version": None,
            "arch_list": [],
            "devices": [],
            "warnings": [],
        },
    }
)

SYSTEM_PROFILER_M2 = """\
Graphics/Displays:

    Apple M2:

      Chipset Model: Apple M2
      Type: GPU
      Bus: Built-In
      Total Number of Cores: 10
      Vendor: Apple (0x106b)
      Metal Support: Metal 3
      Displays:
        Color LCD:
          Display Type: Built-in Liquid Retina Display
          Resolution: 2560 x 1664 Retina
          Main Display: Yes
"""

SYSTEM_PROFILER_INTEL = """\
Graphics/Displays:

    Intel Iris Plus Graphics 640:

      Chipset Model: Intel Iris Plus Graphics 640
      Type: GPU
      Bus: Built-In
      VRAM (Dynamic, Max): 1536 MB
      Vendor: Intel
      Device ID: 0x5926
      Revision ID: 0x0006
      Metal: Supported, feature set macOS GPUFamily2 v1
"""

SYSTEM_PROFILER_NO_METAL = """\
Graphics/Displays:

    NVIDIA GeForce 320M:

      Chipset Model: NVIDIA GeForce 320M
      Type: GPU
      Metal: Not Supported
"""


# --------------------------------------------------------------------------- fake machine


class FakeRun:
    """Answers ``run(argv, timeout)`` from a table keyed by the program (and first args)."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
        assert timeout > 0
        self.calls.append(argv)
        if len(argv) >= 3 and argv[1] == "-c":
            key = "probe"
        elif argv[0] == "nvidia-smi":
            key = "smi-old" if argv == NVIDIA_SMI_QUERY_OLD else "smi"
            assert argv in (NVIDIA_SMI_QUERY, NVIDIA_SMI_QUERY_OLD)
        else:
            key = " ".join(argv)
        return self.answers.get(key, (127, "", f"{argv[0]}: not found"))

    def ran(self, program: str) -> bool:
        return any(c[0] == program for c in self.calls)


def files(table: dict[str, str]):
    return lambda path: table.get(path)


LINUX_FILES = files({"/proc/cpuinfo": CPUINFO_X86, "/proc/meminfo": MEMINFO_16G})


def linux(answers: dict[str, tuple[int, str, str]], **kw: Any) -> tuple[Capabilities, FakeRun]:
    run = FakeRun(answers)
    caps = detect(
        "/opt/venvs/ml/bin/python",
        kw.pop("tags", ["gpu-box"]),
        run=run,
        system="Linux",
        machine="x86_64",
        host="desktop",
        cpu_count=8,
        read_file=LINUX_FILES,
        **kw,
    )
    return caps, run


def mac(answers: dict[str, tuple[int, str, str]], machine: str = "arm64") -> tuple[Capabilities, FakeRun]:
    run = FakeRun(answers)
    caps = detect(
        "/Users/me/venv/bin/python",
        [],
        run=run,
        system="Darwin",
        machine=machine,
        host="macbook",
        cpu_count=8,
        read_file=files({}),
    )
    return caps, run


# --------------------------------------------------------------------------- parsers


def test_parse_cpuinfo_x86_and_arm() -> None:
    assert parse_cpuinfo(CPUINFO_X86) == "Intel(R) Core(TM) i7-7700 CPU @ 3.60GHz"
    assert parse_cpuinfo(CPUINFO_RPI) == "BCM2835"
    assert parse_cpuinfo("") == ""
    assert parse_cpuinfo("processor\t: 0\n") == ""


def test_parse_meminfo() -> None:
    assert parse_meminfo(MEMINFO_16G) == pytest.approx(15.56, abs=0.01)
    assert parse_meminfo("MemFree: 1 kB\n") is None
    assert parse_meminfo("MemTotal: lots kB\n") is None


def test_parse_nvidia_smi() -> None:
    assert parse_nvidia_smi(SMI_GTX1060) == [
        {"index": 0, "name": "NVIDIA GeForce GTX 1060 6GB", "compute_capability": "6.1", "memory_gb": 6.0}
    ]
    two = parse_nvidia_smi(SMI_TWO)
    assert [d["compute_capability"] for d in two] == ["8.6", "6.1"]
    assert two[0]["memory_gb"] == 24.0
    assert parse_nvidia_smi(SMI_OLD_GTX1060, with_compute_cap=False) == [
        {"index": 0, "name": "GeForce GTX 1060 6GB", "compute_capability": None, "memory_gb": 5.94}
    ]
    assert parse_nvidia_smi("0, Tesla K80, [N/A], [N/A]\n")[0]["memory_gb"] is None
    assert parse_nvidia_smi(SMI_NO_DEVICES) == []
    assert parse_nvidia_smi(SMI_OLD_ERROR) == []


def test_parse_probe_variants() -> None:
    assert parse_probe(0, PROBE_NO_TORCH, "") == ("3.8.10", None)
    version, torch = parse_probe(0, "some noise from a sitecustomize\n" + PROBE_M1 + "\n", "")
    assert version == "3.12.2" and torch and torch["mps_available"]
    _, crashed = parse_probe(-11, "", "Segmentation fault\n")
    assert crashed and crashed["version"] is None and "signal 11" in crashed["error"]
    _, hung = parse_probe(124, "", "timed out")
    assert hung and "timed out" in hung["error"]
    _, broken = parse_probe(1, "", "Traceback...\nSyntaxError: invalid syntax\n")
    assert broken and broken["error"].endswith("SyntaxError: invalid syntax")


def test_parse_system_profiler() -> None:
    assert parse_system_profiler(SYSTEM_PROFILER_M2) == (["Apple M2"], True)
    assert parse_system_profiler(SYSTEM_PROFILER_INTEL) == (["Intel Iris Plus Graphics 640"], True)
    assert parse_system_profiler(SYSTEM_PROFILER_NO_METAL) == (["NVIDIA GeForce 320M"], False)
    assert parse_system_profiler("") == ([], False)


# --------------------------------------------------------------------------- Linux + CUDA


def test_gtx1060_with_cu128_torch_is_not_a_gpu_and_says_why() -> None:
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_GTX1060_CU128, "")})
    assert caps.gpu is False
    assert caps.gpu_reason.startswith("GTX 1060 6GB is sm_61; this torch 2.9.0+cu128 has no kernels for it")
    assert "install a cu126 build (torch <= 2.14)" in caps.gpu_reason
    assert "download.pytorch.org/whl/cu126" in caps.gpu_reason
    assert caps.cuda_devices[0]["compute_capability"] == "6.1"
    assert caps.torch and caps.torch["cuda_usable"] is False
    assert pick_device(caps) == "cpu"
    assert caps.os == "linux" and caps.cpu_model.startswith("Intel(R) Core(TM) i7-7700")
    assert caps.memory_gb == pytest.approx(15.56, abs=0.01)
    assert caps.python == "/opt/venvs/ml/bin/python" and caps.python_version == "3.12.3"


def test_no_kernel_found_from_arch_list_even_without_the_error_text() -> None:
    probe = json.loads(PROBE_GTX1060_CU128)
    probe["torch"]["error"] = "RuntimeError: CUDA error: unspecified launch failure"
    probe["torch"]["warnings"] = []
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, json.dumps(probe), "")})
    assert not caps.gpu and "has no kernels for it" in caps.gpu_reason


def test_gtx1060_with_cu126_torch_is_a_gpu() -> None:
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_GTX1060_CU126, "")})
    assert caps.gpu is True
    assert caps.gpu_reason == "GTX 1060 6GB (sm_61) works with torch 2.6.0+cu126"
    assert pick_device(caps) == "cuda" and caps.to_dict()["device"] == "cuda"


def test_gpu_without_torch_in_that_interpreter_is_trusted() -> None:
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_NO_TORCH, "")})
    assert caps.gpu is True and caps.torch is None
    assert "torch is not installed" in caps.gpu_reason
    assert caps.python_version == "3.8.10"


def test_probe_torch_false_skips_torch_and_trusts_the_card() -> None:
    # Even if the interpreter has a broken torch, probe_torch=False does not look at it.
    caps, run = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_NO_TORCH, "")}, probe_torch=False)
    assert caps.gpu is True and caps.torch is None
    assert caps.gpu_reason == "GTX 1060 6GB (sm_61); torch not probed"
    probe_call = next(c for c in run.calls if len(c) > 1 and c[1] == "-c")
    assert probe_call[-1] == "--no-torch"


def test_old_nvidia_smi_falls_back_and_takes_compute_cap_from_torch() -> None:
    caps, run = linux(
        {
            "smi": (2, SMI_OLD_ERROR, ""),
            "smi-old": (0, SMI_OLD_GTX1060, ""),
            "probe": (0, PROBE_GTX1060_CU128, ""),
        }
    )
    assert [c for c in run.calls if c[0] == "nvidia-smi"] == [NVIDIA_SMI_QUERY, NVIDIA_SMI_QUERY_OLD]
    assert caps.cuda_devices == [
        {"index": 0, "name": "GeForce GTX 1060 6GB", "compute_capability": "6.1", "memory_gb": 5.94}
    ]
    assert not caps.gpu and caps.gpu_reason.startswith("GTX 1060 6GB is sm_61;")


def test_old_nvidia_smi_without_torch_still_a_gpu() -> None:
    caps, _ = linux(
        {"smi": (2, SMI_OLD_ERROR, ""), "smi-old": (0, SMI_OLD_GTX1060, ""), "probe": (0, PROBE_NO_TORCH, "")}
    )
    assert caps.gpu and caps.cuda_devices[0]["compute_capability"] is None
    assert caps.gpu_reason.startswith("GTX 1060 6GB; torch is not installed")


def test_cpu_only_torch_on_a_gpu_machine() -> None:
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_CPU_TORCH, "")})
    assert not caps.gpu
    assert caps.gpu_reason == (
        "GTX 1060 6GB (sm_61) present but this torch 2.5.1+cpu is a CPU-only build: "
        "install a CUDA build of torch"
    )


def test_driver_too_old_for_torch() -> None:
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_OLD_DRIVER, "")})
    assert not caps.gpu
    assert "cannot use CUDA" in caps.gpu_reason and "driver on your system is too old" in caps.gpu_reason


def test_torch_that_fails_to_import() -> None:
    probe = {
        "python_version": "3.10.12",
        "torch": {
            "version": None,
            "cuda_available": False,
            "cuda_usable": False,
            "mps_available": False,
            "error": "import torch failed: OSError: libcudnn.so.9: cannot open shared object file",
        },
    }
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, json.dumps(probe), "")})
    assert not caps.gpu
    assert caps.gpu_reason == (
        "GTX 1060 6GB (sm_61) present but torch cannot be used: "
        "import torch failed: OSError: libcudnn.so.9: cannot open shared object file"
    )


def test_probe_segfault_means_no_gpu_with_reason() -> None:
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (-11, "", "Segmentation fault (core dumped)")})
    assert not caps.gpu and "crashed (signal 11)" in caps.gpu_reason
    assert caps.python_version == ""


def test_other_cuda_failure_is_reported_verbatim() -> None:
    probe = json.loads(PROBE_GTX1060_CU126)
    probe["torch"]["cuda_usable"] = False
    probe["torch"]["error"] = "RuntimeError: CUDA error: out of memory"
    caps, _ = linux({"smi": (0, SMI_GTX1060, ""), "probe": (0, json.dumps(probe), "")})
    assert not caps.gpu
    assert caps.gpu_reason == (
        "GTX 1060 6GB (sm_61): torch 2.6.0+cu126 cannot run on it: RuntimeError: CUDA error: out of memory"
    )


def test_two_cards() -> None:
    probe = json.loads(PROBE_GTX1060_CU126)
    caps, _ = linux({"smi": (0, SMI_TWO, ""), "probe": (0, json.dumps(probe), "")})
    assert caps.gpu and len(caps.cuda_devices) == 2
    assert caps.gpu_reason.startswith("RTX 3090 (sm_86) and 1 more works with torch")


@pytest.mark.parametrize(
    "smi, reason",
    [
        ((127, "", "nvidia-smi: not found"), "no NVIDIA GPU (nvidia-smi not found)"),
        ((9, SMI_NO_DRIVER, ""), "no NVIDIA GPU (nvidia-smi failed: NVIDIA-SMI has failed because"),
        ((6, SMI_NO_DEVICES, ""), "no NVIDIA GPU (nvidia-smi failed: No devices were found)"),
        ((0, "", ""), "no NVIDIA GPU (nvidia-smi lists no GPU)"),
        ((124, "", "timed out"), "no NVIDIA GPU (nvidia-smi timed out)"),
    ],
)
def test_no_gpu_at_all(smi: tuple[int, str, str], reason: str) -> None:
    caps, _ = linux({"smi": smi, "probe": (0, PROBE_CPU_TORCH, "")})
    assert caps.gpu is False and caps.mps is False
    assert caps.gpu_reason.startswith(reason)
    assert caps.cuda_devices == []
    assert pick_device(caps) == "cpu"


def test_nvidia_smi_missing_but_torch_sees_the_card() -> None:
    caps, _ = linux({"probe": (0, PROBE_GTX1060_CU126, "")})
    assert caps.gpu and caps.cuda_devices[0]["name"] == "NVIDIA GeForce GTX 1060 6GB"


def test_missing_interpreter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot run the python interpreter"):
        linux({"probe": (127, "", "/opt/venvs/ml/bin/python: not found")})


def test_linux_memory_falls_back_to_sysconf_without_proc() -> None:
    run = FakeRun({"probe": (0, PROBE_NO_TORCH, "")})
    caps = detect("/usr/bin/python3", [], run=run, system="Linux", read_file=files({}))
    assert caps.memory_gb > 0


# --------------------------------------------------------------------------- macOS


def test_m1_with_torch_mps() -> None:
    caps, run = mac(
        {
            "probe": (0, PROBE_M1, ""),
            "sysctl -n machdep.cpu.brand_string": (0, "Apple M1\n", ""),
            "sysctl -n hw.memsize": (0, "17179869184\n", ""),
        }
    )
    assert caps.os == "darwin" and caps.arch == "arm64"
    assert caps.cpu_model == "Apple M1" and caps.memory_gb == 16.0
    assert caps.gpu is False and caps.mps is True
    assert caps.gpu_reason == "no NVIDIA GPU (macOS has no CUDA); MPS works with torch 2.5.1"
    assert pick_device(caps) == "mps" and caps.to_dict()["device"] == "mps"
    assert not run.ran("nvidia-smi") and not run.ran("system_profiler")


def test_m2_without_torch_uses_system_profiler() -> None:
    caps, run = mac(
        {
            "probe": (0, PROBE_NO_TORCH, ""),
            "sysctl -n machdep.cpu.brand_string": (0, "Apple M2\n", ""),
            "sysctl -n hw.memsize": (0, "8589934592\n", ""),
            "system_profiler SPDisplaysDataType": (0, SYSTEM_PROFILER_M2, ""),
        }
    )
    assert run.ran("system_profiler")
    assert caps.mps is True and caps.memory_gb == 8.0
    assert "Apple M2 supports Metal; torch not installed" in caps.gpu_reason
    assert pick_device(caps) == "mps"


def test_old_intel_macbook() -> None:
    caps, _ = mac(
        {
            "probe": (0, PROBE_INTEL_MAC, ""),
            "sysctl -n machdep.cpu.brand_string": (0, "Intel(R) Core(TM) i5-7360U CPU @ 2.30GHz\n", ""),
            "sysctl -n hw.memsize": (0, "8589934592\n", ""),
        },
        machine="x86_64",
    )
    assert caps.mps is False and caps.gpu is False
    assert caps.gpu_reason.endswith("torch 2.2.2 cannot use MPS")
    assert pick_device(caps) == "cpu"


def test_old_intel_macbook_without_torch() -> None:
    caps, _ = mac(
        {
            "probe": (0, PROBE_NO_TORCH, ""),
            "system_profiler SPDisplaysDataType": (0, SYSTEM_PROFILER_INTEL, ""),
        },
        machine="x86_64",
    )
    assert caps.mps is False
    assert "supports Metal but is not Apple silicon" in caps.gpu_reason
    # sysctl missing: the model falls back to something, memory to 0.
    assert caps.memory_gb == 0.0


def test_mac_without_metal() -> None:
    caps, _ = mac(
        {
            "probe": (0, PROBE_NO_TORCH, ""),
            "system_profiler SPDisplaysDataType": (0, SYSTEM_PROFILER_NO_METAL, ""),
        },
        machine="x86_64",
    )
    assert caps.mps is False and caps.gpu_reason.endswith("no Metal GPU found")


def test_mps_available_but_op_fails() -> None:
    probe = json.loads(PROBE_M1)
    probe["torch"]["mps_usable"] = False
    probe["torch"]["error"] = "mps: RuntimeError: MPS backend out of memory"
    caps, _ = mac({"probe": (0, json.dumps(probe), "")})
    assert caps.mps is False
    assert caps.gpu_reason.endswith(
        "torch 2.5.1 cannot use MPS: mps: RuntimeError: MPS backend out of memory"
    )


# --------------------------------------------------------------------------- Windows


def test_windows_gtx1060() -> None:
    run = FakeRun({"smi": (0, SMI_GTX1060, ""), "probe": (0, PROBE_GTX1060_CU126, "")})
    caps = detect(
        "C:\\venv\\Scripts\\python.exe", ["win"], run=run, system="Windows", machine="AMD64", cpu_count=4
    )
    assert caps.os == "windows" and caps.gpu and pick_device(caps) == "cuda"
    assert caps.tags == ["win"]


# --------------------------------------------------------------------------- gpu_decision directly


def test_gpu_decision_unknown_compute_capability_with_no_kernel_error() -> None:
    devices = [{"index": 0, "name": "NVIDIA GeForce GTX 1060 6GB", "compute_capability": None}]
    torch = json.loads(PROBE_GTX1060_CU128)["torch"]
    gpu, reason = gpu_decision(devices, torch)
    assert not gpu and reason.startswith("GTX 1060 6GB; this torch 2.9.0+cu128 has no kernels for it")
    # Without a compute capability the fix cannot name the wheel.
    assert "arch list includes this card" in reason


def test_gpu_decision_newer_card_without_kernels_gets_generic_fix() -> None:
    devices = [{"index": 0, "name": "NVIDIA GeForce RTX 5090", "compute_capability": "12.0"}]
    torch = {
        "version": "2.6.0+cu124",
        "cuda_available": True,
        "cuda_usable": False,
        "error": NO_KERNEL,
        "cuda_version": "12.4",
        "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
    }
    gpu, reason = gpu_decision(devices, torch)
    assert not gpu and reason.startswith("RTX 5090 is sm_120; this torch 2.6.0+cu124 has no kernels")
    assert "arch list includes this card" in reason


def test_gpu_decision_ptx_covers_newer_card() -> None:
    devices = [{"index": 0, "name": "NVIDIA H200", "compute_capability": "9.0"}]
    torch = {
        "version": "2.1.0+cu121",
        "cuda_available": True,
        "cuda_usable": False,
        "error": "RuntimeError: CUDA error: an illegal memory access was encountered",
        "cuda_version": "12.1",
        "arch_list": ["sm_80", "compute_80"],
    }
    gpu, reason = gpu_decision(devices, torch)
    assert not gpu and "cannot run on it: RuntimeError: CUDA error: an illegal memory access" in reason


# --------------------------------------------------------------------------- pick_device and meets


def make_caps(**kw: Any) -> Capabilities:
    base: dict[str, Any] = dict(
        host="h",
        os="linux",
        arch="x86_64",
        cpu_count=4,
        cpu_model="cpu",
        memory_gb=15.56,
        gpu=False,
        gpu_reason="no NVIDIA GPU (nvidia-smi not found)",
        tags=["big", "fast"],
    )
    base.update(kw)
    return Capabilities(**base)


def test_pick_device_prefers_cuda_then_mps() -> None:
    assert pick_device(make_caps(gpu=True, mps=True)) == "cuda"
    assert pick_device(make_caps(mps=True)) == "mps"
    assert pick_device(make_caps()) == "cpu"


def test_to_dict_is_json_ready() -> None:
    d = make_caps().to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["device"] == "cpu" and d["memory_gb"] == 15.56 and d["cuda_devices"] == []


@pytest.mark.parametrize("requires", [None, {}, {"gpu": False}, {"gpu": None, "tags": []}])
def test_meets_nothing_asked(requires: Any) -> None:
    assert meets(requires, make_caps()) == (True, "")


def test_meets_gpu() -> None:
    assert meets({"gpu": True}, make_caps(gpu=True)) == (True, "")
    ok, reason = meets({"gpu": True}, make_caps())
    assert not ok and reason == "needs a GPU; no NVIDIA GPU (nvidia-smi not found)"
    # MPS is not a CUDA GPU.
    assert meets({"gpu": True}, make_caps(mps=True))[0] is False


def test_meets_memory() -> None:
    assert meets({"min_memory_gb": 8}, make_caps()) == (True, "")
    # A "16 GB" machine reports 15.56: within the tolerance.
    assert meets({"min_memory_gb": 16}, make_caps()) == (True, "")
    assert meets({"min_memory_gb": 32}, make_caps()) == (
        False,
        "needs 32 GB memory; this machine has 15.56 GB",
    )
    assert meets({"min_memory_gb": "lots"}, make_caps()) == (False, "min_memory_gb 'lots' is not a number")


def test_meets_tags() -> None:
    assert meets({"tags": ["big"]}, make_caps()) == (True, "")
    assert meets({"tags": "fast"}, make_caps()) == (True, "")
    assert meets({"tags": ["big", "cuda12", "nvme"]}, make_caps()) == (
        False,
        "needs tags cuda12, nvme; this runner has big, fast",
    )
    assert meets({"tags": ["x"]}, make_caps(tags=[])) == (False, "needs tags x; this runner has none")


@pytest.mark.parametrize(
    "want, have, ok",
    [
        ("linux", "linux", True),
        ("Linux", "linux", True),
        ("darwin", "darwin", True),
        ("macos", "darwin", True),
        ("macOS", "darwin", True),
        ("windows", "windows", True),
        ("macos", "linux", False),
        (["linux", "macos"], "darwin", True),
        (["linux", "macos"], "windows", False),
    ],
)
def test_meets_os(want: Any, have: str, ok: bool) -> None:
    result, reason = meets({"os": want}, make_caps(os=have))
    assert result is ok
    if not ok:
        assert reason.startswith("needs os ") and reason.endswith(f"this machine is {have}")


def test_meets_os_reason_and_unknown_os() -> None:
    assert meets({"os": "macos"}, make_caps()) == (False, "needs os macos; this machine is linux")
    assert meets({"os": "solaris"}, make_caps()) == (
        False,
        "unknown os 'solaris' (use linux, darwin/macos or windows)",
    )
    assert normalize_os("MacOS") == "darwin" and normalize_os("beos") is None


def test_meets_unknown_key_and_several_reasons() -> None:
    assert meets({"fpga": True}, make_caps()) == (False, "unknown requirement 'fpga'")
    ok, reason = meets({"gpu": True, "min_memory_gb": 64, "os": "windows"}, make_caps())
    assert not ok
    assert reason.split("; ")[0] == "needs a GPU"
    assert "needs 64 GB memory" in reason and "needs os windows" in reason


def test_meets_accepts_a_model_object() -> None:
    class Requires:
        def model_dump(self, exclude_none: bool = False) -> dict[str, Any]:
            return {"gpu": True}

    assert meets(Requires(), make_caps(gpu=True)) == (True, "")
    assert meets(Requires(), make_caps())[0] is False


# --------------------------------------------------------------------------- the real probe program


def write_fake_torch(root: Path, body: str) -> Path:
    pkg = root / "torch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    return root


def run_probe(pythonpath: Path | None, *extra: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    p = subprocess.run(
        [sys.executable, "-c", PROBE_PROGRAM, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return p.returncode, p.stdout, p.stderr


FAKE_TORCH_NO_KERNEL = """
import warnings
__version__ = "2.9.0+cu128"
class version:
    cuda = "12.8"
class _Props:
    total_memory = 6367739904
class cuda:
    @staticmethod
    def is_available():
        warnings.warn("NVIDIA GeForce GTX 1060 6GB with CUDA capability sm_61 is not compatible "
                      "with the current PyTorch installation.")
        return True
    @staticmethod
    def get_arch_list():
        return ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
    @staticmethod
    def device_count():
        return 1
    @staticmethod
    def get_device_name(i):
        return "NVIDIA GeForce GTX 1060 6GB"
    @staticmethod
    def get_device_capability(i):
        return (6, 1)
    @staticmethod
    def get_device_properties(i):
        return _Props()
class backends:
    class mps:
        @staticmethod
        def is_available():
            return False
def ones(n, device="cpu"):
    if device.startswith("cuda"):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device\\n"
                           "CUDA kernel errors might be asynchronously reported")
    raise AssertionError(device)
"""

FAKE_TORCH_MPS = """
__version__ = "2.5.1"
class version:
    cuda = None
class cuda:
    @staticmethod
    def is_available():
        return False
class backends:
    class mps:
        @staticmethod
        def is_available():
            return True
class _T:
    def __mul__(self, k):
        return self
    def sum(self):
        return self
    def item(self):
        return 8.0
def ones(n, device="cpu"):
    assert device == "mps"
    return _T()
"""

FAKE_TORCH_BROKEN = """
raise OSError("libcudnn.so.9: cannot open shared object file: No such file or directory")
"""


def test_probe_program_reports_no_kernel_image(tmp_path: Path) -> None:
    rc, out, err = run_probe(write_fake_torch(tmp_path, FAKE_TORCH_NO_KERNEL))
    assert rc == 0, err
    version, torch = parse_probe(rc, out, err)
    assert version == PYVER
    assert torch is not None
    assert torch["version"] == "2.9.0+cu128" and torch["cuda_available"] and not torch["cuda_usable"]
    assert "no kernel image is available" in torch["error"]
    assert torch["devices"][0]["compute_capability"] == "6.1"
    assert torch["devices"][0]["memory_gb"] == pytest.approx(5.93, abs=0.01)
    assert "sm_61 is not compatible" in torch["warnings"][0]
    gpu, reason = gpu_decision(parse_nvidia_smi(SMI_GTX1060), torch)
    assert not gpu and reason.startswith("GTX 1060 6GB is sm_61; this torch 2.9.0+cu128 has no kernels")


def test_probe_program_reports_mps(tmp_path: Path) -> None:
    rc, out, err = run_probe(write_fake_torch(tmp_path, FAKE_TORCH_MPS))
    _, torch = parse_probe(rc, out, err)
    assert torch and torch["mps_available"] and torch["mps_usable"] and torch["error"] is None


def test_probe_program_reports_broken_torch(tmp_path: Path) -> None:
    rc, out, err = run_probe(write_fake_torch(tmp_path, FAKE_TORCH_BROKEN))
    _, torch = parse_probe(rc, out, err)
    assert torch and torch["version"] is None
    assert torch["error"] == (
        "import torch failed: OSError: libcudnn.so.9: cannot open shared object file: "
        "No such file or directory"
    )


def test_probe_program_torch_missing_a_dependency_is_broken_not_absent(tmp_path: Path) -> None:
    root = write_fake_torch(tmp_path, "import typing_extensions_not_installed_x\n")
    rc, out, err = run_probe(root)
    _, torch = parse_probe(rc, out, err)
    assert torch and torch["version"] is None
    assert "No module named 'typing_extensions_not_installed_x'" in torch["error"]


def test_probe_program_without_torch() -> None:
    # -S drops site-packages, so torch cannot be imported: like a venv without torch.
    p = subprocess.run(
        [sys.executable, "-S", "-c", PROBE_PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert parse_probe(p.returncode, p.stdout, p.stderr) == (PYVER, None)


def test_probe_program_no_torch_flag() -> None:
    rc, out, err = run_probe(None, "--no-torch")
    assert parse_probe(rc, out, err)[1] is None


# --------------------------------------------------------------------------- the real runner of programs


def test_subprocess_run_default() -> None:
    rc, out, err = subprocess_run_default([sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"], 30)
    assert (rc, out.strip()) == (3, "hi")
    rc, out, err = subprocess_run_default(["definitely-not-a-program-7f3a"], 5)
    assert rc == 127 and "not found" in err
    rc, out, err = subprocess_run_default([sys.executable, "-c", "import time; time.sleep(30)"], 0.5)
    assert rc == 124 and "timed out" in err
    # Arguments are never interpreted by a shell.
    rc, out, _ = subprocess_run_default(
        [sys.executable, "-c", "import sys; print(sys.argv[1])", "$HOME;ls"], 30
    )
    assert out.strip() == "$HOME;ls"


# --------------------------------------------------------------------------- this machine


def test_detect_on_this_machine() -> None:
    caps = detect(sys.executable, [])
    assert caps.cpu_count > 0 and caps.memory_gb > 0
    assert caps.os in ("linux", "darwin", "windows")
    assert os.path.isabs(caps.python)
    assert caps.python_version == PYVER
    assert caps.tags == []
    if not caps.cuda_devices:
        assert caps.gpu is False and caps.gpu_reason.startswith("no NVIDIA GPU")
    assert caps.torch is not None and caps.torch["version"].startswith("2.")
    if caps.gpu is False:
        assert caps.torch["cuda_usable"] is False
    if not caps.cuda_devices:
        assert caps.torch["cuda_available"] is False
    assert pick_device(caps) in ("cpu", "mps")
    json.dumps(caps.to_dict())


def test_detect_on_this_machine_without_torch_probe() -> None:
    caps = detect(sys.executable, ["a"], probe_torch=False)
    assert caps.torch is None and caps.tags == ["a"] and caps.cpu_count > 0


def test_detect_resolves_a_bare_interpreter_name() -> None:
    name = os.path.basename(sys.executable)
    run = FakeRun({"probe": (0, PROBE_NO_TORCH, "")})
    caps = detect(name, [], run=run, system="Linux", read_file=LINUX_FILES)
    assert os.path.isabs(caps.python)
