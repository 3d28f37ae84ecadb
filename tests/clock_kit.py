"""A wall clock set wrong, for real runner processes: an LD_PRELOAD that shifts CLOCK_REALTIME,
gettimeofday and time by `HOUSESPOOL_WALL_SKEW` seconds (monotonic time, sleeps and file times
stay real). The same 20 lines as the reliability suite's clock-skew scenario builds; see there
why libfaketime cannot be used. `build(folder)` compiles it, or says why it cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

__all__ = ["build", "skewed"]

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long skew(void) { const char *s = getenv("HOUSESPOOL_WALL_SKEW"); return s ? atol(s) : 0; }

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += skew();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return rc;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"""


def build(folder: Path) -> tuple[Path | None, str]:
    """(the preload, "") or (None, why it cannot be had here)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler to build the wall-clock preload (Debian package gcc)"
    (folder / "skew.c").write_text(SHIM)
    so = folder / "skew.so"
    r = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(folder / "skew.c"), "-ldl"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return None, f"cannot build the wall-clock preload: {r.stderr.strip()[:300]}"
    probe = subprocess.run(
        ["python3", "-c", "import time; print(time.time())"],
        env={**os.environ, **skewed(so, 300)},
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or abs(float(probe.stdout or 0) - time.time() - 300) > 30:
        return None, f"the wall-clock preload does not take effect here: {probe.stderr.strip()[:300]}"
    return so, ""


def skewed(shim: Path, seconds: float) -> dict[str, str]:
    """The environment that runs a process `seconds` ahead (negative: behind) of the real clock."""
    return {"LD_PRELOAD": str(shim), "HOUSESPOOL_WALL_SKEW": str(int(seconds))}
