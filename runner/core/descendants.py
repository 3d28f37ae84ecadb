"""Everything a job started, followed while it runs and ended with it.

A script runs in a session of its own, so signalling its process group reaches what it started
there. A helper that left the group (`setsid`, `start_new_session=True`, a daemon's double fork)
is out of reach of that signal, and if it inherited stdout it holds the job's pipes open. So
each job's descendants are followed by the first of these the machine offers (`Descendants`
chooses at the first job; `--descendants tree` forces the second):

- `cgroup` (Linux, cgroup v2, the runner's own cgroup writable: as root, or delegated, e.g. a
  systemd unit with `Delegate=yes`): the script is born in a cgroup of its own,
  `<the runner's cgroup>/housespool-<runner pid>/job-<n>` (it joins it between fork and exec:
  `joiner`; a warm job is moved in just after its fork), so all it starts is in it whatever
  session it moves to. Ended by freezing it, listing its members and
  `cgroup.kill` (or SIGKILL to each member, before Linux 5.14); then the cgroup is removed.
- `tree`: the process table (`/proc/*/stat`; `ps` with an argument list where there is no
  /proc, e.g. macOS) is read while the script runs (every 0.25 s for its first 5 s, then every
  second) and every descendant seen is remembered by pid and start time (a reused pid is never
  taken for it), so one re-parented to init when its parent exited is still known.

With either, and on Linux, every process whose initial environment holds the claim's
`SPOOL_OUTPUT_DIR=...` line (its token is in it) is the job's too (a double fork quicker than
the tree's next look), and the script's process group is ended with them.

What is signalled besides the script's own group is recorded: pid, command line, how it was
found (`cgroup`, `tree`, `group`, `environment`) and the last signal sent.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from runner.core import cgroups
from runner.core.proctable import ProcInfo, Table, carrying, cmdline, proc_table, ps_table, stat_of

__all__ = ["MODES", "Descendants", "Kin", "CgroupKin", "joiner"]

MODES = ("auto", "cgroup", "tree")
EVERY = (0.25, 1.0)  # seconds between looks at the process table: in a job's first FAST s, then
PS_EVERY = (1.0, 2.0)  # the same through `ps` (a process per look)
FAST = 5.0
ROUNDS = 5  # kill passes over a tree that forks while it is being ended
_JOB_NUMBERS = itertools.count(1)  # one folder a job, whatever number of runners this process holds
SETTLE = 1.0  # seconds a killed cgroup may take to empty; after that its removal is left for `close`


@dataclass
class Ended:
    """A process the runner signalled besides the script's own group."""

    pid: int
    cmd: str
    by: str
    signal: str

    def record(self) -> dict[str, Any]:
        return {"pid": self.pid, "cmd": self.cmd, "by": self.by, "signal": self.signal}


class Kin:
    """One job's descendants, found through the process table (`tree`): `look` while the script
    runs (the pump thread, when `next_look` is due), `signal` at a stop (the loop), `end` once
    the script has exited and been reaped (the pump thread). Never raises for a process gone."""

    by = "tree"
    cgroup: Path | None = None  # the job's own cgroup, if it has one

    def __init__(self, root: int, marker: bytes | None, table: Table, every: tuple[float, float] = EVERY):
        self.root, self.marker, self.table, self.every = root, marker, table, every
        self._known: dict[int, ProcInfo] = {}  # every descendant seen (the script itself too)
        self._ended: dict[int, Ended] = {}
        self._lock = threading.Lock()
        self._ending = False
        self._born = time.monotonic()
        self._root_start: str | None = None  # the script's start (`start`): a descendant is younger
        # the first look once the script can have started anything (an interpreter's start
        # takes longer than that): sooner would only cost its start the CPU
        self.next_look = self._born + every[0]

    def start(self) -> None:
        """On the pump's thread as the script starts: its start time, read there (reading a
        process's stat as it execs can take a millisecond, which the loop must not wait)."""
        row = stat_of(self.root) if self.table is proc_table else None
        self._root_start = row.start if row is not None else None

    def look(self) -> None:
        now = time.monotonic()
        fast, slow = self.every
        self.next_look = now + (fast if now - self._born < FAST else slow)
        with self._lock:
            self._look(self.table())

    def _look(self, table: dict[int, ProcInfo]) -> dict[int, ProcInfo]:
        """Remember every descendant of the script (or of one remembered) in `table`."""
        if self.root not in self._known and self.root in table:
            self._known[self.root] = table[self.root]
        kids: dict[int, list[int]] = {}
        for pid, info in table.items():
            kids.setdefault(info.ppid, []).append(pid)
        todo = [p for p, i in self._known.items() if _same(table.get(p), i)]
        while todo:
            for child in kids.get(todo.pop(), ()):
                if not _same(self._known.get(child), table[child]):
                    self._known[child] = table[child]
                    todo.append(child)
        return table

    def _since(self, table: dict[int, ProcInfo]) -> list[int] | None:
        """The processes started since the script (a descendant cannot be older), when the
        table's start times are numbers (/proc's clock ticks); None: every one."""
        if self._root_start is None or not self._root_start.isdigit():
            return None
        born = int(self._root_start)
        return [p for p, i in table.items() if i.start.isdigit() and int(i.start) >= born and p != self.root]

    def _alive(self, table: dict[int, ProcInfo]) -> dict[int, ProcInfo]:
        """The remembered descendants still running (same start), the script left out."""
        return {
            p: table[p]
            for p, i in self._known.items()
            if p != self.root and _same(table.get(p), i) and not table[p].zombie
        }

    def signal(self, sig: int) -> None:
        """`sig` to every descendant outside the script's process group (that one is killpg's)."""
        with self._lock:
            if self._ending:
                return
            for pid, info in self._alive(self._look(self.table())).items():
                if info.pgid != self.root:
                    self._send(pid, info, sig, self.by)

    def end(self) -> list[dict[str, Any]]:
        """SIGKILL all that is left: what is remembered, the script's group, what carries the
        marker; looked for again until a pass finds nothing new. What was signalled, in order."""
        with self._lock:
            self._ending = True
            for _ in range(ROUNDS):
                table = self._look(self.table())
                found = {p: (i, self.by) for p, i in self._alive(table).items()}
                for pid, info in table.items():
                    if info.pgid == self.root and pid != self.root and not info.zombie:
                        found.setdefault(pid, (info, "group"))
                for pid in carrying(self.marker, self._since(table)):
                    if pid in table and not table[pid].zombie:
                        found.setdefault(pid, (table[pid], "environment"))
                fresh = {p: v for p, v in found.items() if not self._killed(p)}
                if not fresh:
                    break
                for pid, (info, by) in fresh.items():
                    self._send(pid, info, signal.SIGKILL, by)
            _killpg(self.root)
        return [e.record() for e in self._ended.values()]

    def _killed(self, pid: int) -> bool:
        seen = self._ended.get(pid)
        return seen is not None and seen.signal == "SIGKILL"

    def _send(self, pid: int, info: ProcInfo, sig: int, by: str) -> None:
        """Signal one process, recording it (its command line read first: a corpse has none)."""
        seen = self._ended.get(pid)
        cmd = seen.cmd if seen else (info.cmd or cmdline(pid))
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        name = signal.Signals(sig).name
        if seen is None:
            self._ended[pid] = Ended(pid, cmd, by, name)
        else:
            seen.signal = name


def _same(a: ProcInfo | None, b: ProcInfo | None) -> bool:
    return a is not None and b is not None and a.start == b.start


def _emptied(path: Path) -> bool:
    return not cgroups.populated(path)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class CgroupKin(Kin):
    """One job's descendants as the members of its own cgroup (`path`). The script is moved in
    by `move` as soon as it has started; if it cannot be, this job's tree is followed instead,
    and `owner` gives up cgroups for the jobs to come."""

    by = "cgroup"

    def __init__(
        self,
        root: int,
        marker: bytes | None,
        path: Path,
        owner: Descendants,
    ):
        super().__init__(root, marker, owner.table, owner.every)
        self.path = self.cgroup = path
        self._owner = owner
        self.moved = False

    def move(self) -> None:
        """Into its cgroup, on the loop, at once: a script starts forking ~10 ms after its exec
        (an interpreter's start), while the pump thread may run only after tens of ms under load."""
        if cgroups.write(self.path / "cgroup.procs", str(self.root)):
            self.moved = True
            self.next_look = math.inf  # nothing to follow: the kernel keeps them together
            self._owner.moved()
        else:
            cgroups.rmdir(self.path)
            self._owner.give_up(f"a script could not be moved into {self.path}")

    def start(self) -> None:
        if not self.moved:
            super().start()

    def look(self) -> None:
        if self.moved:
            self.next_look = math.inf
        else:
            super().look()

    def _members(self) -> dict[int, ProcInfo]:
        try:
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return {}
        rows = {p: stat_of(p) for p in pids if p != self.root}
        return {p: i for p, i in rows.items() if i is not None and not i.zombie}

    def signal(self, sig: int) -> None:
        if not self.moved:
            return super().signal(sig)
        with self._lock:
            if self._ending:
                return
            for pid, info in self._members().items():
                if info.pgid != self.root:
                    self._send(pid, info, sig, self.by)

    def end(self) -> list[dict[str, Any]]:
        """Freeze the cgroup (nothing forks between the listing and the kill), list it, kill it,
        remove it; and what carries the marker (started before the move: a warm job's marker is
        its server's, but what it forks in its first instant is in its process group)."""
        if not self.moved:
            return super().end()
        with self._lock:
            self._ending = True
            if cgroups.populated(self.path):
                cgroups.write(self.path / "cgroup.freeze", "1")
                cgroups.wait_for(lambda: cgroups.frozen(self.path), 0.2)
                for _ in range(ROUNDS):
                    members = self._members()
                    if not members:
                        break
                    for pid, info in members.items():
                        self._send(pid, info, signal.SIGKILL, self.by)
                    cgroups.write(self.path / "cgroup.kill", "1")  # Linux >= 5.14; else the kills above
            for pid in carrying(self.marker):
                row = stat_of(pid)
                if row is not None and not row.zombie:
                    self._send(pid, row, signal.SIGKILL, "environment")
            _killpg(self.root)
        if not cgroups.rmdir(self.path):  # its killed members take a moment to go
            self._owner.emptying.append(self.path)  # removed at the next job's start
        return [e.record() for e in self._ended.values()]


def joiner(fd: int) -> Callable[[], None]:
    """What the child runs between fork and exec: one write of "0" (itself) to its cgroup's
    `cgroup.procs`, opened by the parent. Nothing else: no import, no lock, no raise (a refused
    write leaves the runner's move after the start, which the parent then makes)."""

    def join() -> None:
        try:
            os.write(fd, b"0")
        except OSError:
            pass

    return join


class Descendants:
    """The runner's side: how its jobs' descendants are followed (`mode`: `auto`, `cgroup` or
    `tree`), chosen at the first job and kept; `track` per job (on the loop: a mkdir and the
    move, a tenth of a millisecond as a rule, some at worst); `close` removes this runner's
    cgroups. Never raises: a cgroup that cannot be had is said once through `log`, and the tree
    is followed instead."""

    def __init__(
        self, mode: str = "auto", log: Callable[[str], None] | None = None, *, table: Table | None = None
    ):
        if mode not in MODES:
            raise ValueError(f"descendants: one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self._log = log or (lambda msg: None)
        on_proc = os.path.isdir("/proc/self")
        self.table: Table = table or (proc_table if on_proc else ps_table)
        self.every = EVERY if self.table is proc_table else PS_EVERY
        self._home: Path | None = None  # <own cgroup>/housespool-<pid>, once made
        self._off = mode == "tree"
        self._said = False
        self._reason = ""
        self.emptying: list[Path] = []
        self.kind = "tree" if self._off else ""  # what the jobs get, once the first has started

    def cgroup_for_start(self) -> tuple[Path, int] | None:
        """A new job cgroup and its `cgroup.procs` opened for writing, for a script to step into
        between its fork and its exec; None where jobs get no cgroup. The caller closes the fd
        and passes the path to `track`."""
        path = self._job_cgroup()
        if path is None:
            return None
        try:
            return path, os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            cgroups.rmdir(path)
            self.give_up(f"cannot open {path}/cgroup.procs ({exc.strerror})")
            return None

    def track(self, pid: int, marker: bytes | None, path: Path | None = None) -> Kin:
        """Follow the job whose script is `pid` (started just now) and carries `marker`; `path`:
        the cgroup it was started in (`cgroup_for_start`), else one is made now if it may."""
        path = path or self._job_cgroup()
        if path is not None:
            kin = CgroupKin(pid, marker, path, self)
            kin.move()
            return kin
        self._say("tree", "following each job's process tree (and its environment marker)")
        return Kin(pid, marker, self.table, self.every)

    def _job_cgroup(self) -> Path | None:
        if self._off:
            return None
        if self.emptying:  # ended jobs' cgroups whose members were still going: gone by now
            self.emptying = [p for p in self.emptying if not cgroups.rmdir(p)]
        if self._home is None and not self._make_home():
            return None
        assert self._home is not None
        path = self._home / f"job-{next(_JOB_NUMBERS)}"
        try:
            os.mkdir(path)
        except OSError as exc:
            self.give_up(f"cannot make {path} ({exc.strerror})")
            return None
        return path

    def _make_home(self) -> bool:
        own = cgroups.cgroup_home()
        if own is None:
            self.give_up("no cgroup v2 of this runner's own to be found")
            return False
        cgroups.tidy(own)
        home = own / f"housespool-{os.getpid()}"
        try:
            os.mkdir(home)
        except FileExistsError:
            pass
        except OSError as exc:  # not ours to write (not root, not delegated): the usual case
            self.give_up(f"{own} is not writable ({exc.strerror})")
            return False
        self._home = home
        return True

    def moved(self) -> None:
        """A script is in its cgroup (said once)."""
        self._say("cgroup", f"each job runs in a cgroup of its own under {self._home}")

    def give_up(self, why: str) -> None:
        """No cgroup for the jobs to come (`why` said once); the running ones keep theirs."""
        self._off = True  # `close` still removes the cgroups made so far
        if self.mode == "cgroup":
            self._log(f"warning: --descendants cgroup: {why}; following each job's process tree instead")
            self._said = True
        self.kind = "tree"
        self._reason = why

    def _say(self, kind: str, what: str) -> None:
        self.kind = kind
        if not self._said:
            self._said = True
            why = self._reason
            self._log(f"{what}{f' ({why})' if why and kind == 'tree' else ''}")

    def close(self) -> None:
        """The runner is done: remove its (empty) job cgroups and their parent."""
        if self._home is None:
            return
        for path in self.emptying:
            cgroups.wait_for(partial(_emptied, path), SETTLE)
        for job in cgroups.listdir(self._home):
            cgroups.rmdir(self._home / job)
        cgroups.rmdir(self._home)


