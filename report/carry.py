"""What a rebuild in the same process takes over from the build before it (`spool report
--watch`, `serve --report`, a notebook, the bench).

A build works out every finished job's group, each group's sorted members, each group's key
signature (`incremental.keys_sig`) and the manifest's entry of every job. From the manifest
alone that is a pass over every job per step, about 60 ms of a rebuild after one new job at
10,000 jobs (measured). A `Carry` keeps them from the last build of the same output folder, and
the next build redoes them only for the jobs whose key changed or that are gone.

It is taken only when the manifest the build reads is the very document the last build wrote
(`jsoncache` hands it out only while the file is that one: same inode, mtime, ctime and size),
the build is of the whole spool, the sweep definitions are the same ones and few jobs changed.
Anything else (another process wrote the manifest, a fresh process, a full build, a build of
one sweep) takes the full path. A carry is taken once: a build that fails midway leaves none,
and the next build takes the full path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report.incremental import LOOSE, JobKey, member_add, member_remove, sweep_of

__all__ = ["Carry", "take", "keep", "MAX_CHANGES"]

#: changed or gone jobs past which a build takes the full path (each one is a list insert)
MAX_CHANGES = 256


@dataclass
class Carry:
    """One build's bookkeeping, for the next build of the same folder in this process."""

    doc: dict[str, Any]  #: the manifest it wrote (`jsoncache` keeps it parsed)
    known: frozenset[str]  #: the sweeps with a definition
    keys: dict[str, JobKey]
    group: dict[str, str]
    members: dict[str, list[str]]  #: each group's ids, sorted
    sigs: dict[str, str]  #: each group's `keys_sig`
    frags: dict[str, str]  #: each job's manifest entry as JSON (`manifest.entry_json`)

    def update(self, keys: dict[str, JobKey]) -> set[str] | None:
        """Bring the groups, members and signatures up to `keys` (this build's scan); the jobs
        whose key changed. None: too many changes (nothing is changed then)."""
        was = self.keys.get
        changed = {j for j, k in keys.items() if was(j) != k}  # a third of `items() - items()`
        gone = self.keys.keys() - keys.keys()
        if len(changed) + len(gone) > MAX_CHANGES:
            return None
        touched: set[str] = set()
        for j in gone:
            self.drop(j, touched)
        for j in changed:
            sid = sweep_of(j)
            # a new or changed job's group is guessed from its id, as `assign_groups` does
            self.move(j, sid if sid in self.known else LOOSE, touched)
        self.keys = keys
        for g in touched:
            self.sigs.pop(g, None)
        return changed

    def move(self, job_id: str, group: str, touched: set[str]) -> None:
        """Put one job in `group` (its members list kept sorted); both groups are touched."""
        old = self.group.get(job_id)
        if old is not None:
            member_remove(self.members, old, job_id)
            touched.add(old)
        self.group[job_id] = group
        member_add(self.members, group, job_id)
        touched.add(group)

    def forget(self, job_ids: list[str]) -> None:
        """Forget jobs whose pages a build skipped (moved on since the scan): the next build
        sees them as new, as it would from the manifest, which does not list them."""
        touched: set[str] = set()
        for j in job_ids:
            self.drop(j, touched)
        for g in touched:
            self.sigs.pop(g, None)

    def drop(self, job_id: str, touched: set[str]) -> None:
        """Forget one job (gone, or its page skipped: the next build sees it as new)."""
        old = self.group.pop(job_id, None)
        if old is not None:
            member_remove(self.members, old, job_id)
            touched.add(old)
        self.keys.pop(job_id, None)
        self.frags.pop(job_id, None)


_LAST: dict[str, Carry] = {}


def take(out: Path, man: dict[str, Any], known: frozenset[str], scope: str | None) -> Carry | None:
    """The last build's carry for `out` when `man` is the manifest it wrote, else None."""
    c = _LAST.pop(str(out), None)
    if c is None or c.doc is not man or c.known != known or scope is not None:
        return None
    return c


def keep(out: Path, carry: Carry) -> None:
    """Keep one build's carry (one output folder's: a build of another folder drops it)."""
    _LAST.clear()
    _LAST[str(out)] = carry
