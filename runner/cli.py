"""`spool runner`: plugged into the `spool` command through the `housespool.verbs` entry point.

This is where a runner is put together from its rooms: its options (`runner.core.options`),
the loop (`runner.core.loop`), and warm mode's fork server (`runner.warm`), which the loop
only sees as a spawner. `install`, `uninstall` and `status` are the house tools' (a service
manager's business): `house.cli` plugs them in with `plug_service`; the runner never imports them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.core.loop import Runner
    from runner.core.options import RunnerOptions
    from spool.api import Spool

__all__ = ["register", "build_options", "build_runner", "plug_service"]

_SERVICE: list[Callable[[argparse.Namespace], int]] = []


def plug_service(handler: Callable[[argparse.Namespace], int]) -> None:
    """The handler of `spool runner install|uninstall|status [--print]` (the house tools')."""
    _SERVICE[:] = [handler]


def build_options(args: argparse.Namespace) -> RunnerOptions:
    """The validated `RunnerOptions` for these arguments (also used by `runner install`)."""
    from runner.core.options import options_from_args
    from runner.warm.pool import check_fork_safe
    from spool.errors import ConfigError

    opts = options_from_args(args)
    try:
        check_fork_safe(opts.warm)
    except ValueError as exc:
        raise ConfigError(str(exc), field="--warm") from None
    return opts


def build_runner(sp: Spool, opts: RunnerOptions, log: Callable[[str], None]) -> Runner:
    """A runner with every part its options ask for (`build_parts`), the fork server included."""
    from runner.core.loop import Runner
    from runner.core.parts import build_parts
    from runner.warm.pool import WarmPool, warm_default_allowed

    if not opts.warm:
        return Runner(sp, opts, build_parts(sp, opts, log), log=log)
    # the fork server starts importing now, while the runner gets going
    allowed = (True, "") if opts.warm_on_macos else warm_default_allowed()
    pool = WarmPool(opts.python, opts.warm, str(sp.scripts_dir), allowed=allowed, log=log)
    try:
        return Runner(sp, opts, build_parts(sp, opts, log, warm=pool), log=log)
    except BaseException:
        pool.close()
        raise


def cmd_runner(args: argparse.Namespace) -> int:
    if args.action != "run" or args.print_only:
        if not _SERVICE:
            from spool.errors import UsageError

            raise UsageError(f"`spool runner {args.action}` needs the house tools (house.cli did not load)")
        return _SERVICE[0](args)
    from spool.api import Spool

    opts = build_options(args)
    sp = Spool(args.spool, scripts=opts.scripts)
    sp.check()

    def log(msg: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"[{opts.name}] {msg}\n")
            sys.stderr.flush()

    runner = build_runner(sp, opts, log)
    gpu = "gpu" if runner.caps.gpu else f"no gpu ({runner.caps.gpu_reason})"
    log(f"runner on {sp.root}: {opts.slots} slot(s), device {runner.device}, {gpu}")
    rc = runner.run()
    # every job is finished or handed back: a repeated Ctrl-C/SIGTERM while Python shuts down
    # is ignored, so the exit status stays clean (not "killed", not a traceback). Ignored, not
    # caught: Python's finalization puts every signal it handles back to SIG_DFL (a handler
    # here left a window of ~50 ms in which a second SIGTERM killed a runner that had stopped
    # cleanly), but leaves an ignored one ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    return rc


def register(sub: Any, common: Any) -> None:
    from runner.core.options import add_flags

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
    add_flags(p)
    p.set_defaults(func=cmd_runner)
