"""Verbs that tend the queue: `note`, `priority`, `gc`, and `completion` (the shell's tab key)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from spool.cli.output import print_json
from spool.errors import UsageError

__all__ = ["register"]


def cmd_note(args: argparse.Namespace) -> int:
    from spool.api import Spool

    sp = Spool(args.spool)
    if args.text is None:
        notes = sp.notes(args.id)
        if args.json:
            print_json(notes)
        else:
            for n in notes:
                print(f"{n['at']}\n  " + "\n  ".join(n["text"].splitlines()))
        return 0
    text = sys.stdin.read() if args.text == "-" else args.text
    added = sp.note(args.id, text)
    if args.json:
        print_json(added)
    else:
        print(f"noted on {args.id}")
    return 0


def cmd_priority(args: argparse.Namespace) -> int:
    from spool.api import Spool

    *ids, value = args.args
    try:
        priority = int(value)
    except ValueError:
        raise UsageError(f"the last argument is the new priority (an integer), not {value!r}") from None
    if not ids and not args.sweep:
        raise UsageError("give job ids (or --sweep ID) and then the new priority")
    out = Spool(args.spool).set_priority(*ids, priority=priority, sweep=args.sweep)
    if args.json:
        print_json(out)
    else:
        for job_id, what in out.items():
            print(f"{job_id}: {what}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def cmd_gc(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.gc import apply_gc, parse_age, plan_gc
    from spool.states import State

    sp = Spool(args.spool)
    sp.check()
    states = (State(args.state),) if args.state else (State.DONE, State.FAILED)
    plan = plan_gc(
        sp.layout,
        parse_age(args.older_than),
        states=states,
        sweep=args.sweep,
        keep_best=args.keep_best,
        metric=args.metric,
        goal=args.goal,
        deleting=args.delete,
    )
    summary = plan.summary()
    verb = "delete" if args.delete else "archive to archive/"
    lines = [
        f"gc: {summary['jobs']} job(s) ended more than {args.older_than} ago "
        f"(done {summary['done']}, failed {summary['failed']}, {_size(summary['bytes'])}): {verb}"
    ]
    if plan.kept_best:
        lines.append(f"  kept {len(plan.kept_best)} among the best {args.keep_best} by {args.metric}")
    if plan.kept_needed:
        lines.append(f"  kept {len(plan.kept_needed)} that pending jobs wait for (after)")
    lines.append(f"  {plan.active} pending or running job(s): never touched")
    if not args.json:
        sys.stderr.write("\n".join(lines) + "\n")
    if args.dry_run:
        if args.json:
            print_json({**summary, "dry_run": True, "moved": []})
        else:
            sys.stderr.write("nothing changed (--dry-run)\n")
            for job_id in summary["ids"]:
                print(job_id)
        return 0
    moved = apply_gc(sp.layout, plan, delete=args.delete)
    report = sp.refresh_after_change() if moved else None
    if args.json:
        print_json({**summary, "dry_run": False, "moved": moved, "report": report})
    else:
        sys.stderr.write(f"{'deleted' if args.delete else 'archived'} {len(moved)} job(s)\n")
        if report:
            sys.stderr.write(f"{report}\n")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    try:
        import shtab
    except ImportError:
        raise UsageError("completion needs shtab: pip install shtab") from None
    from spool.cli.main import build_parser

    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return 0


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("note", help="add a note to a job (shown on its report page); no text: print them")
    common(p)
    p.add_argument("id")
    p.add_argument("text", nargs="?", help="the note ('-': read it from stdin)")
    p.set_defaults(func=cmd_note)

    p = sub.add_parser(
        "priority",
        help="give pending jobs a new priority (higher runs first)",
        description="spool priority ID... N | spool priority --sweep ID N. The job file's original "
        "bytes are kept beside it as job.original.json.",
    )
    common(p)
    p.add_argument("args", nargs="+", metavar="ID... N")
    p.add_argument("--sweep", metavar="ID", help="every pending job of this sweep")
    p.set_defaults(func=cmd_priority)

    p = sub.add_parser(
        "gc",
        help="move old finished jobs to the spool's archive/ (or --delete them)",
        description="Never touches pending or running jobs. Prints what it does (or, with --dry-run, "
        "what it would do) before anything changes, and rebuilds the report if there is one.",
    )
    common(p)
    p.add_argument("--older-than", required=True, metavar="AGE", help="ended this long ago: 30d, 12h, 2w")
    p.add_argument("--state", choices=["done", "failed"], help="only jobs in this state")
    p.add_argument("--sweep", metavar="ID", help="only jobs of this sweep")
    p.add_argument("--keep-best", type=int, metavar="N", help="keep the N best jobs of every sweep")
    p.add_argument("--metric", metavar="M", help="the result column --keep-best ranks by")
    p.add_argument("--goal", choices=["max", "min"], help="for --keep-best (default: the sweep's, else max)")
    p.add_argument("--delete", action="store_true", help="delete instead of archiving (asked for explicitly)")
    p.add_argument("--dry-run", action="store_true", help="print what would happen, change nothing")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="bash: spool completion bash > ~/.local/share/bash-completion/completions/spool   "
        'zsh: spool completion zsh > "${fpath[1]}/_spool"',
    )
    p.add_argument("shell", choices=["bash", "zsh", "tcsh"])
    p.set_defaults(func=cmd_completion)
