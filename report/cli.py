"""`spool report`: write the static HTML report (plugged in through the `housespool.verbs` entry point)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register", "cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from report.build import build
    from spool.api import Spool

    sp = Spool(getattr(args, "spool", None))
    out = Path(args.output) if args.output else None
    index, stats = build(sp, out, sweep=args.sweep, metric=args.metric, mode=args.mode)
    if getattr(args, "json", False):
        from spool.cli.output import print_json

        print_json(
            {
                "index": str(index),
                "seconds": stats.seconds,
                "full": stats.full,
                "jobs": stats.jobs_total,
                "jobs_rendered": len(stats.jobs_rendered),
                "sweeps_charted": stats.sweeps_charted,
                "sweeps_paged": stats.sweeps_paged,
            }
        )
    else:
        print(index)
    if args.open:
        import webbrowser

        webbrowser.open(index.as_uri())
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
    p.set_defaults(func=cmd_report)
