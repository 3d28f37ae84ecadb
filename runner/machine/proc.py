"""The one seam through which runner modules run system programs, so every caller can be tested."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

__all__ = ["Run", "subprocess_run_default", "first_line"]

Run = Callable[[list[str], float], tuple[int, str, str]]
"""``run(argv, timeout) -> (returncode, stdout, stderr)``; 127 = missing, 124 = timed out."""


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


def first_line(*texts: str) -> str:
    """The first non-blank line of the first text that has one, stripped; "" if none."""
    for t in texts:
        for line in (t or "").splitlines():
            if line.strip():
                return line.strip()
    return ""
