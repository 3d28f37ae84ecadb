"""`spool doctor`, `spool slurm`, `spool condor`: plugged in through the `housespool.verbs` entry point,
and `spool runner install|uninstall|status`, plugged into the runner's verb."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def cmd_doctor(args: argparse.Namespace) -> int:
    from house.doctor import FAIL, format_checks, run_doctor
    from spool.api import resolve_spool_path
    from spool.cli.output import print_json

    root = resolve_spool_path(args.spool)
    python = os.path.abspath(args.python) if args.python else None
    checks = run_doctor(root, python=python, scripts=args.scripts, probe_torch=not args.no_torch)
    failed = any(c.status == FAIL for c in checks)
    if args.json:
        print_json({"spool": str(root), "ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        sys.stdout.write(f"spool doctor: {root}\n" + format_checks(checks))
    return 1 if failed else 0


def _target(args: argparse.Namespace) -> tuple[str, str, list[str]]:
    """(interpreter, spool, runner flags) as the cluster's nodes will see them."""
    from house.service_install import runner_flags
    from spool.api import resolve_spool_path

    interpreter = os.path.abspath(args.interpreter or sys.executable)
    spool = resolve_spool_path(args.spool)
    if not (spool / "spool.toml").exists():
        what = "cannot submit" if args.submit else "warning"
        msg = f"{spool} is not a spool on this machine (the nodes must see it at this path)"
        if args.submit:
            from spool.errors import NotFound

            raise NotFound(f"{what}: {msg}")
        sys.stderr.write(f"spool {args.verb}: {what}: {msg}\n")
    return interpreter, str(spool), runner_flags(args)


def _emit(args: argparse.Namespace, text: str, tool: str, suffix: str) -> int:
    from house.cluster import default_script_path, submit

    if args.submit:
        path = Path(args.out).absolute() if args.out else default_script_path(suffix)
        return submit(text, tool, path)
    if args.out:
        from spool.protocol import publish_text

        publish_text(Path(args.out), text)
        sys.stderr.write(f"wrote {Path(args.out).absolute()}; submit it with: {tool} {args.out}\n")
    else:
        sys.stdout.write(text)
    return 0


def cmd_slurm(args: argparse.Namespace) -> int:
    from house.cluster import slurm_script

    interpreter, spool, flags = _target(args)
    text = slurm_script(
        interpreter=interpreter,
        spool=spool,
        array=args.array,
        runner_flags=flags,
        max_parallel=args.max_parallel,
        job_name=args.job_name,
        time=args.time,
        partition=args.partition,
        cpus_per_task=args.cpus_per_task,
        mem=args.mem,
        gres=args.gres,
        account=args.account,
        output=args.log,
        grace=args.grace,
        extra=args.extra,
    )
    return _emit(args, text, "sbatch", ".sbatch")


def cmd_condor(args: argparse.Namespace) -> int:
    from house.cluster import condor_submit_description

    interpreter, spool, flags = _target(args)
    text = condor_submit_description(
        interpreter=interpreter,
        spool=spool,
        count=args.count,
        runner_flags=flags,
        request_cpus=args.request_cpus,
        request_memory=args.request_memory,
        request_gpus=args.request_gpus,
        requirements=args.requirements,
        batch_name=args.job_name,
        extra=args.extra,
    )
    return _emit(args, text, "condor_submit", ".sub")


def _runner_options(p: argparse.ArgumentParser) -> None:
    from runner.core.options import add_flags

    add_flags(p, cluster=True)
    p.add_argument(
        "--interpreter",
        metavar="PATH",
        help="python with housespool installed, as the nodes see it (default: this one)",
    )
    p.add_argument("--job-name", default="housespool", help="the cluster job's name (default housespool)")
    p.add_argument("-o", "--out", metavar="FILE", help="write the script to FILE instead of printing it")
    p.add_argument(
        "--submit",
        action="store_true",
        help="submit it now (writes -o FILE, default ./housespool-runners.*, then runs the tool)",
    )


def _cmd_service(args: argparse.Namespace) -> int:
    from house.service_install import cmd_service

    return cmd_service(args)


def register(sub: Any, common: Any) -> None:
    from runner.cli import plug_service

    plug_service(_cmd_service)  # `spool runner install|uninstall|status`
    p = sub.add_parser(
        "doctor",
        help="check this machine and the spool: folders, renames, clock, sync, git, torch",
        description="Check that this machine can work on the spool and print a fix for each problem. "
        "Exit 1 if any check fails.",
    )
    common(p)
    p.add_argument("--python", metavar="PATH", help="the job interpreter to check (default: this one)")
    p.add_argument("--scripts", metavar="DIR", help="this machine's scripts folder, if not spool.toml's")
    p.add_argument("--no-torch", action="store_true", help="do not probe torch (faster)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "slurm",
        help="print (or --submit) an sbatch script running runners as a Slurm job array",
        description="An sbatch script whose array tasks each run `spool runner --exit-when-idle` on a "
        "cluster that mounts the spool. More sbatch options after `--`, e.g. -- --qos=long.",
    )
    common(p, json_flag=False)
    p.add_argument("--array", type=int, required=True, metavar="N", help="runners: array tasks 0..N-1")
    p.add_argument("--max-parallel", type=int, metavar="M", help="at most M tasks at once (%%M)")
    p.add_argument("--time", help="time limit, e.g. 04:00:00")
    p.add_argument("--partition", help="partition")
    p.add_argument("--cpus-per-task", type=int, metavar="C", help="cpus per runner")
    p.add_argument("--mem", help="memory per runner, e.g. 16G")
    p.add_argument("--gres", help="generic resources, e.g. gpu:1")
    p.add_argument("--account", help="account to charge")
    p.add_argument("--log", metavar="PATTERN", help="sbatch --output pattern, e.g. logs/%%x-%%A_%%a.out")
    p.add_argument(
        "--grace",
        type=int,
        default=120,
        metavar="S",
        help="SIGINT the runner S seconds before the time limit (default 120; 0: off)",
    )
    _runner_options(p)
    p.add_argument("extra", nargs="*", metavar="-- SBATCH_OPTION", help="more #SBATCH options, after --")
    p.set_defaults(func=cmd_slurm)

    p = sub.add_parser(
        "condor",
        help="print (or --submit) an HTCondor submit description running runners",
        description="An HTCondor submit description queueing runners (`spool runner --exit-when-idle`) "
        "on machines that mount the spool. More submit commands after `--`, e.g. -- '+MaxRuntime = 7200'.",
    )
    common(p, json_flag=False)
    p.add_argument("--count", "--array", type=int, required=True, metavar="N", help="runners to queue")
    p.add_argument("--request-cpus", type=int, metavar="C", help="request_cpus")
    p.add_argument("--request-memory", metavar="M", help="request_memory, e.g. '8 GB'")
    p.add_argument("--request-gpus", type=int, metavar="G", help="request_gpus")
    p.add_argument("--requirements", metavar="EXPR", help="a requirements expression")
    _runner_options(p)
    p.add_argument("extra", nargs="*", metavar="-- LINE", help="more submit-description lines, after --")
    p.set_defaults(func=cmd_condor)
