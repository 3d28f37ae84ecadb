"""`spool runner`: plugged into the `spool` command through the `housespool.verbs` entry point."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.core.options import RunnerOptions

__all__ = ["register", "build_options"]


def build_options(args: argparse.Namespace) -> RunnerOptions:
    """The validated `RunnerOptions` for these arguments (also used by `runner install`)."""
    from pydantic import ValidationError

    from runner.core.options import RunnerOptions
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
            "pause_when_busy": args.pause_when_busy,
            "max_jobs": args.max_jobs,
            "exit_when_idle": args.exit_when_idle,
            "nice": args.nice,
            "events": not args.no_events,
            "git_fetch": args.git_fetch,
            "scan_interval": args.scan_interval,
            "warm": getattr(args, "warm", None),
            "warm_on_macos": getattr(args, "warm_on_macos", None),
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
    return opts


def cmd_runner(args: argparse.Namespace) -> int:
    if args.action != "run" or args.print_only:
        from house.service_install import cmd_service

        return cmd_service(args)
    from runner.core.loop import Runner
    from spool.api import Spool

    opts = build_options(args)
    sp = Spool(args.spool, scripts=opts.scripts)
    sp.check()

    def log(msg: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"[{opts.name}] {msg}\n")
            sys.stderr.flush()

    runner = Runner(sp, opts, log=log)
    gpu = "gpu" if runner.caps.gpu else f"no gpu ({runner.caps.gpu_reason})"
    log(f"runner on {sp.root}: {opts.slots} slot(s), device {runner.device}, {gpu}")
    rc = runner.run()
    # every job is finished or handed back: a repeated Ctrl-C/SIGTERM while Python shuts down
    # ends the process at once with the same clean status (not "killed", not a traceback)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(rc))
    return rc


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "runner",
        help="run jobs from the spool on this machine",
        description="Watch the spool, claim jobs this machine can run, run them, write results. "
        "`install` makes this machine run it as a service (systemd user unit, launchd agent) with the "
        "options given; `uninstall` removes it; `status` shows whether it is loaded.",
    )
    common(p, json_flag=False)
    p.add_argument(
        "action",
        nargs="?",
        choices=["run", "install", "uninstall", "status"],
        default="run",
        help="run (default), or install/uninstall/status the service running it",
    )
    p.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="with install: print the unit/plist instead of installing it",
    )
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
    idle.add_argument(
        "--pause-when-busy",
        action="store_true",
        default=None,
        help="SIGSTOP the running job while the user is active, SIGCONT when idle again",
    )
    idle.add_argument("--nice", type=int, help="niceness of job processes (default 10)")
    idle.add_argument("--max-jobs", type=int, metavar="K", help="exit after starting K jobs")
    idle.add_argument(
        "--exit-when-idle", action="store_true", default=None, help="drain the spool, then exit"
    )
    p.add_argument("--no-events", action="store_true", help="do not use file events; scan only")
    p.add_argument(
        "--warm",
        metavar="MODS",
        help="warm mode: a fork server imports these modules (e.g. pandas,sklearn) once; each job "
        "is a fork of it (see docs/performance.md)",
    )
    p.add_argument(
        "--warm-on-macos", action="store_true", default=None, help="allow warm mode on macOS (off by default)"
    )
    p.add_argument(
        "--git-fetch",
        action="store_true",
        default=None,
        help="fetch from the scripts repo's remote when a pinned job's commit is missing",
    )
    p.add_argument(
        "--scan-interval", type=float, metavar="S", help="seconds between scans (default: spool.toml)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no log lines on stderr")
    p.set_defaults(func=cmd_runner)
