"""`spool`: one command, one verb per job; errors are one stderr line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spool.version import version

__all__ = ["main", "build_parser"]

#: spool's own verbs; `runner`, `report` and `serve` plug in through the `housespool.verbs`
#: entry point group, so `spool` never imports the packages built on it.
VERB_MODULES = (
    "spool.cli.jobs_cmds",
    "spool.cli.sweep_cmds",
    "spool.cli.watch_cmds",
    "spool.cli.results_cmds",
    "spool.cli.prov_cmds",
    "spool.cli.manage_cmds",
)
ENTRY_POINT_GROUP = "housespool.verbs"


def common(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """`--spool` (and `--json` for verbs that print) on every verb."""
    parser.add_argument(
        "--spool",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the spool folder (default: $SPOOL_DIR, else ./spool-dir)",
    )
    if json_flag:
        parser.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of a table"
        )


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="spool", description="A job spooler for a house full of machines: a folder, no server."
    )
    parser.add_argument(
        "--spool",
        metavar="DIR",
        default=None,
        help="the spool folder (default: $SPOOL_DIR, else ./spool-dir)",
    )
    parser.add_argument("--json", action="store_true", default=False, help="print JSON")
    parser.add_argument("--version", action="version", version=f"housespool {version()}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub, common)
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a broken plugin must not take `spool status` down with it
            sys.stderr.write(f"spool: the '{ep.name}' verbs are unavailable ({exc})\n")
            continue
        register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from spool.errors import SpoolError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SpoolError as exc:
        sys.stderr.write(f"spool {args.verb}: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"spool {args.verb}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
