"""A real single-node Slurm for tests: munged, slurmctld and slurmd with a private slurm.conf.

Everything lives in one temporary folder (munge key and socket, state, spool, logs) and on
loopback ports picked free at start, so two test runs on one machine do not meet. The daemons
run in the foreground (`munged -F`, `slurmctld -D`, `slurmd -D`) as children of the test and are
stopped by their own pids once the queue is empty. `SlurmCluster.unavailable()` says why a
machine cannot have one (not root, Debian's `slurm-wlm`/`munge` missing); tests skip with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["SlurmCluster"]

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


class SlurmCluster:
    """One node (this machine, 2 CPUs), one partition; `env` points clients at it."""

    def __init__(self, root: Path, cpus: int = 2, kill_wait: int = 30):
        self.root = root
        self.cpus = cpus
        self.kill_wait = kill_wait
        self.node = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    @staticmethod
    def unavailable() -> str | None:
        """Why this machine cannot stand up a cluster (None: it can)."""
        if os.geteuid() != 0:
            return "a private Slurm needs root (slurmd runs jobs as their users)"
        missing = [n for n in (*DAEMONS, *CLIENTS) if _which(n) is None]
        if missing:
            return f"no {', '.join(missing)} (Debian: apt-get install slurm-wlm munge)"
        return None

    # -- start -----------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> SlurmCluster:
        for sub in ("munge", "state", "slurmd", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # munged wants every folder above its socket searchable
        munge = self.root / "munge"
        munge.chmod(0o700)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.socket = munge / "munge.sock"
        self._spawn(
            "munged",
            [
                "-F",
                "-f",
                f"--socket={self.socket}",
                f"--key-file={key}",
                f"--pid-file={munge}/pid",
                f"--seed-file={munge}/seed",
                f"--log-file={self.root}/log/munged.log",
            ],
        )
        self._wait(lambda: self.socket.exists(), timeout, "munged made no socket")
        ctld_port, d_port = _free_ports(2)
        self.conf.write_text(self._conf(ctld_port, d_port))
        self._spawn("slurmctld", ["-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._run("sinfo", "-h").returncode == 0, timeout, "slurmctld did not answer")
        self._spawn("slurmd", ["-D", "-f", str(self.conf), "-N", self.node])
        self._wait(self._node_idle, timeout, "the node did not come up idle")
        return self

    def _conf(self, ctld_port: int, d_port: int) -> str:
        r = self.root
        return "\n".join(
            [
                "ClusterName=housespooltest",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={d_port}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.socket}",
                f"StateSaveLocation={r}/state",
                f"SlurmdSpoolDir={r}/slurmd",
                f"SlurmctldPidFile={r}/slurmctld.pid",
                f"SlurmdPidFile={r}/slurmd.pid",
                f"SlurmctldLogFile={r}/log/slurmctld.log",
                f"SlurmdLogFile={r}/log/slurmd.log",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SlurmdParameters=config_overrides",
                "ReturnToService=2",
                "MpiDefault=none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SchedulerType=sched/backfill",
                f"KillWait={self.kill_wait}",
                "InactiveLimit=0",
                "MinJobAge=2",
                f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000 State=UNKNOWN",
                "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        exe = _which(name)
        assert exe is not None
        log = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen([exe, *args], env=self.env, stdout=log, stderr=log)
        log.close()

    def _run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        exe = _which(argv[0]) or argv[0]
        return subprocess.run([exe, *argv[1:]], env=self.env, capture_output=True, text=True, timeout=timeout)

    def _node_idle(self) -> bool:
        p = self._run("sinfo", "-h", "-N", "-o", "%t")
        return p.returncode == 0 and p.stdout.strip() in ("idle", "mix", "alloc")

    def _wait(self, cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited {proc.returncode}: {self.log(name)}")
            if cond():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} in {timeout:g} s: {self.log('slurmctld')} {self.log('slurmd')}")

    def log(self, name: str) -> str:
        text = ""
        for p in (self.root / "log").glob(f"{name}*"):
            text += p.read_text(errors="replace")[-1500:]
        return text

    # -- use -------------------------------------------------------------------------------
    def sbatch(self, script: Path, *flags: str) -> str:
        """Submit `script`; its job id."""
        p = self._run("sbatch", "--parsable", *flags, str(script))
        assert p.returncode == 0, p.stderr
        return p.stdout.strip().split(";")[0]

    def scancel(self, *args: str) -> None:
        p = self._run("scancel", *args)
        assert p.returncode == 0, p.stderr

    def jobs(self) -> list[tuple[str, str]]:
        """(job id, state) of every job in the queue (array tasks one by one)."""
        p = self._run("squeue", "-h", "-r", "-o", "%i %T")
        assert p.returncode == 0, p.stderr
        return [tuple(line.split()[:2]) for line in p.stdout.splitlines() if line.strip()]  # type: ignore[misc]

    def running(self) -> int:
        return sum(1 for _, state in self.jobs() if state == "RUNNING")

    def wait_empty(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.jobs():
                return
            time.sleep(0.3)
        raise AssertionError(f"the queue is not empty after {timeout:g} s: {self.jobs()}")

    # -- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel what is left, wait for the queue to empty, then stop the daemons (our pids)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                if self.jobs():
                    self._run("scancel", "--full", "-u", "root")
                    self.wait_empty(self.kill_wait + 30)
            except (AssertionError, subprocess.TimeoutExpired):
                pass
        for name in reversed(DAEMONS):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
