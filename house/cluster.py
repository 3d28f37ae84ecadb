"""Growing past the house: runners as a Slurm job array or an HTCondor cluster of jobs.

No home-made cluster: the cluster's own scheduler starts ordinary runners with
``--exit-when-idle`` on machines that mount the spool, each drains what it can and ends.
``spool slurm`` prints an sbatch script, ``spool condor`` an HTCondor submit description;
``--submit`` hands it to ``sbatch`` / ``condor_submit`` when they are on PATH (else one clear
error line, exit 1).

Generate on the cluster (its login node): the interpreter (this ``sys.executable``, or
``--interpreter``) and the spool path are written as absolute paths as this machine sees
them, and the compute nodes must see them at the same place.

Each runner is named after its array task (``slurm-<array job>-<task>``,
``condor-<cluster>-<process>``) so ``spool runners`` tells them apart. Slurm is asked
(``--signal=B:INT@<grace>``) to send SIGINT to the runner ``grace`` seconds before the time
limit, so it starts nothing new; the SIGTERM at the limit is its second signal and hands the
running job back to ``pending/``. HTCondor sends one SIGTERM when it removes or evicts a job:
the runner stops taking work, and a job still running when HTCondor kills it is taken over
once its lease expires and goes back to ``pending/`` as interrupted (no retry spent). A
``scancel`` signals the runner and its script at once: the runner writes that up as an
interruption too (``runner.core.interrupt``).
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from house.service_files import runner_command
from runner.machine.capabilities import Run, subprocess_run_default
from spool.errors import SpoolError, UsageError
from spool.protocol import publish_text

__all__ = [
    "SubmitError",
    "slurm_script",
    "condor_submit_description",
    "condor_arguments",
    "submit",
    "SLURM_RUNNER_NAME",
    "CONDOR_RUNNER_NAME",
]

SLURM_RUNNER_NAME = "slurm-${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}"
CONDOR_RUNNER_NAME = "condor-$(Cluster)-$(Process)"
SUBMIT_TIMEOUT = 120.0


class SubmitError(SpoolError):
    """sbatch/condor_submit is missing or refused the script (exit 1)."""

    exit_code = 1


def _runner_argv(interpreter: str, spool: str, flags: Sequence[str], name: str) -> list[str]:
    words = [w for w in flags if w != "--exit-when-idle"]
    return runner_command(interpreter, spool, ["--exit-when-idle", "--name", name, *words])


def _option_lines(extra: Sequence[str]) -> list[list[str]]:
    """``["--qos", "long", "--constraint=v100"]`` -> ``[["--qos", "long"], ["--constraint=v100"]]``."""
    lines: list[list[str]] = []
    for word in extra:
        if word.startswith("-") or not lines:
            lines.append([word])
        else:
            lines[-1].append(word)
    return lines


def slurm_script(
    *,
    interpreter: str,
    spool: str,
    array: int,
    runner_flags: Sequence[str] = (),
    max_parallel: int | None = None,
    job_name: str = "housespool",
    time: str | None = None,
    partition: str | None = None,
    cpus_per_task: int | None = None,
    mem: str | None = None,
    gres: str | None = None,
    account: str | None = None,
    output: str | None = None,
    grace: int = 120,
    extra: Sequence[str] = (),
) -> str:
    """An sbatch script: a job array of ``array`` runners that drain the spool and exit."""
    if array < 1:
        raise UsageError("--array must be at least 1")
    spec = f"0-{array - 1}" + (f"%{max_parallel}" if max_parallel else "")
    options: list[tuple[str, object]] = [
        ("--job-name", job_name),
        ("--array", spec),
        ("--time", time),
        ("--partition", partition),
        ("--cpus-per-task", cpus_per_task),
        ("--mem", mem),
        ("--gres", gres),
        ("--account", account),
        ("--output", output),
    ]
    lines = [
        "#!/bin/bash",
        "# housespool runners as a Slurm job array, written by `spool slurm`: each array task is one",
        "# runner that works on the spool until it is drained (--exit-when-idle), then ends.",
    ]
    lines += [f"#SBATCH {flag}={value}" for flag, value in options if value is not None]
    if grace > 0:
        lines += [
            f"# SIGINT {grace} s before the time limit: the runner starts nothing new; the SIGTERM at",
            "# the limit is its second signal and hands a running job back to pending/",
            f"#SBATCH --signal=B:INT@{grace}",
        ]
    lines += ["#SBATCH " + " ".join(words) for words in _option_lines(extra)]
    argv = _runner_argv(interpreter, spool, runner_flags, SLURM_RUNNER_NAME)
    command = " ".join(f'"{w}"' if w == SLURM_RUNNER_NAME else shlex.quote(w) for w in argv)
    lines += ["", "set -eu", "export PYTHONUNBUFFERED=1", f"exec {command}", ""]
    return "\n".join(lines)


def _condor_word(word: str) -> str:
    """One word of HTCondor's new ``arguments`` syntax (inside the double quotes)."""
    word = word.replace('"', '""')
    if word and not any(c.isspace() or c == "'" for c in word):
        return word
    return "'" + word.replace("'", "''") + "'"


def condor_arguments(words: Sequence[str]) -> str:
    return '"' + " ".join(_condor_word(w) for w in words) + '"'


def condor_submit_description(
    *,
    interpreter: str,
    spool: str,
    count: int,
    runner_flags: Sequence[str] = (),
    request_cpus: int | None = None,
    request_memory: str | None = None,
    request_gpus: int | None = None,
    requirements: str | None = None,
    batch_name: str = "housespool",
    extra: Sequence[str] = (),
) -> str:
    """An HTCondor submit description queueing ``count`` runners."""
    if count < 1:
        raise UsageError("--count must be at least 1")
    argv = _runner_argv(interpreter, spool, runner_flags, CONDOR_RUNNER_NAME)
    pairs: list[tuple[str, object]] = [
        ("universe", "vanilla"),
        ("executable", argv[0]),
        ("arguments", condor_arguments(argv[1:])),
        ("batch_name", batch_name),
        ("# the interpreter and the spool are on the shared filesystem: nothing is copied", None),
        ("transfer_executable", "false"),
        ("should_transfer_files", "IF_NEEDED"),
        ("when_to_transfer_output", "ON_EXIT"),
        ("environment", '"PYTHONUNBUFFERED=1"'),
        ("log", "housespool-$(Cluster).log"),
        ("output", "housespool-$(Cluster)-$(Process).out"),
        ("error", "housespool-$(Cluster)-$(Process).err"),
        ("request_cpus", request_cpus),
        ("request_memory", request_memory),
        ("request_gpus", request_gpus),
        ("requirements", requirements),
    ]
    lines = [
        "# housespool runners on HTCondor, written by `spool condor`: each job is one runner that",
        "# works on the spool until it is drained (--exit-when-idle), then ends. The execute",
        "# machines must mount the spool (and this interpreter) at the same paths.",
    ]
    for key, value in pairs:
        if key.startswith("#"):
            lines.append(key)
        elif value is not None:
            lines.append(f"{key:<23} = {value}")
    lines += list(extra)
    lines += [f"queue {count}", ""]
    return "\n".join(lines)


def submit(
    text: str,
    tool: str,
    path: Path,
    *,
    run: Run = subprocess_run_default,
    which: Callable[[str], str | None] = shutil.which,
    say: Callable[[str], None] = print,
) -> int:
    """Write ``text`` to ``path`` and run ``tool path``; SubmitError if the tool is missing or fails."""
    exe = which(tool)
    if exe is None:
        raise SubmitError(
            f"{tool} not found on PATH: run this on the cluster's login node, or save the script "
            f"with -o FILE and submit it there with {tool}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_text(path, text)
    rc, out, err = run([exe, str(path)], SUBMIT_TIMEOUT)
    if rc != 0:
        first = next((ln.strip() for ln in (err + "\n" + out).splitlines() if ln.strip()), f"exit {rc}")
        raise SubmitError(f"{tool} {path} failed: {first}")
    say(f"wrote {path}")
    if out.strip():
        say(out.strip())
    return 0


def default_script_path(suffix: str) -> Path:
    return Path(os.getcwd()) / f"housespool-runners{suffix}"
