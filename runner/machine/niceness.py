"""Lower I/O priority for job processes (the disk half of `--nice`).

``os.setpriority`` is CPU only. On Linux the I/O scheduler's priority is set with the
``ioprio_set`` system call, which Python does not wrap: it is called here through ctypes by
number. Elsewhere (macOS, Windows, an architecture not listed, a kernel or seccomp filter
that refuses the call) nothing happens, silently: a lower I/O priority is a courtesy, never a
reason to fail a job.

The class chosen is best-effort at its lowest level (``ionice -c 2 -n 7``), not the idle
class (``-c 3``): an idle-class job can be starved for minutes behind a busy desktop, and
holding a filesystem lock while starved it can stall the very user it means to spare. The
kernel already derives a best-effort level from the CPU niceness (``(nice + 20) // 5``); this
pins the lowest one. It applies to the whole process group (the job and anything it has
started), and children inherit it.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable

__all__ = [
    "IOPRIO_CLASS_BE",
    "IOPRIO_CLASS_IDLE",
    "IOPRIO_WHO_PROCESS",
    "IOPRIO_WHO_PGRP",
    "ioprio_value",
    "syscall_numbers",
    "lower_io_priority",
    "get_io_priority",
]

IOPRIO_CLASS_SHIFT = 13
IOPRIO_CLASS_BE = 2
IOPRIO_CLASS_IDLE = 3
IOPRIO_WHO_PROCESS = 1
IOPRIO_WHO_PGRP = 2
LOWEST_BE_LEVEL = 7

#: (ioprio_set, ioprio_get) by ``platform.machine()``.
_SYSCALLS: dict[str, tuple[int, int]] = {
    "x86_64": (251, 252),
    "amd64": (251, 252),
    "i386": (289, 290),
    "i486": (289, 290),
    "i586": (289, 290),
    "i686": (289, 290),
    "aarch64": (30, 31),
    "arm64": (30, 31),
    "riscv64": (30, 31),
    "loongarch64": (30, 31),
    "armv7l": (314, 315),
    "armv6l": (314, 315),
    "ppc64le": (273, 274),
    "ppc64": (273, 274),
    "s390x": (282, 283),
}

Syscall = Callable[[int, int, int, int], int]
"""``syscall(number, which, who, ioprio) -> int`` (-1 on error), like libc's ``syscall``."""


def ioprio_value(klass: int, level: int) -> int:
    return (klass << IOPRIO_CLASS_SHIFT) | (level & 0xFF)


def syscall_numbers(machine: str | None = None) -> tuple[int, int] | None:
    """(ioprio_set, ioprio_get) for this architecture, or None when unknown."""
    return _SYSCALLS.get((machine if machine is not None else platform.machine()).lower())


def _libc_syscall() -> Syscall | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long

    def call(number: int, which: int, who: int, prio: int) -> int:
        return int(fn(ctypes.c_long(number), ctypes.c_int(which), ctypes.c_int(who), ctypes.c_int(prio)))

    return call


def lower_io_priority(
    pid: int,
    *,
    group: bool = True,
    system: str | None = None,
    machine: str | None = None,
    syscall: Syscall | None = None,
) -> bool:
    """Put ``pid``'s process group (or just ``pid``) in the lowest best-effort I/O class.

    True when the call succeeded; False (and nothing else) where it is not available.
    """
    if (system if system is not None else platform.system()).lower() != "linux":
        return False
    numbers = syscall_numbers(machine)
    if numbers is None:
        return False
    call = syscall if syscall is not None else _libc_syscall()
    if call is None:
        return False
    which = IOPRIO_WHO_PGRP if group else IOPRIO_WHO_PROCESS
    try:
        return call(numbers[0], which, pid, ioprio_value(IOPRIO_CLASS_BE, LOWEST_BE_LEVEL)) == 0
    except Exception:  # a foreign libc, a seccomp filter killing the call: skip, never fail a job
        return False


def get_io_priority(pid: int, *, machine: str | None = None) -> tuple[int, int] | None:
    """(class, level) of ``pid`` on Linux, None where it cannot be read (for tests and doctor)."""
    if platform.system().lower() != "linux":
        return None
    numbers = syscall_numbers(machine)
    call = _libc_syscall()
    if numbers is None or call is None:
        return None
    value = call(numbers[1], IOPRIO_WHO_PROCESS, pid, 0)
    if value < 0:
        return None
    return value >> IOPRIO_CLASS_SHIFT, value & 0xFF
