"""Verbs that watch the house: `logs [-f]` and `runners`."""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

from spool.cli.output import print_json, print_table
from spool.errors import NotFound
from spool.untrusted import open_regular

__all__ = ["register"]


def cmd_logs(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.states import State

    sp = Spool(args.spool)
    view = sp.get(args.id)
    name = "stderr.log" if args.stderr else "stdout.log"
    if view.state is State.PENDING:
        raise NotFound(f"job {args.id} has not started yet (pending)")
    path = view.path / name
    deadline = time.monotonic() + 10
    while not path.exists():  # just claimed: the runner opens the logs in a moment
        if not args.follow or time.monotonic() > deadline:
            raise NotFound(f"no {name} for job {args.id}", file=view.path)
        time.sleep(0.1)
    out = sys.stdout.buffer
    try:
        f = open_regular(path)  # a FIFO or device in its place is never read
    except OSError as exc:
        raise NotFound(f"cannot read {name} ({exc.strerror})", file=view.path) from None
    with f:  # the open file follows the folder when the job moves to done/
        while True:
            chunk = f.read(1 << 16)
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            if not args.follow:
                return 0
            entry = sp.layout.find(args.id)
            if entry is None or entry.state is not State.CLAIMED:
                rest = f.read()
                out.write(rest)
                out.flush()
                return 0
            time.sleep(0.2)


def cmd_runners(args: argparse.Namespace) -> int:
    from spool.api import Spool

    rows = Spool(args.spool).runners()
    if args.json:
        print_json(rows)
        return 0
    table = []
    for r in rows:
        caps = r.get("capabilities")
        caps = caps if isinstance(caps, dict) else {}  # a heartbeat is the folder's text: any shape
        live = "alive" if r["alive"] else ("stopped" if r.get("status") == "stopped" else "gone")
        dev = "gpu" if caps.get("gpu") else ("mps" if caps.get("mps") else "cpu")
        mem = caps.get("memory_gb", 0)
        mem_text = f"{mem:.0f}" if isinstance(mem, (int, float)) and math.isfinite(mem) else "?"
        hw = f"{caps.get('cpu_count', '?')} cpu, {mem_text} GB, {dev}"
        jobs = r.get("jobs")
        table.append(
            [
                r.get("name"),
                r.get("host"),
                live,
                f"{r['age']:.0f}s",
                r.get("status"),
                ",".join(str(j) for j in jobs) if isinstance(jobs, list) else "",
                hw,
            ]
        )
    print_table(table, ["RUNNER", "HOST", "LIVE", "SEEN", "STATUS", "JOBS", "MACHINE"])
    return 0


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("logs", help="print a job's stdout (or --stderr); -f follows a running job")
    common(p, json_flag=False)
    p.add_argument("id")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    p.add_argument("--stderr", action="store_true", help="stderr.log instead of stdout.log")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("runners", help="the runners of this spool: machine, liveness, current jobs")
    common(p)
    p.set_defaults(func=cmd_runners)
