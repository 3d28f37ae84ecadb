"""`Spool`: the Python API, and the one thing the CLI, runner, report and server build on."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spool import jobs as _jobs
from spool.deps import ARCHIVE_DIR, check_after
from spool.errors import InvalidJob, NotFound, PathEscape, SpoolExists, UsageError
from spool.layout import JOB_FILE, Entry, Layout, check_write_path
from spool.model import MAX_JOB_BYTES, Contract, Job, job_from_dict, parse_job
from spool.protocol import publish_new
from spool.settings import SETTINGS_FILE, Settings, expand_path, load_settings, not_a_spool, render_settings
from spool.states import State
from spool.untrusted import read_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Spool", "resolve_spool_path"]

_SWEEP_MEMBER = re.compile(r"^(.+)-\d{5}$")
_SWEEP_NAMED: dict[str, str | None] = {}  #: each id's `_sweep_named`, once per process


def _sweep_named(job_id: str) -> str | None:
    """The sweep a job id names (`<sweep>-NNNNN`), or None: a pure function of the id, worked
    out once per id in a process (`status` of a 10,000-job spool, every few seconds in a watch)."""
    try:
        return _SWEEP_NAMED[job_id]
    except KeyError:
        pass
    if len(_SWEEP_NAMED) > 1_000_000:
        _SWEEP_NAMED.clear()
    m = _SWEEP_MEMBER.match(job_id)
    sid = _SWEEP_NAMED[job_id] = m.group(1) if m else None
    return sid


def resolve_spool_path(path: str | os.PathLike[str] | None = None) -> Path:
    """`path`, else `$SPOOL_DIR`, else `./spool-dir`."""
    chosen = path if path is not None else os.environ.get("SPOOL_DIR") or "spool-dir"
    return expand_path(chosen, "spool folder").absolute()


class Spool:
    """A spool folder. `Spool("spool-dir").results()` is the notebook entry point."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, scripts: str | os.PathLike[str] | None = None
    ):
        self.root = resolve_spool_path(path)
        self.layout = Layout(self.root)
        self._settings: Settings | None = None
        self._scripts_override = expand_path(scripts, "scripts folder").resolve() if scripts else None

    def __repr__(self) -> str:
        return f"Spool({str(self.root)!r})"

    # -- set-up -----------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None, *, scripts: str | None = None) -> Spool:
        """Create a spool (folders + spool.toml); refuses to clobber an existing one."""
        root = resolve_spool_path(path)
        if (root / SETTINGS_FILE).exists():
            raise SpoolExists("a spool already exists here; not touching it", file=root / SETTINGS_FILE)
        if scripts is None:
            scripts_value = "scripts"
            (root / "scripts").mkdir(parents=True, exist_ok=True)
        else:
            target = expand_path(scripts, "scripts folder").absolute()
            if not target.is_dir():
                raise NotFound("scripts folder does not exist", file=target)
            scripts_value = os.path.relpath(target, root) if not Path(scripts).is_absolute() else str(target)
        layout = Layout(root)
        for d in layout.all_dirs():
            d.mkdir(parents=True, exist_ok=True)
        text = render_settings(scripts_value.replace(os.sep, "/"))
        if not publish_new(root / SETTINGS_FILE, text.encode()):  # two inits at once: one wins
            raise SpoolExists("a spool already exists here; not touching it", file=root / SETTINGS_FILE)
        return cls(root)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.root)
        return self._settings

    @property
    def scripts_dir(self) -> Path:
        return self._scripts_override or self.settings.scripts_dir(self.root)

    # -- submit -----------------------------------------------------------------
    def submit(
        self,
        job: Job | dict[str, Any] | str,
        params: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Queue one job: a `Job`, a job dict, or a script name with params and fields."""
        allow = self.settings.env_allow
        if isinstance(job, str):
            job = job_from_dict({"script": job, "params": params or {}, **fields}, env_allow=allow)
        elif isinstance(job, dict):
            job = job_from_dict(job, env_allow=allow)
        elif params or fields:
            raise UsageError("give params/fields with a script name, not with a Job")
        self._check_paths(job)
        if job.after:
            check_after(self.layout, job.after, job_id=job_id)
        raw = json.dumps(job.to_file_dict(), indent=1).encode() + b"\n"
        return _jobs.publish_job(self.layout, raw, job_id)

    def submit_bytes(self, raw: bytes, file: str | None = None) -> str:
        """Validate job file bytes and queue them unchanged (the user's bytes are what is kept)."""
        job = parse_job(raw, file, env_allow=self.settings.env_allow)
        self._check_paths(job, file)
        if job.after:
            try:
                check_after(self.layout, job.after)
            except InvalidJob as exc:
                raise InvalidJob(exc.message, file=file, field=exc.field) from None
        return _jobs.publish_job(self.layout, raw)

    def _check_paths(self, job: Job, file: str | None = None) -> None:
        """The script is in the scripts folder; an argv4 `writePath` is one a job may write into
        (the runner checks both again: a file dropped by hand comes by neither of these)."""
        _jobs.check_script(self.scripts_dir, job, file)
        write = job.params.get("writePath") if job.contract is Contract.ARGV4 else None
        if isinstance(write, str) and write:
            try:
                check_write_path(self.root, write, self.scripts_dir)
            except PathEscape as exc:
                raise PathEscape(exc.message, file=file, field=exc.field) from None

    # -- look -------------------------------------------------------------------
    def check(self) -> Settings:
        """The spool's settings; raises the clear "no spool here" error when it is not a spool.

        `spool.toml` is looked at on every call, not only on the first: a long-lived process
        (`report --watch`, `serve`) whose share was unmounted would otherwise see an empty spool
        and report zero jobs as if that were true. One stat; the settings stay read once."""
        settings = self.settings
        try:
            os.stat(self.root / SETTINGS_FILE)
        except OSError:  # gone (ENOENT), or a share that answers with EIO/ESTALE: not there either
            raise not_a_spool(self.root) from None
        return settings

    def _entries(self, state: State) -> Iterator[Entry]:
        """`layout.entries`, minus claimed folders without a job.json: a claim in progress, or one
        that crashed between its mkdir and its rename (the job is still pending, whole)."""
        for entry in self.layout.entries(state):
            if state is State.CLAIMED and not (entry.path / JOB_FILE).exists():
                continue
            yield entry

    def status(self, counted: Mapping[State, Iterable[str]] | None = None) -> dict[str, Any]:
        """Counts per state, and per sweep: one scandir per state, no file reads.

        `counted`: the job ids of some states as the caller's own scan of those folders just
        found them (the report's); those states are counted from them, not listed again."""
        self.check()
        counts: dict[str, int] = {s.value: 0 for s in State}
        sweeps: dict[str, dict[str, int]] = {}
        known = self.sweep_ids()
        for state in State:
            given = counted.get(state) if counted else None
            ids = given if given is not None else self._listed_ids(state)
            n = 0
            value = state.value
            for job_id in ids:
                n += 1
                sid = _sweep_named(job_id) if known else None
                if sid is not None and sid in known:
                    per = sweeps.get(sid)
                    if per is None:
                        per = sweeps[sid] = {s.value: 0 for s in State}
                    per[value] += 1
            counts[value] = n
        out: dict[str, Any] = dict(counts)
        out["total"] = sum(counts.values())
        if sweeps:
            out["sweeps"] = sweeps
        return out

    def _listed_ids(self, state: State) -> Iterator[str]:
        """The ids of the jobs in one state folder (names only: no paths, no file reads)."""
        folder = self.layout.state_dir(state)
        for job_id, name in self.layout.ids(state):
            if state is State.CLAIMED and not os.path.exists(os.path.join(folder, name, JOB_FILE)):
                continue  # as `_entries`: a claim in progress is still pending
            yield job_id

    def runners(self) -> list[dict[str, Any]]:
        """Each runner's heartbeat (host, capabilities, current jobs, status) with `age` in
        seconds by the spool's clock and `alive`, sorted by runner name."""
        from spool.heartbeats import runner_rows

        self.check()
        return runner_rows(self.layout.runners)

    def sweep_ids(self) -> set[str]:
        try:
            return {p.name[:-5] for p in os.scandir(self.layout.sweeps) if p.name.endswith(".yaml")}
        except FileNotFoundError:
            return set()

    def unfinished_ids(self) -> list[str]:
        """The ids of every job pending or running right now (names only: no file is read)."""
        self.check()
        states = (State.PENDING, State.CLAIMED)
        return sorted({e.id for st in states for e in self.layout.entries(st) if e.is_job_name})

    def jobs(
        self,
        state: State | str | None = None,
        sweep: str | None = None,
        where: str | list[str] | None = None,
    ) -> list[_jobs.JobView]:
        """Every job (or those in one state / sweep, or matching `where`), sorted by id."""
        from spool.where import Filter

        filt = Filter(where)
        self.check()
        states = [State(state)] if state else list(State)
        views = []
        for st in states:
            for entry in self._entries(st):
                if sweep and not entry.id.startswith(f"{sweep}-"):
                    continue
                v = _jobs.view(entry)
                if sweep and (v.job or {}).get("sweep") != sweep:
                    continue
                views.append(v)
        views.sort(key=lambda v: v.id)
        if filt and views:
            rows = [_jobs.flat_row(v.to_dict()) for v in views]
            columns = list(dict.fromkeys(k for r in rows for k in r))
            views = [views[i] for i in filt.rows(rows, columns)]
        return views

    def is_sweep(self, sweep_id: str) -> bool:
        """True if `sweep_id` names a sweep of this spool (and no job has that id)."""
        from spool.ids import is_valid_id

        return (
            is_valid_id(sweep_id)
            and (self.layout.sweeps / f"{sweep_id}.yaml").is_file()
            and self.layout.find(sweep_id) is None
        )

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """A sweep's summary: its jobs per state and, with early_terminate, the hyperband table."""
        from spool.sweeps.view import sweep_view

        self.check()
        return sweep_view(self, sweep_id)

    def get(self, job_id: str) -> _jobs.JobView:
        self.check()
        entry = self.layout.find(job_id)
        if entry is None:
            for st in (State.DONE, State.FAILED):
                if (self.root / ARCHIVE_DIR / st.value / job_id / JOB_FILE).exists():
                    where = f"{ARCHIVE_DIR}/{st.value}/{job_id}"
                    raise NotFound(f"job {job_id!r} was archived by `spool gc`: {where}")
            raise NotFound(f"no job {job_id!r} in {self.root}")
        return _jobs.view(entry)

    def notes(self, job_id: str) -> list[dict[str, Any]]:
        """A job's notes, oldest first: `[{"at": ISO time, "text": ...}]`."""
        from spool.notes import read_notes

        self.get(job_id)
        return read_notes(self.root, job_id)

    # -- change -----------------------------------------------------------------
    def note(self, job_id: str, text: str) -> dict[str, Any]:
        """Add a note to a job (any state); kept in `notes/<id>/`, shown on its report page."""
        from spool.notes import add_note

        self.check()
        return add_note(self.layout, job_id, text)

    def set_priority(self, *job_ids: str, priority: int, sweep: str | None = None) -> dict[str, str]:
        """Give pending jobs (and every pending job of `sweep`) a new priority; job id -> what happened."""
        from spool.priority import set_priority

        self.check()
        ids = list(job_ids)
        if sweep is not None:
            ids += [v.id for v in self.jobs(State.PENDING, sweep=sweep) if v.id not in ids]
            if not ids and not (self.layout.sweeps / f"{sweep}.yaml").is_file():
                raise NotFound(f"no sweep {sweep!r} in {self.root}")
        return {j: set_priority(self.layout, j, priority) for j in ids}

    def refresh_after_change(self) -> str | None:
        """Let packages built on the spool (the report) catch up after jobs were moved away (gc):
        each `housespool.refresh` entry point is called with this spool; what they say is returned."""
        from importlib.metadata import entry_points

        said = []
        for ep in sorted(entry_points(group="housespool.refresh"), key=lambda e: e.name):
            try:
                msg = ep.load()(self)
            except ImportError as exc:  # e.g. the report's libraries are not installed here
                msg = f"{ep.name}: not refreshed ({exc})"
            if msg:
                said.append(str(msg))
        return "\n".join(said) or None

    def cancel(self, *job_ids: str) -> dict[str, str]:
        """Cancel jobs: pending ones fail at once as cancelled, running ones are stopped by their runner."""
        self.check()
        return {j: _jobs.cancel(self.layout, j, _jobs.new_token("cancel")) for j in job_ids}

    def retry(self, *job_ids: str, failed: bool = False, sweep: str | None = None) -> list[str]:
        """Re-queue failed jobs as new attempts (every failed one with `failed=True`, or of one sweep)."""
        self.check()
        ids = list(job_ids)
        if failed:
            ids += [v.id for v in self.jobs(State.FAILED, sweep=sweep)]
        elif sweep:
            raise UsageError("--sweep needs --failed (or give job ids)")
        if not ids:
            return []
        done = []
        for j in ids:
            if self.layout.find(j) is None:
                raise NotFound(f"no job {j!r}")
            if _jobs.retry(self.layout, j) is not None:
                done.append(j)
        return done

    def validate_file(self, path: Path) -> Job:
        """Parse and check a job file without submitting it."""
        try:
            raw = read_file(path, MAX_JOB_BYTES)
        except OSError as exc:
            raise InvalidJob(f"cannot read ({exc.strerror})", file=path) from None
        job = parse_job(raw, str(path), env_allow=self.settings.env_allow)
        self._check_paths(job, str(path))
        return job

    def rerun(self, job_id: str, *, force: bool = False) -> str:
        """Submit a job identical to a recorded run (its params, commit, diff and inputs)."""
        from spool.rerun import rerun

        self.check()
        return rerun(self, job_id, force=force)[0]

    def diff(self, a: str, b: str) -> list[dict[str, Any]]:
        """What differed between two runs: rows `{"key", "a", "b"}` (params, git, versions, inputs...)."""
        from spool.rerun import diff_runs

        self.check()
        return diff_runs(self, a, b)

    # -- results (pandas is imported only here) ---------------------------------
    def results(
        self,
        sweep: str | None = None,
        state: str | None = "done",
        where: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """One row per finished job: params as `param.*`, labels as `label.*`, results as `result.*`,
        what it cost as `usage.*`. `where`: an expression (or a list, all of which must hold) such
        as `"param.lr < 0.01 and label.group == a"` (the language is in `spool.where`)."""
        from spool.results import load_results

        self.check()
        return load_results(self.layout, sweep=sweep, state=state, where=where)

    def metrics(self, job_or_sweep: str) -> pd.DataFrame:
        """Every metrics line of a job (or of every job of a sweep) as a long DataFrame."""
        from spool.results import load_metrics

        self.check()
        return load_metrics(self.layout, job_or_sweep)
