"""Verbs for the daily loop: `sweep` (a parameter space into jobs) and `wait` (until they end)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from spool.cli.jobs_cmds import add_job_options, job_fields_from_args
from spool.cli.output import parse_assignments, print_json
from spool.cli.prov_cmds import pin_fields
from spool.errors import JobFailed, NotFound, UsageError

__all__ = ["register"]

DEFAULT_MAX_POINTS = 10_000


def cmd_sweep(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.sweeps.store import create_sweep

    sp = Spool(args.spool, scripts=args.scripts)
    if args.stop:
        return _stop(sp, args)
    if args.resume:
        return _resume(sp, args)
    if not args.target:
        raise UsageError("give a SCRIPT (with --grid/--random...) or a W&B sweep file (.yaml/.json)")
    fixed = parse_assignments(args.param, "-p")
    plan = _plan(args, fixed)
    if args.dry_run:
        _print_dry_run(plan, args)
        return 0
    template = job_fields_from_args(args)
    template.pop("params", None)
    if plan.adaptive is not None and fixed:
        template["params"] = fixed  # each proposed point is merged over them
    template.update(pin_fields(sp, plan.script, args))  # {} unless --pin
    sid, ids = create_sweep(sp, plan, template)
    if args.json:
        print_json({"sweep": sid, "count": len(ids), "jobs": ids})
    elif plan.adaptive is not None:
        cap = plan.adaptive["run_cap"]
        print(
            f"sweep {sid}: bayes, {len(ids)} point(s) queued; runners propose the rest as results arrive "
            f"(run_cap {cap if cap is not None else 'none: stop it with spool sweep --stop ' + sid})"
        )
    else:
        print(f"sweep {sid}: {len(ids)} job(s) queued")
    if not args.json:
        print(f"  spool wait --sweep {sid}    spool results --sweep {sid}    spool report --sweep {sid}")
    return 0


def _resume(sp: Any, args: argparse.Namespace) -> int:
    from spool.sweeps.store import load_sweep, resume_sweep

    if args.target:
        raise UsageError("--resume ID takes no SCRIPT or sweep file")
    added = resume_sweep(sp, args.resume)
    rec = load_sweep(sp, args.resume)
    if args.json:
        print_json({"sweep": args.resume, "added": added, "count": len(rec.points)})
    else:
        print(f"sweep {args.resume}: added {len(added)} missing job(s) of {len(rec.points)}")
    return 0


def _plan(args: argparse.Namespace, fixed: dict[str, Any]) -> Any:
    """The sweep's plan: from a W&B sweep file, a bayes definition, or the grid/random flags."""
    from spool.sweeps import plan_from_flags, plan_from_wandb

    max_points = None if args.yes else DEFAULT_MAX_POINTS
    target = args.target
    if target.endswith((".yaml", ".yml", ".json")) and Path(target).is_file():
        if args.grid or args.uniform or args.log_uniform or args.int_uniform or args.choice:
            raise UsageError("a sweep file carries its own parameters; drop --grid/--uniform/... ")
        if args.method or args.metric or args.run_cap is not None:
            raise UsageError("a sweep file carries its own method, metric and run_cap; drop the flags")
        plan = plan_from_wandb(
            Path(target).read_text(),
            target,
            random_n=args.random,
            sample_seed=args.sample_seed,
            seeds=args.seeds,
            max_points=max_points,
        )
        if fixed:
            plan.points[:] = [{**fixed, **p} for p in plan.points]
        for note in plan.notes:
            print(f"note: {note}", file=sys.stderr)
        return plan
    if args.method == "bayes":
        return _bayes_plan(target, fixed, args)
    if args.method is not None and (args.method == "grid") != (args.random is None):
        raise UsageError("--method random takes --random N; --method grid takes no --random")
    return plan_from_flags(
        target,
        args.grid or [],
        args.random,
        args.uniform or [],
        args.log_uniform or [],
        args.int_uniform or [],
        args.choice or [],
        args.seeds,
        fixed,
        args.sample_seed,
        max_points=max_points,
    )


def _print_dry_run(plan: Any, args: argparse.Namespace) -> None:
    from spool.sweeps import format_points

    early = _early_terminate(plan)
    if plan.adaptive is not None:
        if args.json:
            print_json({"script": plan.script, "method": "bayes", "adaptive": plan.adaptive, **early})
        else:
            m, cap = plan.adaptive["metric"], plan.adaptive["run_cap"]
            print(
                f"a bayes sweep of {plan.script}: {m['name']} ({m['goal']}), run_cap {cap}; points are "
                "proposed as results arrive; nothing written (--dry-run)"
            )
            _print_early(early)
    elif args.json:
        print_json({"script": plan.script, "count": len(plan.points), "points": plan.points, **early})
    else:
        print(format_points(plan.points))
        print(f"{len(plan.points)} point(s); nothing written (--dry-run)")
        _print_early(early)


def _bayes_plan(target: str, fixed: dict[str, Any], args: argparse.Namespace) -> Any:
    from spool.sweeps.adaptive_plan import plan_bayes_from_flags

    if args.random is not None:
        raise UsageError("--random N does not apply to --method bayes; give --run-cap N")
    flags = {k: getattr(args, k) or [] for k in ("grid", "uniform", "log_uniform", "int_uniform", "choice")}
    return plan_bayes_from_flags(
        target,
        flags,
        fixed,
        metric=args.metric,
        goal=args.goal,
        run_cap=args.run_cap,
        sample_seed=args.sample_seed,
        seeds=args.seeds,
        target=args.target_value,
    )


def _stop(sp: Any, args: argparse.Namespace) -> int:
    """Close an adaptive sweep to new proposals; its queued and running jobs go on."""
    from spool.protocol import json_lines, publish_bytes
    from spool.sweeps.slots import stop_path
    from spool.sweeps.store import load_sweep

    load_sweep(sp, args.stop, with_slots=False)  # NotFound names it
    publish_bytes(stop_path(sp.layout, args.stop), json_lines({"reason": "stopped by spool sweep --stop"}))
    if args.json:
        print_json({"sweep": args.stop, "stopped": True})
    else:
        print(f"sweep {args.stop}: no more points will be proposed (queued and running jobs go on)")
    return 0


class _AdaptiveWait:
    """`spool wait --sweep` on an adaptive sweep proposes too (it is one of the sweep's
    proposers) and waits until the sweep is closed and every slot's job has ended."""

    def __init__(self, sp: Any, sweep_id: str, extra: list[str]):
        self.sp, self.sweep_id, self.extra = sp, sweep_id, extra
        self._closed = False

    def ids(self) -> list[str]:
        from spool.sweeps.adaptive import propose_next
        from spool.sweeps.slots import read_slots

        propose_next(self.sp, self.sweep_id)
        from spool.sweeps.adaptive_view import adaptive_view
        from spool.sweeps.store import load_sweep

        doc = load_sweep(self.sp, self.sweep_id, with_slots=False).doc
        settle = self.sp.settings.settle_seconds
        self._closed = not adaptive_view(self.sp.layout, self.sweep_id, doc, settle)["open"]
        slots = read_slots(self.sp.layout, self.sweep_id)
        with_points = [n for n, rec in sorted(slots.items()) if isinstance(rec.get("point"), dict)]
        return self.extra + [f"{self.sweep_id}-{n:05d}" for n in with_points]

    def closed(self) -> bool:
        return self._closed


def _early_terminate(plan: Any) -> dict[str, Any]:
    """`{"early_terminate": {..., "bands": [the first ten]}}` for a dry run, or {}."""
    if plan.early_terminate is None:
        return {}
    from spool.sweeps.hyperband import Hyperband

    bands = Hyperband.from_definition(plan.early_terminate, plan.metric or {}).bands
    return {"early_terminate": {**plan.early_terminate, "bands": list(bands[:10])}}


def _print_early(early: dict[str, Any]) -> None:
    if early:
        et = early["early_terminate"]
        how = "the value at the band" if et["strict"] else "the best so far"
        bands = ", ".join(str(b) for b in et["bands"][:6]) + (", ..." if len(et["bands"]) > 6 else "")
        print(f"hyperband: runs judged at bands {bands} (eta {et['eta']}, on {how})")


def cmd_wait(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.waiting import eta_seconds, snapshot

    sp = Spool(args.spool)
    ids = list(args.ids)
    adaptive = None
    if args.sweep:
        from spool.sweeps.store import load_sweep

        rec = load_sweep(sp, args.sweep)
        if isinstance(rec.doc.get("adaptive"), dict):
            adaptive = _AdaptiveWait(sp, args.sweep, ids)
            ids = adaptive.ids()
        else:
            ids += rec.job_ids
    if not ids and not args.sweep:
        ids = sp.unfinished_ids()  # as `tsp -w` / the shell's `wait`: whatever is queued or running now
        if not ids:
            if args.json:
                print_json({"done": [], "failed": []})
            else:
                sys.stderr.write("nothing pending or running\n")
            return 0
    prog = snapshot(sp.layout, ids)
    unknown = [i for i, s in prog.states.items() if s is None]
    if unknown and not args.sweep:
        raise NotFound(
            f"no job {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )
    tty = sys.stderr.isatty() and not args.json
    started, base = time.monotonic(), prog.finished
    deadline = started + args.timeout if args.timeout else None
    last_line = ""
    last_print = 0.0
    while True:
        eta = eta_seconds(started, base, prog)
        line = prog.line(eta)
        now = time.monotonic()
        if tty:
            done_frac = prog.finished / max(len(prog.states), 1)
            bar = "#" * int(done_frac * 30)
            sys.stderr.write(f"\r[{bar:<30}] {line}\x1b[K")
            sys.stderr.flush()
        elif not args.json and line != last_line and (now - last_print >= 5 or prog.all_ended):
            sys.stderr.write(line + "\n")
            last_line, last_print = line, now
        if prog.all_ended and (adaptive is None or adaptive.closed()):
            break
        if deadline is not None and now > deadline:
            if tty:
                sys.stderr.write("\n")
            raise JobFailed(f"timed out after {args.timeout:g} s: {line}")
        time.sleep(args.interval)
        if adaptive is not None:
            ids = adaptive.ids()
        prog = snapshot(sp.layout, ids)
    if tty:
        sys.stderr.write("\n")
    if args.json:
        print_json(
            {"done": [i for i, s in prog.states.items() if s and s.value == "done"], "failed": prog.failed}
        )
    if prog.failed:
        if not args.json:
            for job_id in prog.failed:
                v = sp.get(job_id)
                err = (v.result or {}).get("error") or {}
                print(f"failed {job_id}: {err.get('kind', '?')}: {err.get('message', '')}")
        return 1
    return 0


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="queue one job per point of a parameter space (flags or a W&B sweep file)",
        description="spool sweep SCRIPT --grid lr=0.1,0.01 [--seeds 3] | spool sweep sweep.yaml",
    )
    common(p)
    p.add_argument("target", nargs="?", metavar="SCRIPT|SWEEP.yaml")
    space = p.add_argument_group("parameter space")
    space.add_argument("--grid", action="append", metavar="K=V1,V2", help="grid values; repeatable")
    space.add_argument("--random", type=int, metavar="N", help="N random points instead of the full grid")
    space.add_argument("--uniform", action="append", metavar="K=LO:HI", help="uniform range (with --random)")
    space.add_argument("--log-uniform", action="append", metavar="K=LO:HI", help="log-uniform range")
    space.add_argument("--int-uniform", action="append", metavar="K=LO:HI", help="integer range")
    space.add_argument("--choice", action="append", metavar="K=A,B", help="categorical values")
    space.add_argument(
        "--seeds", type=int, default=1, metavar="K", help="repeat every point with seed=0..K-1"
    )
    space.add_argument("--sample-seed", type=int, default=0, help="seed of the random sampler (reproducible)")
    add_job_options(p)
    p.add_argument("--scripts", metavar="DIR", help="this machine's scripts folder")
    p.add_argument("--dry-run", action="store_true", help="print the points, write nothing")
    p.add_argument("--yes", action="store_true", help=f"allow more than {DEFAULT_MAX_POINTS} points")
    p.add_argument("--resume", metavar="ID", help="add the missing jobs of a sweep cut short")
    p.add_argument("--stop", metavar="ID", help="propose no more points for an adaptive sweep")
    ad = p.add_argument_group("adaptive search (--method bayes)")
    ad.add_argument("--method", choices=("grid", "random", "bayes"), help="how points are chosen")
    ad.add_argument("--metric", metavar="NAME", help="the metric bayes optimises (a key of the JSON lines)")
    ad.add_argument("--goal", choices=("min", "max", "minimize", "maximize"), default="minimize")
    ad.add_argument("--run-cap", type=int, metavar="N", help="the total number of runs")
    ad.add_argument(
        "--target", dest="target_value", type=float, metavar="X", help="propose no more once a run reaches X"
    )
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "wait",
        help="block until jobs end (no ids: every job pending or running now); exit 1 if any failed",
    )
    common(p)
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--sweep", metavar="ID", help="every job of this sweep")
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (exit 1)")
    p.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_wait)
