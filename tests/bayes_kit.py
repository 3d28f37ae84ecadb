"""A proposer process for the bayes fault tests: `python bayes_kit.py SPOOL SWEEP MODE N WANT`.

MODE `kill` ends the process (os._exit) just before its N-th filesystem call through `FsOps`;
`stop` writes SPOOL/stopped-<pid> and SIGSTOPs itself just before its N-th call; `count`
makes every call and prints how many it made; `barrier` waits for SPOOL/go, then proposes.
Prints the job ids it published, as JSON, when it gets to the end."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from spool import Spool
from spool.protocol import FsOps
from spool.sweeps.adaptive import propose_next


class Faulty(FsOps):
    """Every call the protocol makes passes `_tick` first."""

    def __init__(self, mode: str, at: int, root: Path):
        self.mode, self.at, self.root, self.calls = mode, at, root, 0

    def _tick(self) -> None:
        self.calls += 1
        if self.calls != self.at:
            return
        if self.mode == "kill":
            os._exit(9)
        if self.mode == "stop":
            (self.root / f"stopped-{os.getpid()}").write_text(str(self.calls))
            os.kill(os.getpid(), signal.SIGSTOP)


def _wrap(name: str) -> Any:
    def call(self: Faulty, *args: Any, **kw: Any) -> Any:
        self._tick()
        return getattr(FsOps, name)(self, *args, **kw)

    return call


for _name in ("rename", "mkdir", "rmdir", "unlink", "link", "write_new", "write_into"):
    if hasattr(FsOps, _name):
        setattr(Faulty, _name, _wrap(_name))


def main() -> None:
    root, sweep, mode, at, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    sp = Spool(root)
    fs = Faulty(mode, at, Path(root))
    if mode == "barrier":
        while not (Path(root) / "go").exists():
            time.sleep(0.001)
    added = propose_next(sp, sweep, want=want, fs=fs)
    print(json.dumps({"added": added, "calls": fs.calls}))


if __name__ == "__main__":
    main()
