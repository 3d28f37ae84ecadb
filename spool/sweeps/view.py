"""What `spool show SWEEP` (and `--json`) says about a sweep, read from the folder.

A plain dict, the same for the CLI and the API: the definition's summary, its jobs per state,
for a bayes sweep its slots (`spool.sweeps.adaptive_view`), and for a sweep with
`early_terminate` the hyperband table: every band with its threshold as
of now, how many runs reached it and which were stopped there; and each run's place.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from spool.layout import RESULT_FILE
from spool.states import State
from spool.sweeps.histories import Histories
from spool.sweeps.hyperband import Hyperband
from spool.sweeps.store import load_sweep
from spool.untrusted import read_json

if TYPE_CHECKING:
    from spool.api import Spool

__all__ = ["sweep_view", "stop_record"]


def stop_record(result: Any) -> dict[str, Any] | None:
    """The early stop a result.json records (`stopped` and `early_terminate`), or None."""
    if not isinstance(result, dict) or result.get("stopped") is not True:
        return None
    rec = result.get("early_terminate")
    return rec if isinstance(rec, dict) else {}


def _result(folder: str) -> Any:
    try:  # a regular file only, never over 16 MB (spool.untrusted)
        return read_json(os.path.join(folder, RESULT_FILE), limit=16 << 20)
    except (OSError, ValueError, RecursionError):
        return None


def sweep_view(spool: Spool, sweep_id: str) -> dict[str, Any]:
    """The sweep's summary; NotFound if there is no such sweep."""
    rec = load_sweep(spool, sweep_id)
    doc = rec.doc
    counts = {s.value: 0 for s in State}
    for state in State:
        for job_id, _ in spool.layout.ids(state):
            if job_id.startswith(sweep_id + "-"):
                counts[state.value] += 1
    out: dict[str, Any] = {
        "id": sweep_id,
        "name": doc.get("name"),
        "script": doc.get("script"),
        "method": doc.get("method"),
        "created": doc.get("created"),
        "count": doc.get("count"),
        "metric": doc.get("metric"),
        "jobs": counts,
    }
    if isinstance(doc.get("adaptive"), dict):
        from spool.sweeps.adaptive_view import adaptive_view

        out["bayes"] = adaptive_view(spool.layout, sweep_id, doc, spool.settings.settle_seconds)
    early = doc.get("early_terminate")
    if isinstance(early, dict) and isinstance(doc.get("metric"), dict):
        out["hyperband"] = hyperband_view(spool, sweep_id, early, doc["metric"])
    return out


def hyperband_view(
    spool: Spool, sweep_id: str, early: dict[str, Any], metric: dict[str, Any]
) -> dict[str, Any]:
    """Bands, thresholds, runs that reached each band and runs stopped there."""
    rules = Hyperband.from_definition(early, metric)
    runs = Histories(spool.layout, sweep_id, rules.metric).read()
    thresholds = rules.thresholds(r.values for r in runs.values())
    rows: list[dict[str, Any]] = []
    for job_id in sorted(runs):
        run = runs[job_id]
        row: dict[str, Any] = {"id": job_id, "state": run.state.value, "iteration": len(run.values)}
        stop = stop_record(_result(run.folder)) if run.state is State.DONE else None
        if stop is not None:
            row["stopped"] = stop
        elif run.state is State.CLAIMED:
            verdict = rules.judge(run.values, thresholds)
            row["band"] = verdict.band if verdict else None
        rows.append(row)
    bands = []
    for band, threshold in zip(rules.bands, thresholds, strict=True):
        reached = sum(1 for r in runs.values() if len(r.values) > band)
        bands.append(
            {
                "band": band,
                "threshold": threshold,
                "reached": reached,
                "stopped": [r["id"] for r in rows if r.get("stopped", {}).get("band") == band],
            }
        )
        if reached == 0:
            break  # the first band nobody has reached ends the table (min_iter makes 100)
    return {**early, "bands": bands, "runs": rows}
