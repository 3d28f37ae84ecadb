"""Verbs on jobs: init, submit, status, ls, show, cancel, retry, schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spool.cli.output import compact, parse_assignments, print_json, print_table
from spool.errors import UsageError
from spool.history import attempt_history, hosts_spanned

__all__ = ["register", "job_fields_from_args", "add_job_options"]


def _spool(args: argparse.Namespace) -> Any:
    from spool.api import Spool

    return Spool(args.spool, scripts=getattr(args, "scripts", None))


def add_job_options(p: argparse.ArgumentParser) -> None:
    """The flags that describe a job, shared by `submit` and `sweep`."""
    p.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a parameter (value parsed as JSON where it parses, else a string); repeatable",
    )
    p.add_argument(
        "--contract", choices=["flags", "argv4", "json", "hydra"], help="how params reach the script"
    )
    p.add_argument("--name", help="a label")
    p.add_argument("--priority", type=int, help="higher runs first")
    p.add_argument("--timeout", type=float, help="seconds before the script is stopped")
    p.add_argument("--retries", type=int, help="extra attempts after a failure")
    p.add_argument("--requires-gpu", action="store_true", help="only runners with a usable GPU take it")
    p.add_argument(
        "--tag", action="append", metavar="T", help="only runners with this tag take it; repeatable"
    )
    p.add_argument("--env", action="append", metavar="K=V", help="an extra environment variable; repeatable")
    p.add_argument("--arg", action="append", metavar="WORD", help="a fixed argument placed before the params")
    p.add_argument(
        "--label",
        action="append",
        metavar="KEY=VALUE",
        help="a label of your own (shown in ls, results as label.KEY, the report); repeatable",
    )
    p.add_argument(
        "--after",
        action="append",
        metavar="ID|SWEEP",
        help="start only once this job (or every job of this sweep) is done; repeatable",
    )
    p.add_argument("--pin", action="store_true", help="run the scripts as they are at the current commit")
    p.add_argument("--allow-dirty", action="store_true", help="with --pin: also pin uncommitted changes")


def job_fields_from_args(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("contract", "name", "priority", "timeout", "retries"):
        value = getattr(args, key, None)
        if value is not None:
            fields[key] = value
    requires: dict[str, Any] = {}
    if getattr(args, "requires_gpu", False):
        requires["gpu"] = True
    if getattr(args, "tag", None):
        requires["tags"] = args.tag
    if requires:
        fields["requires"] = requires
    if getattr(args, "env", None):
        fields["env"] = parse_assignments(args.env, "--env", raw=True)
    if getattr(args, "arg", None):
        fields["args"] = args.arg
    if getattr(args, "label", None):
        fields["labels"] = parse_assignments(args.label, "--label", raw=True)
    if getattr(args, "after", None):
        fields["after"] = args.after
    return fields


def cmd_init(args: argparse.Namespace) -> int:
    from spool.api import Spool

    sp = Spool.init(args.spool, scripts=args.scripts)
    if args.json:
        print_json({"spool": str(sp.root), "scripts": str(sp.scripts_dir)})
    else:
        print(f"created spool {sp.root} (scripts: {sp.scripts_dir})")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from spool.cli.prov_cmds import pin_fields

    sp = _spool(args)
    targets = args.target
    ids: list[str] = []
    pinned = pin_fields(sp, targets, args)  # {} unless --pin
    if targets == ["-"]:
        ids.append(sp.submit_bytes(sys.stdin.buffer.read(), "<stdin>"))
    elif all(t.endswith(".json") and Path(t).is_file() for t in targets):
        if args.param or job_fields_from_args(args):
            raise UsageError("job files carry their own params; -p and job options go with a script name")
        jobs = [sp.validate_file(Path(t)) for t in targets]  # all or nothing
        del jobs
        ids += [sp.submit_bytes(Path(t).read_bytes(), t) for t in targets]
    elif len(targets) == 1:
        params = parse_assignments(args.param, "-p")
        ids.append(sp.submit(targets[0], params, **job_fields_from_args(args), **pinned))
    else:
        raise UsageError("give one script name, or one or more existing .json job files, or '-'")
    if args.json:
        print_json(ids if len(ids) > 1 else {"id": ids[0]})
    else:
        print("\n".join(ids))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    st = _spool(args).status()
    if args.json:
        print_json(st)
        return 0
    print("  ".join(f"{k}: {st[k]}" for k in ("pending", "claimed", "done", "failed", "total")))
    for sweep, per in sorted(st.get("sweeps", {}).items()):
        print(f"  sweep {sweep}: " + "  ".join(f"{k} {v}" for k, v in per.items()))
    return 0


def _number(x: Any) -> str:
    """A number from a job's record, or `?` (the folder's text is shown only as numbers here)."""
    return f"{x:g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "?"


def _summary(d: dict[str, Any]) -> str:
    if d.get("error"):
        return f"{d['error'].get('kind')}: {d['error'].get('message')}"
    if d.get("stopped") is True and isinstance(d.get("early_terminate"), dict):
        return f"stopped at band {_number(d['early_terminate'].get('band'))}: " + compact(d.get("result"))
    if d.get("result") is not None:
        return compact(d["result"])
    return d.get("problem") or ""


def cmd_ls(args: argparse.Namespace) -> int:
    views = _spool(args).jobs(state=args.state, sweep=args.sweep, where=args.where)
    rows = [v.to_dict() for v in views]
    if args.json:
        print_json(rows)
        return 0
    with_labels = any(r.get("labels") for r in rows)
    table = []
    for r in rows:
        cells = [r["id"], r["state"], r["script"] or "?", r["name"] or "", compact(r["params"], 40)]
        if with_labels:
            cells.append(",".join(f"{k}={v}" for k, v in sorted((r.get("labels") or {}).items())))
        table.append([*cells, _summary(r)])
    headers = ["ID", "STATE", "SCRIPT", "NAME", "PARAMS", *(["LABELS"] if with_labels else []), "RESULT"]
    print_table(table, headers)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    sp = _spool(args)
    if sp.is_sweep(args.id):
        from spool.cli.sweep_show import print_sweep

        view = sp.sweep(args.id)
        if args.json:
            print_json(view)
        else:
            print_sweep(view)
        return 0
    v = sp.get(args.id)
    d = v.to_dict(files=True)
    d["job"] = v.job
    if v.result:
        d["record"] = v.result
    pieces = attempt_history(v.path) if v.path.is_dir() else []
    d["attempts"] = pieces
    if args.json:
        print_json(d)
        return 0
    print(f"{v.id}  [{v.state.value}]  {d['path']}")
    if v.problem:
        print(f"  problem: {v.problem}")
    if v.job:
        print("  job: " + json.dumps({k: val for k, val in v.job.items() if val not in (None, [], {})}))
    rec = v.result or {}
    for key in ("host", "runner", "device", "attempt", "started", "ended", "duration", "exit_code"):
        if rec.get(key) is not None or d.get(key) is not None:
            print(f"  {key}: {rec.get(key, d.get(key))}")
    if rec.get("result") is not None:
        print("  result: " + json.dumps(rec["result"]))
    et = rec.get("early_terminate")
    if rec.get("stopped") is True and isinstance(et, dict):
        band, value, threshold, it = (_number(et.get(k)) for k in ("band", "value", "threshold", "iteration"))
        print(f"  stopped early (hyperband): at band {band}, {value} against threshold {threshold}", end="")
        print(f" (iteration {it})")
    from spool.layout import relocated

    for key, rel in (rec.get("result_paths") or {}).items():
        print(f"  result.{key} now at: {relocated(sp.root, v.path, str(rel))}")
    if isinstance(rec.get("usage"), dict):
        print("  usage: " + ", ".join(f"{k} {val}" for k, val in rec["usage"].items()))
    from spool.cli.prov_cmds import provenance_lines

    for line in provenance_lines(rec):
        print(f"  {line}")
    if rec.get("error"):
        err = rec["error"]
        print(f"  error: {err.get('kind')}: {err.get('message')}")
        if err.get("stderr_tail"):
            print("  stderr tail:\n    " + "\n    ".join(str(err["stderr_tail"]).splitlines()[-10:]))
    for line in _attempt_lines(pieces):
        print(f"  {line}")
    if d.get("files"):
        print("  files: " + ", ".join(d["files"]))
    return 0


def _attempt_lines(pieces: list[dict[str, Any]]) -> list[str]:
    """`spool show`'s attempts: how many, how many interrupted, the machines, one line each."""
    if not pieces or (len(pieces) == 1 and pieces[0]["state"] in ("done", "failed")):
        return []
    interrupted = sum(1 for p in pieces if p["state"] == "interrupted")
    hosts = ", ".join(hosts_spanned(pieces)) or "?"
    lines = [f"attempts: {len(pieces)} ({interrupted} interrupted), on {hosts}"]
    for p in pieces:
        took = f"{p['duration']:.1f} s" if isinstance(p.get("duration"), int | float) else "?"
        kind = f" ({p['kind']})" if p.get("kind") and p["kind"] != p["state"] else ""
        ckpt = f", checkpoint {p['checkpoint_bytes']} bytes" if "checkpoint_bytes" in p else ""
        lines.append(
            f"  {p['attempt']}: {p['state']}{kind} on {p.get('host') or '?'} ({p.get('runner') or '?'}),"
            f" {p.get('started') or '?'}, {took}{ckpt}"
        )
    return lines


def cmd_cancel(args: argparse.Namespace) -> int:
    out = _spool(args).cancel(*args.ids)
    if args.json:
        print_json(out)
    else:
        for job_id, what in out.items():
            print(f"{job_id}: {what}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.ids and not args.failed:
        raise UsageError("give job ids, or --failed [--sweep ID]")
    ids = _spool(args).retry(*args.ids, failed=args.failed, sweep=args.sweep)
    if args.json:
        print_json(ids)
    else:
        print(f"requeued {len(ids)} job(s)" + ("".join(f"\n{i}" for i in ids)))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from spool.model import job_file_schema

    print_json(job_file_schema())
    return 0


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("init", help="create a spool (folders + spool.toml)")
    common(p)
    p.add_argument("--scripts", metavar="DIR", help="scripts folder (default: <spool>/scripts)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "submit",
        help="queue a job: a script with params, job files, or '-' for stdin",
        description="spool submit SCRIPT [-p k=v ...] | spool submit FILE.json [...] | spool submit -",
    )
    common(p)
    p.add_argument("target", nargs="+", metavar="SCRIPT|FILE.json|-")
    add_job_options(p)
    p.add_argument(
        "--scripts", metavar="DIR", help="this machine's scripts folder (default: from spool.toml)"
    )
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="counts per state (and per sweep)")
    common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("ls", help="list jobs")
    common(p)
    p.add_argument("--state", choices=["pending", "claimed", "done", "failed"])
    p.add_argument("--sweep", metavar="ID")
    p.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="only jobs where EXPR holds (as `spool results --where`: 'label.group == a'); repeatable",
    )
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser(
        "show", help="one job: its state, result, error and files; or a sweep (with its hyperband table)"
    )
    common(p)
    p.add_argument("id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("cancel", help="cancel jobs (pending: at once; running: the runner stops it)")
    common(p)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("retry", help="re-queue failed jobs as new attempts (old attempts' files kept)")
    common(p)
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--failed", action="store_true", help="every failed job (of --sweep if given)")
    p.add_argument("--sweep", metavar="ID")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("schema", help="print the job file's JSON Schema")
    common(p, json_flag=False)
    p.set_defaults(func=cmd_schema)
