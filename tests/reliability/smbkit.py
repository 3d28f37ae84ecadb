"""A real SMB3 share for the reliability suite: Samba's smbd in a network namespace of its own,
and "hosts" (namespaces h1, h2) that mount it with smbnetfs (FUSE over libsmbclient, the library
GNOME's gvfs uses too), each at a different path.

Only addresses of the namespaces made here (10.204.x.y) are used. smbd and smbnetfs are started
with `setsid`: smbd, stopping, signals its whole process group, which must not be the test's.
`why_not()` names what is missing (root, FUSE, the Debian packages `samba` and `smbnetfs`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.204"
HOSTS = ("h1", "h2")


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, FUSE mounts)"
    for tool in ("ip", "nsenter", "setsid", "smbnetfs", "fusermount3"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian: iproute2, util-linux, smbnetfs, fuse3)"
    if not Path("/usr/sbin/smbd").exists():
        return "smbd not installed (Debian: samba)"
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse (FUSE unavailable here)"
    return None


def _run(*cmd: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")


SMB_CONF = """[global]
  server role = standalone server
  interfaces = {addrs}
  bind interfaces only = yes
  smb ports = 445
  disable netbios = yes
  server min protocol = SMB3
  private dir = {state}
  lock directory = {state}
  state directory = {state}
  cache directory = {state}
  pid directory = {state}
  ncalrpc dir = {state}/ncalrpc
  log file = {state}/log.%m
  log level = 1
  map to guest = Bad User
  load printers = no
  printcap name = /dev/null
  disable spoolss = yes
  passdb backend = tdbsam:{state}/passdb.tdb
[spool]
  path = {export}
  read only = no
  guest ok = yes
  force user = root
"""

CLIENT_CONF = """[global]
  client min protocol = {proto}
  client max protocol = {proto}
  name resolve order = host
  disable netbios = yes
"""


@dataclass
class SmbNet:
    """Namespaces srv, h1, h2 joined by veth pairs; smbd in srv shares `export/` as `spool`."""

    root: Path
    tag: str
    proto: str = "SMB3"
    export: Path = field(init=False)
    mounts: dict[str, Path] = field(default_factory=dict)  # host -> the share, through its mount
    ns: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _fuse: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.export = self.root / "export"

    def netns(self, host: str) -> str:
        return f"hb{host}-{self.tag}"

    def enter(self, host: str) -> list[str]:
        """Run in `host`'s network namespace, keeping this mount namespace (to see the mounts)."""
        return ["nsenter", f"--net=/run/netns/{self.netns(host)}"]

    def up(self) -> None:
        self.export.mkdir()
        self.export.chmod(0o777)
        for host in ("srv", *HOSTS):
            _run("ip", "netns", "add", self.netns(host))
            self.ns.append(self.netns(host))
            _run("ip", "-n", self.netns(host), "link", "set", "lo", "up")
        for i, host in enumerate(HOSTS, 1):
            a, b = f"hbv{i}{self.tag}"[:15], f"hbp{i}{self.tag}"[:15]
            _run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            _run("ip", "link", "set", a, "netns", self.netns("srv"))
            _run("ip", "link", "set", b, "netns", self.netns(host))
            _run("ip", "-n", self.netns("srv"), "addr", "add", f"{SUBNET}.{i}.1/24", "dev", a)
            _run("ip", "-n", self.netns(host), "addr", "add", f"{SUBNET}.{i}.2/24", "dev", b)
            _run("ip", "-n", self.netns("srv"), "link", "set", a, "up")
            _run("ip", "-n", self.netns(host), "link", "set", b, "up")
        self._smbd()
        for i, host in enumerate(HOSTS, 1):
            # the two hosts see the share at different paths (and depths)
            mnt = self.root / ("mnt-h1" if i == 1 else "hosts/h2/smb")
            self._mount(host, i, mnt)

    def _start(self, cmd: list[str], log: str, env: dict[str, str] | None = None) -> None:
        with open(self.root / log, "wb") as out:
            self.procs.append(
                subprocess.Popen(
                    ["setsid", *cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env
                )
            )

    def _smbd(self) -> None:
        state = self.root / "smbd"
        state.mkdir()
        addrs = " ".join(f"{SUBNET}.{i}.1/24" for i in range(1, len(HOSTS) + 1))
        conf = self.root / "smb.conf"
        conf.write_text(SMB_CONF.format(addrs=addrs, state=state, export=self.export))
        cmd = [*self.enter("srv"), "/usr/sbin/smbd", "--foreground", "--no-process-group"]
        self._start([*cmd, "--debug-stdout", "-s", str(conf)], "smbd.log")

    def _mount(self, host: str, i: int, mnt: Path) -> None:
        home = self.root / f"home-{host}"
        (home / ".smb").mkdir(parents=True)
        (home / ".smb" / "smb.conf").write_text(CLIENT_CONF.format(proto=self.proto))
        (home / ".smb" / "smbnetfs.conf").write_text(
            f'smb_query_browsers "false"\nauth "guest" ""\nhost {SUBNET}.{i}.1 visible=true\n'
        )
        for f in (home / ".smb").iterdir():
            f.chmod(0o600)
        mnt.mkdir(parents=True)
        env = {**os.environ, "HOME": str(home)}
        self._start([*self.enter(host), "smbnetfs", "-f", str(mnt)], f"smbnetfs-{host}.log", env)
        self._fuse.append(mnt)
        share = mnt / f"{SUBNET}.{i}.1" / "spool"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # smbd may take a moment to listen
            try:
                probe = share / f".probe-{host}"
                probe.write_bytes(b"")
                probe.unlink()
                self.mounts[host] = share
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(
            f"smbnetfs on {host} cannot write the share: "
            f"{(self.root / f'smbnetfs-{host}.log').read_text()[-500:]}"
            f"{(self.root / 'smbd.log').read_text()[-500:]}"
        )

    def down(self) -> None:
        for mnt in self._fuse:
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)  # its own group (setsid): smbd's children too
                except ProcessLookupError:
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)
        self._end_helpers()
        for name in self.ns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)

    def _end_helpers(self) -> None:
        """smbd starts samba-dcerpcd and its rpcd_* workers on demand, detached (parent init):
        found by the private config path on their command line (ours alone), ended by pid."""
        conf = str(self.root / "smb.conf").encode()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if conf in cmd and b"samba" in cmd:
                try:
                    os.kill(int(name), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def smb_net(root: Path, proto: str = "SMB3") -> SmbNet:
    """Set the share up; RuntimeError/OSError (with the reason) if this machine cannot."""
    n = SmbNet(root, f"{os.getpid() % 100000:05d}", proto)
    try:
        n.up()
    except BaseException:
        n.down()
        raise
    return n
