"""Verbs for reproducibility: `rerun ID` and `diff ID1 ID2`; and `--pin` for `submit`/`sweep`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from spool.cli.output import print_json, print_table
from spool.errors import UsageError

__all__ = ["register", "pin_fields", "provenance_lines"]


def pin_fields(spool: Any, script: str | list[str] | None, args: argparse.Namespace) -> dict[str, str]:
    """`rev` (and `rev_diff`) for `--pin [--allow-dirty]`; {} without `--pin`."""
    pin, allow_dirty = getattr(args, "pin", False), getattr(args, "allow_dirty", False)
    if not pin:
        if allow_dirty:
            raise UsageError("--allow-dirty goes with --pin")
        return {}
    if isinstance(script, list):
        if len(script) != 1 or script[0] == "-" or script[0].endswith(".json"):
            raise UsageError('--pin goes with a script name; a job file pins itself with "rev"')
        script = script[0]
    if not script:
        raise UsageError("--pin needs a script")
    from spool.gitinfo import pin as _pin
    from spool.model import check_relative_path

    try:
        check_relative_path(script, "script")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _pin(spool.scripts_dir, script, spool.root, allow_dirty=allow_dirty)


def provenance_lines(rec: dict[str, Any]) -> list[str]:
    """A few lines on what a run ran (for `spool show`)."""
    prov = rec.get("provenance")
    if not isinstance(prov, dict) or not prov:
        return []
    lines = []
    git = prov.get("git")
    if isinstance(git, dict):
        if git.get("error"):
            lines.append(f"git: {git['error']}")
        elif git.get("commit"):
            bits = [str(git["commit"])[:12]]
            if git.get("pinned"):
                bits.append(f"pinned (rev {git.get('rev')})")
            elif git.get("branch"):
                bits.append(f"on {git['branch']}")
            elif git.get("detached"):
                bits.append("detached HEAD")
            if git.get("dirty"):
                bits.append(f"dirty, diff {str(git['diff'])[:12]}" if git.get("diff") else "dirty")
            if git.get("shallow"):
                bits.append("shallow clone")
            lines.append("git: " + ", ".join(bits))
    pk = prov.get("packages")
    if isinstance(pk, dict):
        shown = [f"{k} {v}" for k, v in pk.items() if v and k != "error"]
        py = (prov.get("python") or {}).get("version")
        lines.append("versions: " + ", ".join(([f"python {py}"] if py else []) + shown))
    inputs = prov.get("inputs")
    if isinstance(inputs, dict) and inputs:
        parts = []
        for k, v in inputs.items():
            ok = isinstance(v, dict) and v.get("sha256")
            parts.append(f"{k} {v['sha256'][:12]}" if ok else f"{k} ({(v or {}).get('error')})")
        lines.append("inputs: " + ", ".join(parts))
    return lines


def cmd_rerun(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.rerun import rerun

    sp = Spool(args.spool, scripts=args.scripts)
    sp.check()
    new_id, warnings = rerun(sp, args.id, force=args.force)
    for w in warnings:
        sys.stderr.write(f"spool rerun: warning: {w}\n")
    if args.json:
        print_json({"id": new_id, "of": args.id, "warnings": warnings})
    else:
        print(new_id)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.rerun import diff_runs, format_value

    sp = Spool(args.spool)
    sp.check()
    rows = diff_runs(sp, args.a, args.b)
    if args.json:
        print_json({"a": args.a, "b": args.b, "differences": rows})
        return 0
    if not rows:
        print(f"{args.a} and {args.b}: no differences")
        return 0
    print_table(
        [[r["key"], format_value(sp, r["key"], r["a"]), format_value(sp, r["key"], r["b"])] for r in rows],
        ["WHAT", args.a, args.b],
    )
    return 0


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "rerun",
        help="submit a job identical to a recorded run (same params, its commit and diff, same inputs)",
        description="Submit an identical job pinned to the commit (and diff) the run recorded; print its id.",
    )
    common(p)
    p.add_argument("id", metavar="ID")
    p.add_argument("--force", action="store_true", help="rerun the commit even if the run's diff is lost")
    p.add_argument("--scripts", metavar="DIR", help="this machine's scripts folder (default: spool.toml)")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser(
        "diff",
        help="what differed between two runs: params, commit, diff, versions, host, input hashes",
    )
    common(p)
    p.add_argument("a", metavar="ID1")
    p.add_argument("b", metavar="ID2")
    p.set_defaults(func=cmd_diff)
