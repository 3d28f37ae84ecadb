"""The spool's store of diffs: `diffs/<sha256>.patch`, one file per distinct diff, written once.

Content-addressed and git-free: `spool.gitinfo` makes the diffs, the runner's rev cache and
`spool rerun` read them back by their sha256.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from spool.errors import StorageError

__all__ = ["store_patch", "patch_path", "patch_files", "DIFFS_DIR", "SHA256_RE"]

DIFFS_DIR = "diffs"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def patch_files(patch: bytes) -> list[str]:
    """The paths a git patch touches (from its `diff --git a/X b/X` lines)."""
    files = []
    for line in patch.split(b"\n"):
        if line.startswith(b"diff --git a/"):
            head = line[len(b"diff --git a/") :].decode("utf-8", "replace")
            half = (len(head) - 3) // 2  # "X b/X": both halves are the same path (no renames)
            files.append(head[:half] if head[half : half + 3] == " b/" else head)
    return files


def patch_path(spool_root: Path, sha: str) -> Path:
    if not SHA256_RE.match(sha):
        raise ValueError(f"not a sha256: {sha!r}")
    return spool_root / DIFFS_DIR / f"{sha}.patch"


def store_patch(spool_root: Path, data: bytes) -> str:
    """Keep `data` as `diffs/<sha256>.patch` (written once per distinct diff); returns the sha256."""
    from spool.protocol import publish_bytes

    sha = hashlib.sha256(data).hexdigest()
    path = patch_path(spool_root, sha)
    if not path.exists():
        try:
            path.parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the diffs folder ({exc.strerror})", file=path.parent) from None
        publish_bytes(path, data)
    return sha
