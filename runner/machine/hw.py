"""CPU, memory, OS and display readings with their pure parsers, kept apart from the decisions."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

from runner.machine.proc import Run

__all__ = [
    "GIB",
    "TOOL_TIMEOUT",
    "read_text",
    "parse_cpuinfo",
    "parse_meminfo",
    "cpu_and_memory",
    "parse_system_profiler",
    "os_from_system",
    "normalize_os",
]

GIB = 1024**3
TOOL_TIMEOUT = 15.0


def read_text(path: str) -> str | None:
    """The text of ``path`` (``/proc/cpuinfo``...), or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


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


def cpu_and_memory(
    os_name: str, run: Run, read_file: Callable[[str], str | None]
) -> tuple[str, float | None]:
    """(CPU model, memory in GiB or None) of this machine, read the way ``os_name`` allows."""
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


# --------------------------------------------------------------------------- OS names


def os_from_system(system: str) -> str:
    """``platform.system()`` as ``linux``, ``darwin`` or ``windows`` (anything else lowercased)."""
    s = system.lower()
    if s.startswith("darwin"):
        return "darwin"
    if s.startswith(("windows", "win32", "cygwin", "msys")):
        return "windows"
    return "linux" if s.startswith("linux") else s


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


def normalize_os(name: str) -> str | None:
    """``linux``, ``darwin`` (also ``macos``, ``mac``, ``osx``) or ``windows``; None if unknown."""
    return _OS_ALIASES.get(str(name).strip().lower())
