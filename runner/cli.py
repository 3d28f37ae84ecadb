"""`spool runner`: plugged into the `spool` command through the `housespool.verbs` entry point."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def cmd_runner(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from runner.loop import Runner
    from runner.options import RunnerOptions
    from spool.api import Spool
    from spool.errors import ConfigError

    fields = {
        k: v
        for k, v in {
            "name": args.name,
            "python": args.python,
            "scripts": args.scripts,
            "slots": args.slots,
            "tags": args.tag or [],
            "max_load": args.max_load,
            "hours": args.hours,
            "on_ac_power": args.on_ac_power,
            "when_user_idle": args.when_user_idle,
            "max_jobs": args.max_jobs,
            "exit_when_idle": args.exit_when_idle,
            "nice": args.nice,
            "events": not args.no_events,
            "scan_interval": args.scan_interval,
        }.items()
        if v is not None
    }
    try:
        opts = RunnerOptions.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(
            first["msg"].removeprefix("Value error, "), field="--" + str(first["loc"][0]).replace("_", "-")
        ) from None
    sp = Spool(args.spool, scripts=opts.scripts)
    sp.check()

    def log(msg: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"[{opts.name}] {msg}\n")
            sys.stderr.flush()

    runner = Runner(sp, opts, log=log)
    gpu = "gpu" if runner.caps.gpu else f"no gpu ({runner.caps.gpu_reason})"
    log(f"runner on {sp.root}: {opts.slots} slot(s), device {runner.device}, {gpu}")
    return runner.run()


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "runner",
        help="run jobs from the spool on this machine",
        description="Watch the spool, claim jobs this machine can run, run them, write results.",
    )
    common(p, json_flag=False)
    p.add_argument("--slots", type=int, help="jobs at once (default 1)")
    p.add_argument("--python", metavar="PATH", help="interpreter for jobs, absolute (default: this one)")
    p.add_argument(
        "--scripts", metavar="DIR", help="this machine's scripts folder (default: from spool.toml)"
    )
    p.add_argument(
        "--tag", action="append", metavar="T", help="a capability tag jobs can require; repeatable"
    )
    p.add_argument("--name", help="runner name (default: host-pid)")
    idle = p.add_argument_group("idle policy")
    idle.add_argument(
        "--max-load", type=float, metavar="L", help="start no job while the 1-min load is above L"
    )
    idle.add_argument("--hours", metavar="HH-HH", help="start jobs only within these hours, e.g. 22-07")
    idle.add_argument("--on-ac-power", action="store_true", default=None, help="start no job on battery")
    idle.add_argument(
        "--when-user-idle",
        type=float,
        metavar="MIN",
        help="start jobs only when nobody touched keyboard/mouse for MIN minutes",
    )
    idle.add_argument("--nice", type=int, help="niceness of job processes (default 10)")
    idle.add_argument("--max-jobs", type=int, metavar="K", help="exit after starting K jobs")
    idle.add_argument(
        "--exit-when-idle", action="store_true", default=None, help="drain the spool, then exit"
    )
    p.add_argument("--no-events", action="store_true", help="do not use file events; scan only")
    p.add_argument(
        "--scan-interval", type=float, metavar="S", help="seconds between scans (default: spool.toml)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no log lines on stderr")
    p.set_defaults(func=cmd_runner)
