"""Claim kits: job folders made ahead of the claim, so that starting a job creates no inode.

Creating a file or a folder is the dearest thing a runner does per job: 0.02-0.7 ms of CPU each
on the ext4 disk of the development machine (by which block group the folder's inodes fall in),
a round trip each over NFS or sshfs. A job needs seven (its folder, `outputs/`, `stdout.log`,
`stderr.log`, `metrics.jsonl`, `claim.json`, `result.json`). A kit is such a folder, made while
the previous script runs, in `runners/.kit-<runner>.<random>/`: `outputs/`, `checkpoint/`, the three empty
logs, and two empty blanks (`.claim.json.blank`, `.result.json.blank`) that claim.json and
result.json are written into and renamed from. `spool.protocol.claim` renames it into
`claimed/` just before it moves the job file in, so between one script's end and the next one's
start the spool sees renames only. A kit is an optimisation: one that cannot be made or used is
skipped, and the claim makes its folder as before.

The loop asks for kits with `fill_soon`, and a thread of their own makes them while the loop
waits: a process just started shares its spawner's core at first, and creates done on the
loop's thread right after a start delayed that start by about their CPU time (measured: +2.9
ms of a 13.6 ms interpreter start), while the same creates on a thread that wakes while the
spawner waits cost the start nothing (`bench/bench_dispatch.py` prints the first figure).

Unused kits are removed when the runner stops; a crashed runner's are removed by the next
runner of the same name (kits are named after it).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from spool.layout import CHECKPOINT_DIR
from spool.protocol import BLANKS
from spool.untrusted import read_file

__all__ = ["Kits", "KIT_FILES", "drop_dead_kits"]

#: the empty files a kit holds: the logs `runner.core.execute.Running` appends to, and the blanks
#: that claim.json and result.json are written into (`spool.protocol.publish_bytes`)
KIT_FILES = ("stdout.log", "stderr.log", "metrics.jsonl", *BLANKS)
_PREFIX = ".kit-"
IDLE_EXIT = 10.0  # seconds: a filler thread nobody asked for so long ends (a new ask restarts one)


class Kits:
    """Up to `want` ready kits of one runner in `runners_dir`."""

    def __init__(self, runners_dir: Path, runner: str, want: int):
        self.dir = runners_dir
        self.stem = f"{_PREFIX}{runner}."
        self.want = max(0, want)
        self._ready: list[Path] = []  # appended and popped by two threads: list ops are atomic
        self._asked = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def take(self) -> Path | None:
        """A ready kit (now the caller's), or None."""
        return self._ready.pop() if self._ready else None

    def put_back(self, kit: Path) -> None:
        """A kit a lost claim left unused (`claim` renamed it back): ready again if it is there."""
        if os.path.isdir(kit):
            self._ready.append(kit)

    def fill_soon(self) -> None:
        """`fill` on the filler thread (started if need be); returns at once."""
        with self._lock:
            self._asked.set()
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._filler, name=f"{self.stem}filler", daemon=True)
                self._thread.start()

    def _filler(self) -> None:
        me = threading.current_thread()
        try:
            while not self._stopping:
                if self._asked.wait(IDLE_EXIT):
                    self._asked.clear()
                    self.fill()
                    continue
                with self._lock:  # idle: end, unless asked just now (then the ask is served)
                    if not self._asked.is_set():
                        if self._thread is me:
                            self._thread = None
                        return
        finally:  # ended by clear(), or by a bug: a later ask starts a new filler
            with self._lock:
                if self._thread is me:
                    self._thread = None

    def fill(self) -> None:
        """Make kits until `want` are ready; stop quietly at the first error (a full disk)."""
        while len(self._ready) < self.want and not self._stopping:
            kit = self.dir / f"{self.stem}{os.urandom(4).hex()}"
            try:
                os.mkdir(kit)
                os.mkdir(kit / "outputs")
                os.mkdir(kit / CHECKPOINT_DIR)
                for name in KIT_FILES:
                    os.close(os.open(kit / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except OSError:
                shutil.rmtree(kit, ignore_errors=True)
                return
            self._ready.append(kit)

    def clear(self) -> None:
        """Stop the filler; remove every kit of this runner's name: ours, and a crashed predecessor's."""
        with self._lock:
            self._stopping = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._asked.set()
            thread.join(30)
        self._stopping = False
        self._ready = []
        try:
            names = [n for n in os.listdir(self.dir) if n.startswith(self.stem)]
        except OSError:
            return
        for name in names:
            shutil.rmtree(self.dir / name, ignore_errors=True)


def drop_dead_kits(runners_dir: Path, own: str, spool_now: float, alive_after: float = 15.0) -> int:
    """Remove the kits of runners that are gone (heartbeat stopped, or older than 3 beats and
    `alive_after` by the spool's clock): a killed runner's kits would pile up in runners/
    for good. Returns how many were removed."""
    removed = 0
    try:
        names = [n for n in os.listdir(runners_dir) if n.startswith(_PREFIX)]
    except OSError:
        return 0
    for name in names:
        owner = name[len(_PREFIX) :].rpartition(".")[0]
        if not owner or owner == own or _alive(runners_dir / f"{owner}.json", spool_now, alive_after):
            continue
        try:
            if spool_now - os.stat(runners_dir / name).st_mtime < alive_after:
                continue  # just made (its runner's first heartbeat may be on its way)
        except OSError:
            continue
        shutil.rmtree(runners_dir / name, ignore_errors=True)
        removed += 1
    return removed


def _alive(beat: Path, spool_now: float, alive_after: float) -> bool:
    try:
        age = spool_now - os.stat(beat).st_mtime
        doc = json.loads(read_file(beat))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # cannot tell: leave its kits alone
    if not isinstance(doc, dict):
        return True
    if doc.get("status") == "stopped":
        return False
    return age < max(alive_after, 3 * float(doc.get("heartbeat_seconds") or 5))
