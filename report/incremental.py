"""Incremental rebuilds: each finished job's key, the signatures of sweeps and pages, and the manifest.

Before the results are read, every finished job's `result.json` is stat'ed (`scan`); its key is `(state,
mtime_ns, size)` (the mtime is its notes folder's when that is later). A job page is rewritten
only when its key differs from the manifest's or the page is missing; a sweep's charts only when
the hash of its jobs' keys (plus metric and mode) changed, and then each chart only when the
digest of its own data changed (see `charts.spec`); a sweep page also when its progress changed.
Stat-before-read makes the manifest safe: a file that changes after its stat carries a newer key
next time, so the page is rebuilt then. A job page depends only on the files of its own folder
(result, logs, metrics, outputs) and its notes, so its key covers it. The manifest also records a hash of the
report's own code, templates and static files and where the spool is relative to the report: if
either changed, everything is rebuilt. The manifest is written last (atomically), so a build that
dies midway leaves keys that no longer match and the next build redoes those pages."""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from report.data import SweepDef
from report.jsoncache import read_json
from report.render import PKG
from spool.states import State

__all__ = [
    "MANIFEST",
    "FORMAT",
    "JobKey",
    "JobEntry",
    "SweepEntry",
    "LOOSE",
    "SWEEP_MEMBER",
    "sweep_of",
    "code_hash",
    "sig_hash",
    "finished",
    "load_manifest",
    "groups_from_df",
    "assign_groups",
    "plan",
    "Plan",
    "member_add",
    "member_remove",
]

MANIFEST = "manifest.json"
FORMAT = 2

JobKey = tuple[str, int, int]
LOOSE = "__loose__"  #: the group of jobs outside any sweep (no job or sweep id can start with "_")
SWEEP_MEMBER = re.compile(r"(.+)-\d{5}")


def sweep_of(job_id: str) -> str | None:
    """The sweep a job's id names (`<sweep>-NNNNN`), or None."""
    m = SWEEP_MEMBER.fullmatch(job_id)
    return m.group(1) if m else None


@dataclass(frozen=True)
class JobEntry:
    """One finished job in the manifest: its key and its group (a sweep id or LOOSE)."""

    key: JobKey
    group: str

    def to_json(self) -> list[Any]:
        return [*self.key, self.group]

    @classmethod
    def from_json(cls, v: Any) -> JobEntry | None:
        if isinstance(v, list) and len(v) == 4 and all(isinstance(x, str | int) for x in v):
            return cls((str(v[0]), int(v[1]), int(v[2])), str(v[3]))
        return None


@dataclass
class SweepEntry:
    """One sweep in the manifest: its data and page signatures, its charts, what its page showed."""

    sig: str = ""
    page: str = ""
    charts: list[dict[str, Any]] = field(default_factory=list)  #: `Chart.entry()` of each, page order
    info: dict[str, Any] = field(default_factory=dict)  #: fits, spread, hosts, failure kinds

    def files_ok(self, chart_dir: Path) -> bool:
        return all(
            isinstance(c, dict) and (bool(c.get("client")) or (chart_dir / str(c.get("file"))).exists())
            for c in self.charts
        )

    def to_json(self) -> dict[str, Any]:
        return {"sig": self.sig, "page": self.page, "charts": self.charts, "info": self.info}

    @classmethod
    def from_json(cls, v: Any) -> SweepEntry | None:
        if (
            not isinstance(v, dict)
            or not isinstance(v.get("charts"), list)
            or not isinstance(v.get("info"), dict)
        ):
            return None
        return cls(str(v.get("sig") or ""), str(v.get("page") or ""), v["charts"], v["info"])


def code_hash() -> str:
    """Hash of the report's code (with `charts/`), templates and static files: a change rebuilds all."""
    h = hashlib.sha1(str(FORMAT).encode())
    for sub in ("", "charts", "templates", "static"):
        d = PKG / sub if sub else PKG
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix in (".py", ".j2", ".css", ".js"):
                h.update(p.name.encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def sig_hash(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def keys_sig(ids: list[str], keys: dict[str, JobKey]) -> str:
    """`sig_hash` of some jobs' keys, in a line per job: every job's key is hashed at every
    build, and JSON with sorted keys costs 2.5 times this (20 ms at 10,000 jobs, measured)."""
    text = "\n".join(f"{j}\t{k[0]}\t{k[1]}\t{k[2]}" for j in ids for k in (keys[j],))
    return hashlib.sha1(text.encode()).hexdigest()


def assign_groups(
    keys: dict[str, JobKey], old_jobs: dict[str, Any], known: set[str]
) -> tuple[dict[str, str], set[str]]:
    """Each job's group as the manifest recorded it when its key is unchanged, else guessed from
    its id (the build checks a guess against the results), and the jobs whose key changed.

    The manifest's entries are compared as they are (`JobEntry.to_json`: a list of state,
    mtime, size, group): one comparison per job, no entry object built for 10,000 unchanged
    jobs. An entry in any other shape is a change."""
    group: dict[str, str] = {}
    changed: set[str] = set()
    for jid, k in keys.items():
        old = old_jobs.get(jid)
        if (
            type(old) is list
            and len(old) == 4
            and old[0] == k[0]
            and old[1] == k[1]
            and old[2] == k[2]
            and type(old[3]) is str
            and (old[3] in known or old[3] == LOOSE)
        ):
            group[jid] = old[3]
        else:
            sid = sweep_of(jid)
            group[jid] = sid if sid in known else LOOSE
            changed.add(jid)
    return group, changed


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """Done and failed rows, sorted by id, with the columns every frame has."""
    if "state" not in df.columns:
        df = pd.DataFrame({"id": pd.Series([], dtype=object), "state": pd.Series([], dtype=object)})
    if not df.empty:
        df = df[df["state"].isin(["done", "failed"])].sort_values("id", kind="stable").reset_index(drop=True)
    if "sweep" not in df.columns:
        df = df.assign(sweep=pd.Series([None] * len(df), index=df.index, dtype=object))
    return df


def load_manifest(out: Path, code: str, spool_rel: str) -> tuple[dict[str, Any], bool]:
    """The last build's manifest, or a fresh one; True when it is fresh (everything is rebuilt)."""
    try:
        m = read_json(out / MANIFEST)  # the one this process wrote last, when it still is
    except (OSError, ValueError):
        m = None
    fresh = {
        "format": FORMAT,
        "code": code,
        "spool": spool_rel,
        "jobs": {},
        "sweeps": {},
        "all_jobs": None,
    }
    if (
        not isinstance(m, dict)
        or m.get("format") != FORMAT
        or m.get("code") != code
        or m.get("spool") != spool_rel
    ):
        return fresh, True
    if not all(isinstance(m.get(k), dict) for k in ("jobs", "sweeps")):
        m = {**m, **{k: m[k] if isinstance(m.get(k), dict) else {} for k in ("jobs", "sweeps")}}
    return m, False


def groups_from_df(df: pd.DataFrame, known: set[str]) -> dict[str, str]:
    """Each finished job's group as the results say: its sweep (with a definition, id
    `<sweep>-NNNNN`), else LOOSE."""
    out: dict[str, str] = {}
    for jid, sw in zip(df["id"].astype(str), df["sweep"], strict=True):
        g = LOOSE
        if isinstance(sw, str) and sw in known:
            m = SWEEP_MEMBER.fullmatch(jid)
            if m and m.group(1) == sw:
                g = sw
        out[jid] = g
    return out


def plan(
    out: Path,
    scope: str | None,
    metric_arg: str | None,
    mode_arg: str | None,
    members: dict[str, list[str]],
    keys: dict[str, JobKey],
    sweep_ids: list[str],
    defs: dict[str, SweepDef],
    progress: dict[str, dict[str, int]],
    man: dict[str, Any],
    group_sigs: dict[str, str] | None = None,
) -> tuple[dict[str, tuple[str, str, dict[str, int]]], str, set[str]]:
    """Signatures of every sweep (data, page) and of the loose jobs, and the groups to redo.

    `group_sigs`: each group's `keys_sig` where it is already known (a rebuild in the same
    process: `carry`); the ones worked out here are added to it."""
    sigs: dict[str, tuple[str, str, dict[str, int]]] = {}
    redo: set[str] = set()
    known = {} if group_sigs is None else group_sigs

    def group_sig(g: str) -> str:
        if g not in known:
            known[g] = keys_sig(members.get(g, []), keys)
        return known[g]

    for sid in sweep_ids:
        ids = members.get(sid, [])
        in_scope = scope is None or scope == sid
        sdef = defs.get(sid)
        sig = sig_hash(
            group_sig(sid),
            [metric_arg, mode_arg] if in_scope else None,
            sdef.mtime_ns if sdef else None,
        )
        counts = dict(progress.get(sid) or {})
        if not counts:
            c = Counter(keys[j][0] for j in ids)
            counts = {st.value: c.get(st.value, 0) for st in State}
        page_sig = sig_hash(sig, counts)
        sigs[sid] = (sig, page_sig, counts)
        old = SweepEntry.from_json(man["sweeps"].get(sid))
        if (
            old is None
            or old.sig != sig
            or old.page != page_sig
            or not old.files_ok(out / "sweeps" / sid)
            or not (out / "sweeps" / f"{sid}.html").exists()
            or sid not in (man.get("summaries") or {})
        ):
            redo.add(sid)
    loose_sig = group_sig(LOOSE)
    if not scope and (
        man.get("all_jobs") != loose_sig
        or not (out / "all-jobs.html").exists()
        or LOOSE not in (man.get("summaries") or {})
    ):
        redo.add(LOOSE)
    return sigs, loose_sig, redo


@dataclass
class Plan:
    """What this build works on: each finished job's key and group, and what to redo."""

    keys: dict[str, JobKey]
    group: dict[str, str]
    changed: set[str]  #: jobs whose key (or group) differs from the manifest's
    sweep_ids: list[str] = field(default_factory=list)
    sigs: dict[str, tuple[str, str, dict[str, int]]] = field(default_factory=dict)
    loose_sig: str = ""
    redo: set[str] = field(default_factory=set)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    _members: dict[str, list[str]] | None = field(default=None, repr=False)
    group_sigs: dict[str, str] = field(default_factory=dict)  #: each group's `keys_sig`, as known
    regrouped: set[str] = field(default_factory=set)  #: jobs `set_group` moved

    def members(self) -> dict[str, list[str]]:
        """Each group's job ids, sorted (worked out once, then kept up by `set_group`). Shared:
        callers must not change it."""
        if self._members is None:
            out: dict[str, list[str]] = {}
            group = self.group
            for jid in sorted(group):
                out.setdefault(group[jid], []).append(jid)
            self._members = out
        return self._members

    def set_group(self, job_id: str, group: str) -> None:
        old = self.group.get(job_id)
        self.group[job_id] = group
        self.regrouped.add(job_id)
        for g in (old, group):
            self.group_sigs.pop(g or "", None)
        if self._members is not None and old != group:
            if old is not None:
                member_remove(self._members, old, job_id)
            member_add(self._members, group, job_id)


def member_add(members: dict[str, list[str]], group: str, job_id: str) -> None:
    """Add a job to its group's sorted ids."""
    bisect.insort(members.setdefault(group, []), job_id)


def member_remove(members: dict[str, list[str]], group: str, job_id: str) -> None:
    """Take a job out of its group's sorted ids (a group left empty goes)."""
    ids = members.get(group, [])
    i = bisect.bisect_left(ids, job_id)
    if i < len(ids) and ids[i] == job_id:
        del ids[i]
        if not ids:
            del members[group]
