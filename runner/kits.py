"""Claim kits: job folders made ahead of the claim, so that starting a job creates no inode.

Creating a file or a folder is the dearest thing a runner does per job: 0.02-0.7 ms of CPU
each on the ext4 disk of the development machine (by which block group the folder's inodes
fall in), a round trip each over NFS or sshfs. A fresh job needs six (its folder, `outputs/`,
`stdout.log`, `stderr.log`, `metrics.jsonl`, `claim.json`). A kit is such a folder, made
while the previous script runs, in `runners/.kit-<runner>.<random>/`: `outputs/` and the
three empty logs. `spool.protocol.claim` renames it into `claimed/` just before it moves the
job file in, so between one script's end and the next one's start the spool sees renames
only. A kit is an optimisation: one that cannot be made or used is skipped, and the claim
makes its folder as before.

Unused kits are removed when the runner stops; a crashed runner's are removed by the next
runner of the same name (kits are named after it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["Kits", "KIT_FILES"]

#: the empty files a kit holds (the logs `runner.execute.Running` appends to)
KIT_FILES = ("stdout.log", "stderr.log", "metrics.jsonl")
_PREFIX = ".kit-"


class Kits:
    """Up to `want` ready kits of one runner in `runners_dir`."""

    def __init__(self, runners_dir: Path, runner: str, want: int):
        self.dir = runners_dir
        self.stem = f"{_PREFIX}{runner}."
        self.want = max(0, want)
        self._ready: list[Path] = []

    def take(self) -> Path | None:
        """A ready kit (now the caller's), or None."""
        return self._ready.pop() if self._ready else None

    def put_back(self, kit: Path) -> None:
        """A kit a lost claim left unused (`claim` renamed it back): ready again if it is there."""
        if os.path.isdir(kit):
            self._ready.append(kit)

    def fill(self) -> None:
        """Make kits until `want` are ready; stop quietly at the first error (a full disk)."""
        while len(self._ready) < self.want:
            kit = self.dir / f"{self.stem}{os.urandom(4).hex()}"
            try:
                os.mkdir(kit)
                os.mkdir(kit / "outputs")
                for name in KIT_FILES:
                    os.close(os.open(kit / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except OSError:
                shutil.rmtree(kit, ignore_errors=True)
                return
            self._ready.append(kit)

    def clear(self) -> None:
        """Remove every kit of this runner's name: ours, and a crashed predecessor's."""
        self._ready = []
        try:
            names = [n for n in os.listdir(self.dir) if n.startswith(self.stem)]
        except OSError:
            return
        for name in names:
            shutil.rmtree(self.dir / name, ignore_errors=True)
