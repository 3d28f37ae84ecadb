"""The manifest a build writes last: each finished job's entry, and the document published.

The jobs' entries are most of the manifest (10,000 of them are half a megabyte), so each is
kept as its JSON beside it (`entry_json`) and the document's text is joined from those: a
rebuild after one new job encodes one entry, not 10,000 (`json.dumps` of them all is about
15 ms at 10,000 jobs, measured). The published document stays parsed in this process
(`jsoncache`), which is what lets the next build take the last one's `carry`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report.carry import Carry
from report.incremental import MANIFEST, JobEntry, Plan
from report.jsoncache import publish_json

__all__ = ["entry_json", "job_entries", "publish"]


def entry_json(job_id: str, entry: list[Any]) -> str:
    """One job's manifest entry as it appears in the manifest's `jobs` object.

    Formatted directly (a fifth of `json.dumps`'s cost, which is 0.1 s for 10,000 entries one by
    one): its strings are a job id, a state and a group (a sweep id taken from a job id, or
    LOOSE), which JSON needs no escapes for. Anything else goes through `json.dumps`."""
    state, mtime, size, group = entry
    text = f'"{job_id}":["{state}",{int(mtime)},{int(size)},"{group}"]'
    if text.count('"') == 6 and "\\" not in text and text.isascii() and text.isprintable():
        return text
    return json.dumps(job_id) + ":" + json.dumps(entry, separators=(",", ":"))


def job_entries(
    p: Plan, old_jobs: dict[str, Any], carry: Carry | None, kept: Callable[[str], bool] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every finished job's manifest entry and its JSON: the last manifest's where its key and
    group are unchanged, made afresh for the others (with a `Carry`, only those are looked at).

    `kept`: in a build limited to one sweep, the other jobs whose entries stay as they were."""
    if carry is not None:
        jobs, frags = dict(old_jobs), carry.frags
        for jid in old_jobs.keys() - p.keys.keys():
            del jobs[jid]
        redo = p.changed | p.regrouped
    else:
        jobs = {j: v for j, v in old_jobs.items() if kept(j)} if kept else {}
        group, changed = p.group, p.changed
        for jid in sorted(p.keys):
            g = group[jid]
            was = old_jobs.get(jid)
            # key and group as the manifest has them (the key checked in `assign_groups`)
            ok = was is not None and jid not in changed and was[3] == g
            jobs[jid] = was if ok else JobEntry(p.keys[jid], g).to_json()
        frags = {j: entry_json(j, e) for j, e in jobs.items()}
        redo = set()
    for jid in redo:
        jobs[jid] = JobEntry(p.keys[jid], p.group[jid]).to_json()
        frags[jid] = entry_json(jid, jobs[jid])
    return jobs, frags


def publish(out: Path, doc: dict[str, Any], jobs: dict[str, Any], frags: dict[str, str]) -> dict[str, Any]:
    """Publish the manifest `doc` with `jobs` (whose JSON is `frags`) atomically; the document."""
    text = json.dumps(doc, separators=(",", ":"), default=str)
    text = text[:-1] + ',"jobs":{' + ",".join(frags.values()) + "}}"
    manifest = {**doc, "jobs": jobs}
    publish_json(out / MANIFEST, manifest, text, fsync=True)
    return manifest
