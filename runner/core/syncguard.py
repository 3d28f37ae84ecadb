"""Is this spool safe for claims? Cheap checks for the one kind that is not: a replicated folder.

A claim is one `rename` on one file system: of all the runners renaming `pending/<id>.json`,
exactly one succeeds. NFS, SMB and sshfs to one server keep that (the server renames). A
replicated sync folder (Syncthing, Dropbox, Resilio, OneDrive, ...) renames on each replica on
its own and reconciles later, so two runners on two replicas can both "win" the same job.

No local test can see replication itself; these look for its signs: the sync tool's marker files
in the spool or above it, a rename that is not visible at once under its new name only, and,
while running, one job id held by two claims.
"""

from __future__ import annotations

import os
from pathlib import Path

from spool.layout import JOB_FILE, Layout
from spool.states import State

__all__ = ["SYNC_MARKERS", "claim_safety_warnings", "double_claims", "rename_probe", "sync_markers"]

#: files a sync tool keeps in (or above) the folders it replicates
SYNC_MARKERS = {
    ".stfolder": "Syncthing",
    ".stversions": "Syncthing",
    ".dropbox": "Dropbox",
    ".dropbox.cache": "Dropbox",
    ".sync": "Resilio Sync",
    ".SynologyWorkingDirectory": "Synology Drive",
}


def sync_markers(root: Path) -> list[str]:
    """Sync-tool marker files in `root` or any folder above it, as "path (tool)"."""
    out = []
    for folder in (root, *root.parents):
        try:  # listed, not stat'ed: at the top of an smbnetfs mount every name "exists" (a host)
            names = set(os.listdir(folder))
        except OSError:
            continue
        out += [f"{folder / name} ({tool})" for name, tool in SYNC_MARKERS.items() if name in names]
    return out


def rename_probe(folder: Path, runner: str) -> str | None:
    """Rename a new file in `folder` and look at once: None if only the new name is there."""
    old = folder / f".rename-probe-{runner}-{os.urandom(3).hex()}"
    new = old.with_name(old.name + ".renamed")
    try:
        fd = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        os.rename(old, new)
        names = set(os.listdir(folder))
        if new.name not in names or not new.exists():
            return "a file renamed in the spool was not visible under its new name at once"
        if old.name in names or old.exists():
            return "a file renamed in the spool was still visible under its old name"
        return None
    except OSError as exc:
        return f"could not rename a probe file in {folder}: {exc.strerror}"
    finally:
        for p in (old, new):
            try:
                os.unlink(p)
            except OSError:
                pass


def claim_safety_warnings(layout: Layout, runner: str) -> list[str]:
    """Plain-language warnings for the runner's log at start; empty when nothing looks wrong."""
    out = []
    markers = sync_markers(layout.root)
    if markers:
        out.append(
            f"the spool looks like a replicated sync folder ({', '.join(markers)}): claims are NOT "
            "safe there, two runners on two replicas can both take one job. Share one folder from "
            "one machine instead (NFS, SMB or sshfs)."
        )
    problem = rename_probe(layout.runners, runner)
    if problem:
        out.append(
            f"{problem}: claims depend on atomic rename, so this folder may let two runners take one "
            "job (a replicated sync folder?)."
        )
    return out


def double_claims(layout: Layout) -> dict[str, list[str]]:
    """Job ids that more than one claimed folder holds a job.json for (claimed/<id>@<token>)."""
    seen: dict[str, list[str]] = {}
    for entry in layout.entries(State.CLAIMED):
        seen.setdefault(entry.id, []).append(entry.path.name)
    out = {}
    for job_id, names in seen.items():
        if len(names) > 1:
            live = [n for n in names if (layout.state_dir(State.CLAIMED) / n / JOB_FILE).exists()]
            if len(live) > 1:
                out[job_id] = live
    return out
