"""Scenario 2, network folder: three "hosts" as Linux network namespaces joined by veth pairs;
one runs sshd and exports a folder, the other two mount it with sshfs and run two runners each.

(a) 2 hosts x 2 runners race for the same jobs over sshfs: none run twice, none lost.
(b) jobs written on one host are picked up on the other with no file events at all: the scan
    alone, through sshfs's and the kernel's caches, finds them within scan interval + 1 s (p95).

Set up and torn down by the test, as root; skipped with the reason where namespaces, FUSE,
sshd or sshfs are missing. Only addresses of the namespaces made here (10.203.x.y) are used.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from rkit import Runners, count, drop_many, finished, job_bytes, make_spool, size, timeout_for, wait_for

from spool import Spool
from spool.states import State

N = size(1000, 150)
PICKUPS = size(200, 40)
SCAN = 1.0
# sshfs's own cache (dir_cache, 20 s by default) would hide new jobs that long; the kernel's 1 s
# attribute and entry caches stay on. HOUSESPOOL_SSHFS_OPTS overrides (to measure the default).
SSHFS_OPTS = os.environ.get("HOUSESPOOL_SSHFS_OPTS", "dir_cache=no")


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, FUSE mounts)"
    for tool in ("ip", "nsenter", "sshfs", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian: iproute2, util-linux, sshfs, openssh-client)"
    if not Path("/usr/sbin/sshd").exists():
        return "sshd not installed (Debian: openssh-server)"
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse (FUSE unavailable here)"
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


@dataclass
class Net:
    """Namespaces srv, h1, h2; srv exports `export/` over ssh; h1 and h2 mount it."""

    root: Path
    tag: str
    export: Path = field(init=False)
    mounts: dict[str, Path] = field(default_factory=dict)
    ns: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.export = self.root / "export"

    def enter(self, host: str) -> list[str]:
        """Run in `host`'s network namespace, keeping this mount namespace (to see the mounts)."""
        return ["nsenter", f"--net=/run/netns/hs{host}-{self.tag}"]

    def up(self) -> None:
        self.export.mkdir()
        for host in ("srv", "h1", "h2"):
            name = f"hs{host}-{self.tag}"
            _run("ip", "netns", "add", name)
            self.ns.append(name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
        for i, host in ((1, "h1"), (2, "h2")):
            a, b = f"hsv{i}{self.tag}"[:15], f"hsp{i}{self.tag}"[:15]
            _run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            _run("ip", "link", "set", a, "netns", f"hssrv-{self.tag}")
            _run("ip", "link", "set", b, "netns", f"hs{host}-{self.tag}")
            _run("ip", "-n", f"hssrv-{self.tag}", "addr", "add", f"10.203.{i}.1/24", "dev", a)
            _run("ip", "-n", f"hs{host}-{self.tag}", "addr", "add", f"10.203.{i}.2/24", "dev", b)
            _run("ip", "-n", f"hssrv-{self.tag}", "link", "set", a, "up")
            _run("ip", "-n", f"hs{host}-{self.tag}", "link", "set", b, "up")
        keys = self.root / "keys"
        keys.mkdir()
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host"))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client"))
        shutil.copy(keys / "client.pub", keys / "authorized_keys")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        cfg = keys / "sshd_config"
        cfg.write_text(
            "Port 22\nListenAddress 10.203.1.1\nListenAddress 10.203.2.1\n"
            f"HostKey {keys / 'host'}\nPidFile {keys / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp internal-sftp\nMaxStartups 50\n"
        )
        sshd = subprocess.Popen(
            [*self.enter("srv"), "/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "sshd.log", "wb"),  # noqa: SIM115
        )
        self.procs.append(sshd)
        ssh = (
            f"ssh -F /dev/null -i {keys / 'client'} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
        )
        for i, host in ((1, "h1"), (2, "h2")):
            mnt = self.root / f"mnt-{host}"
            mnt.mkdir()
            proc = None
            for _ in range(50):  # sshd may take a moment to listen
                proc = subprocess.Popen(
                    [
                        *self.enter(host),
                        "sshfs",
                        "-f",
                        f"root@10.203.{i}.1:{self.export}",
                        str(mnt),
                        "-o",
                        f"ssh_command={ssh},{SSHFS_OPTS}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=open(self.root / f"sshfs-{host}.log", "wb"),  # noqa: SIM115
                )
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and proc.poll() is None and not os.path.ismount(mnt):
                    time.sleep(0.05)
                if os.path.ismount(mnt):
                    break
                proc.kill()
                proc.wait()
                time.sleep(0.2)
            if not os.path.ismount(mnt):
                raise RuntimeError(
                    f"sshfs mount failed: {(self.root / f'sshfs-{host}.log').read_text()[-500:]}"
                )
            assert proc is not None
            self.procs.append(proc)
            self.mounts[host] = mnt

    def down(self) -> None:
        for mnt in self.mounts.values():
            for cmd in (("fusermount3", "-u", "-z", str(mnt)), ("umount", "-l", str(mnt))):
                if os.path.ismount(mnt):
                    subprocess.run(cmd, capture_output=True)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for name in self.ns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    why = _why_not()
    if why:
        pytest.skip(why)
    n = Net(tmp_path_factory.mktemp("net"), f"{os.getpid() % 100000:05d}")
    try:
        n.up()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        n.down()
        pytest.skip(f"cannot set up namespaces + sshd + sshfs here: {exc}")
    try:
        yield n
    finally:
        n.down()


@pytest.mark.slow
@timeout_for(1800, 150)
def test_two_hosts_race_over_sshfs(scenario, net):
    sp = make_spool(net.export / "race", scan_interval=0.5)
    runners = Runners(sp, scenario.tmp_path / "logs")
    scenario.runner_sets.append(runners)
    jobs = {f"net-{i:05d}": job_bytes(i) for i in range(N)}
    remote = Spool(net.mounts["h1"] / "race")  # host 1 drops the jobs
    submitted = drop_many(remote, jobs)
    for host in ("h1", "h2"):
        for k in range(2):
            runners.start(name=f"{host}r{k}", prefix=net.enter(host), spool_path=net.mounts[host] / "race")
    wait_for(lambda: finished(sp) == N and count(sp, State.CLAIMED) == 0, 1500 if N > 500 else 120, 0.2)
    runners.stop_all()
    v = scenario.check(sp, submitted)
    assert v.done == N and all(n == 1 for n in v.runs.values()) and len(v.runs) == N
    per_host = {h: sum(1 for r in v.records.values() if r["runner"].startswith(h)) for h in ("h1", "h2")}
    assert all(per_host.values()), per_host
    scenario.figures("2a network folder (sshfs)", f"2 hosts x 2 runners x {N} jobs", v, per_host=per_host)


@pytest.mark.slow
@timeout_for(900, 120)
def test_pickup_across_hosts_without_events(scenario, net):
    sp = make_spool(net.export / "pickup", scan_interval=SCAN)
    runners = Runners(sp, scenario.tmp_path / "logs")
    scenario.runner_sets.append(runners)
    runners.start(
        "--slots",
        "4",
        name="h2quiet",
        prefix=net.enter("h2"),
        spool_path=net.mounts["h2"] / "pickup",
        events=False,
    )
    time.sleep(2)
    writer = Spool(net.mounts["h1"] / "pickup")
    rng = random.Random(2)
    dropped: dict[str, float] = {}
    submitted = {}
    for i in range(PICKUPS):
        time.sleep(rng.uniform(0.05, 0.45))  # random phases against the runner's scans
        jid = f"pick-{i:03d}"
        raw = job_bytes(i)
        drop_many(writer, {jid: raw})
        dropped[jid] = time.time()
        submitted[f"{jid}.json"] = raw
    wait_for(lambda: finished(sp) == PICKUPS, 60, 0.2)
    runners.stop_all()
    v = scenario.check(sp, submitted)
    lat = sorted(
        datetime.fromisoformat(
            json.loads((v.folders[f"{j}.json"] / "claim.json").read_bytes())["claimed_at"]
        ).timestamp()
        - t
        for j, t in dropped.items()
    )
    p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    assert p95 <= SCAN + 1.0, (
        f"p95 pickup {p95:.2f} s over sshfs with no events (all: {[round(x, 2) for x in lat]})"
    )
    scenario.figures(
        "2b pickup, no events (sshfs)",
        f"{PICKUPS} jobs written on h1, runner on h2",
        v,
        p50_s=round(p50, 2),
        p95_s=round(p95, 2),
        max_s=round(lat[-1], 2),
        mount=SSHFS_OPTS,
    )


STEPPER = """\
import json, os, time
ck = os.environ["SPOOL_CHECKPOINT_DIR"]
path = os.path.join(ck, "step")
step = int(open(path).read()) if os.path.exists(path) else 0
resumed_at = step
while step < 8:
    time.sleep(0.4)
    step += 1
    with open(path + ".tmp", "w") as f:
        f.write(str(step))
    os.replace(path + ".tmp", path)
print(json.dumps({"resumed_at": resumed_at, "resumed": os.environ["SPOOL_RESUMED"]}))
"""


@pytest.mark.slow
@timeout_for(600, 120)
def test_the_checkpoint_folder_survives_a_take_over_from_another_host(scenario, net):
    """Host 1's runner dies mid-job (SIGKILL; its watcher ends the script); host 2's takes the
    job over after the lease, through its own sshfs mount, and resumes from what host 1 saved."""
    sp = make_spool(net.export / "ckpt", scan_interval=0.2, lease_seconds=3)
    (sp.scripts_dir / "stepper.py").write_text(STEPPER)
    jid = sp.submit("stepper.py")
    runners = Runners(sp, scenario.tmp_path / "logs")
    scenario.runner_sets.append(runners)
    first = runners.start(name="h1r", prefix=net.enter("h1"), spool_path=net.mounts["h1"] / "ckpt")

    def saved() -> int:
        found = list((sp.root / "claimed").glob("*/checkpoint/step"))
        try:
            return int(found[0].read_text()) if found else 0
        except (OSError, ValueError):
            return 0

    wait_for(lambda: saved() >= 3, 60, 0.05, "host 1 saved three steps")
    runners.kill(first)
    runners.start(
        name="h2r", prefix=net.enter("h2"), spool_path=net.mounts["h2"] / "ckpt", exit_when_idle=True
    )
    runners.wait_all(120)
    rec = json.loads((sp.root / "done" / jid / "result.json").read_text())
    assert rec["runner"] == "h2r" and rec["attempt"] == 2, rec
    assert rec["result"]["resumed"] == "1" and rec["result"]["resumed_at"] >= 3, rec["result"]
    assert (sp.root / "done" / jid / "checkpoint" / "step").read_text() == "8"
    first_rec = json.loads((sp.root / "done" / jid / "attempts" / "1" / "result.json").read_text())
    assert (first_rec["state"], first_rec["error"]["kind"], first_rec["runner"]) == (
        "interrupted",
        "lost_lease",
        "h1r",
    )
    assert rec["interruptions"] == 1 and [p["runner"] for p in rec["attempts"]] == ["h1r", "h2r"]
