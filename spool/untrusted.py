"""Reading what the folder holds: regular files only, bounded, and text made safe once.

Everything in a spool folder was written by someone else: a user, a script, another machine's
runner, an attacker with write access to the share. Every reader (the CLI, the Python API, the
server, the report) reads folder files through this module, so one rule holds everywhere:

- `read_file` opens nothing but a regular file (a FIFO or a device would block a reader for
  ever) and refuses one over its limit before reading it (a 300 MB "job" costs nothing);
- `loads` parses JSON and replaces each lone surrogate (`"\\ud800"` is valid JSON but not
  text: it cannot be encoded as UTF-8, so printing, CSV, HTML and HTTP would all fail on it)
  by U+FFFD, in keys and values. The bytes on disk are never changed: the repair is made at
  read, in memory, for showing;
- `finite` turns NaN and the infinities into `None` where strict JSON is written (HTTP
  answers): JSON has no such numbers. DataFrames keep them as floats.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "NotRegular", "TooLarge", "read_file", "read_json", "open_regular",
    "loads", "safe_text", "clean", "finite",
]

#: a lone-surrogate escape (`\ud800`...`\udfff`) or the raw UTF-8-encoded form json also accepts
_SUSPECT = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHUNK = 1 << 16


class NotRegular(OSError):
    """The name is a FIFO, socket, device or folder: never read as a file."""

    def __init__(self, path: str | os.PathLike[str]):
        why = "not a regular file (a pipe, socket or device is never read)"
        super().__init__(errno.EINVAL, why, str(path))


class TooLarge(OSError):
    """The file is over the reader's limit; nothing of it was read."""

    def __init__(self, path: str | os.PathLike[str], size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(errno.EFBIG, f"file is {size} bytes; the limit is {limit}", str(path))


_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def read_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of a regular file, opened non-blocking and checked by `fstat` before any read.

    Raises `NotRegular`, `TooLarge` (both `OSError`s) or the `OSError` of the open/read. The
    open does not block on a FIFO (O_NONBLOCK), and the check is on the opened file itself, so
    a name swapped between a look and the open cannot slip a pipe through."""
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(path)
        if limit is not None and st.st_size > limit:
            raise TooLarge(path, st.st_size, limit)
        parts = []
        total = 0
        while True:
            want = max(_CHUNK, st.st_size + 1 - total)  # one read for the whole file, usually
            chunk = os.read(fd, want)
            parts.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:  # it grew while we read
                raise TooLarge(path, total, limit)
            if len(chunk) < want:  # a short read of a regular file is its end
                return b"".join(parts)
    finally:
        os.close(fd)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`open(path, "rb")` for a regular file only (`NotRegular` otherwise), never blocking on a
    FIFO: for readers that stream (logs), where `read_file` would hold a whole file."""
    fd = os.open(path, _FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def safe_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (a paired one was decoded already)."""
    return _SURROGATE.sub("\ufffd", text)


def clean(obj: Any) -> Any:
    """`obj` with every string (keys too) passed through `safe_text`."""
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {safe_text(k) if isinstance(k, str) else k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def loads(raw: bytes | str) -> Any:
    """`json.loads`, with lone surrogates made safe (see the module doc). Raises `ValueError`
    (and `RecursionError`) as `json.loads` does. The walk is made only when the bytes hold
    something that could decode to a surrogate, so ordinary files cost one regex search."""
    obj = json.loads(raw)
    probe = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return clean(obj) if _SUSPECT.search(probe) else obj


def finite(obj: Any) -> Any:
    """`obj` with NaN and +-Infinity (anywhere inside) replaced by None, for strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def read_json(path: str | os.PathLike[str] | Path, limit: int | None = None) -> Any:
    """`loads(read_file(path, limit))`: raises OSError or ValueError."""
    return loads(read_file(path, limit))
