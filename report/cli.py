"""`spool report`: write the static HTML report (plugged in through the `housespool.verbs` entry point)."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

__all__ = ["register", "cmd_report", "refresh", "require_report_libraries"]

REPORT_LIBRARIES = ("jinja2", "matplotlib")


def require_report_libraries() -> None:
    """The report's libraries come with the `report` extra: say so in one line when they are missing."""
    import importlib.util

    from spool.errors import MissingExtra

    for name in REPORT_LIBRARIES:
        if importlib.util.find_spec(name) is None:
            raise MissingExtra("report", name)


def refresh(spool: Any) -> str | None:
    """After jobs left the spool (`spool gc`): rebuild the report if there is one, so its pages
    and links stay those of the jobs that are there (a `housespool.refresh` entry point)."""
    from report.build import build

    out = spool.root / "report"
    if not (out / "manifest.json").exists():
        return None
    require_report_libraries()
    index, stats = build(spool, None)
    return f"report rebuilt: {index} ({len(stats.jobs_removed)} page(s) of archived jobs removed)"


def _said(stats: Any, index: Any) -> dict[str, Any]:
    return {
        "index": str(index),
        "seconds": stats.seconds,
        "full": stats.full,
        "jobs": stats.jobs_total,
        "jobs_rendered": len(stats.jobs_rendered),
        "sweeps_charted": stats.sweeps_charted,
        "sweeps_paged": stats.sweeps_paged,
        "charts_drawn": len(stats.charts_drawn),
        "processes": stats.processes,
    }


def _watch(args: argparse.Namespace, sp: Any, out: Any) -> int:
    import sys

    from report.watch import Watch

    as_json = getattr(args, "json", False)
    index = (out or sp.root / "report").expanduser().absolute() / "index.html"

    def said(stats: Any) -> None:
        if as_json:
            from spool.cli.output import print_json

            print_json(_said(stats, index))
        else:
            what = "full build" if stats.full else f"{len(stats.jobs_rendered)} job page(s)"
            sweeps = ", ".join(stats.sweeps_charted) or "no sweep"
            print(f"rebuilt in {stats.seconds:.2f} s: {what}, charts of {sweeps}", file=sys.stderr)
        sys.stdout.flush()

    w = Watch(
        sp,
        out,
        sweep=args.sweep,
        metric=args.metric,
        mode=args.mode,
        processes=args.processes,
        interval=args.interval,
        on_build=said,
    )
    if not as_json:
        print(f"{index}\nwatching {sp.root} (Ctrl-C to stop); open pages reload themselves", file=sys.stderr)
    stop = _stop_on_signals(w.wake)
    opened = False
    if args.open:
        w.run_once(0.0)
        _open(index)
        opened = True
    w.run(stop)
    # stopped: a second Ctrl-C/SIGTERM while Python shuts down is ignored (as the runner does),
    # so the exit status stays clean
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    return 0 if opened or w.builds else 1


def _stop_on_signals(wake: threading.Event) -> threading.Event:
    """An event that Ctrl-C or SIGTERM sets (and wakes the watch): the build under way ends, then
    the watch. Installed whatever this process inherited: a command a shell starts in the
    background comes with SIGINT ignored, and `kill -INT` must still stop it."""
    stop = threading.Event()

    def stopping(*_: Any) -> None:
        stop.set()
        wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stopping)
    return stop


def _open(index: Any) -> None:
    import webbrowser

    webbrowser.open(index.as_uri())


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    require_report_libraries()
    from report.build import build
    from spool.api import Spool
    from spool.errors import StorageError, UsageError

    sp = Spool(getattr(args, "spool", None))
    out = Path(args.output) if args.output else None
    if out is not None and (out.exists() or out.is_symlink()) and not out.is_dir():
        raise UsageError(f"--output {out}: not a folder (the report is a folder of pages)")
    if args.watch:
        return _watch(args, sp, out)
    try:
        index, stats = build(
            sp, out, sweep=args.sweep, metric=args.metric, mode=args.mode, processes=args.processes
        )
    except OSError as exc:  # the report folder could not be written: one line, not a traceback
        raise StorageError(f"cannot write the report ({exc.strerror})", file=exc.filename or out) from None
    if getattr(args, "json", False):
        from spool.cli.output import print_json

        print_json(_said(stats, index))
    else:
        print(index)
    if args.open:
        _open(index)
    return 0


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write a static HTML report (tables and charts) that opens from disk",
        description="Write the spool's report: an index, one page per sweep with charts, one page "
        "per job. Rebuilds only what changed since the last run.",
    )
    common(p)
    p.add_argument("--sweep", metavar="ID", help="only this sweep (its page, its jobs and the index)")
    p.add_argument("-o", "--output", metavar="DIR", help="report folder (default: <spool>/report)")
    p.add_argument(
        "--metric",
        metavar="NAME",
        help="result field to rank by (default: the sweep's metric, else the first numeric result)",
    )
    p.add_argument("--mode", choices=("max", "min"), help="whether higher or lower --metric is better")
    p.add_argument("--open", action="store_true", help="open index.html in the default browser")
    p.add_argument(
        "--watch",
        action="store_true",
        help="keep rebuilding as jobs start and end (file events and a scan); open pages reload themselves",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="with --watch: seconds between scans (default 2)",
    )
    p.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="worker processes for charts and job pages (default: one per core on Linux; 0: none)",
    )
    p.set_defaults(func=cmd_report)
