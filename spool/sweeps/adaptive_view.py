"""What `spool show SWEEP` (and the report) say about an adaptive sweep: one row per slot.

Per slot: its job's state, how the point was chosen (random or the model), how many results
it was computed from, the model's predicted mean and spread there, the acquisition value,
and the run's own observation (best value of the metric so far, by the goal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spool.sweeps.adaptive import AdaptiveSweep, closed_reason, sweep_runs
from spool.sweeps.bayes import observations
from spool.sweeps.slots import live_count, read_slots, stop_path
from spool.untrusted import read_file

if TYPE_CHECKING:
    from spool.layout import Layout

__all__ = ["adaptive_view"]


def adaptive_view(
    layout: Layout, sweep_id: str, doc: dict[str, Any], settle_seconds: float = 10.0
) -> dict[str, Any]:
    """The sweep's state as plain data (JSON-ready); `settle_seconds` as in spool.toml."""
    sweep = AdaptiveSweep(sweep_id, doc)
    slots = read_slots(layout, sweep_id)
    runs = sweep_runs(layout, sweep, slots)
    settings = sweep.settings
    seen, _ = observations(settings, runs)
    by_slot = {r.slot: r for r in runs}
    rows: list[dict[str, Any]] = []
    best: float | None = None
    for n in sorted(slots):
        rec = slots[n]
        run = by_slot.get(n)
        value = seen.get(sweep.job_id(n))
        if value is not None and run is not None and run.state == "done":
            best = value if best is None else min(best, value)
        predicted = rec.get("predicted") or {}
        rows.append(
            {
                "slot": n,
                "job": sweep.job_id(n),
                "state": run.state if run is not None else "unreadable",
                "method": rec.get("method"),
                "results": len(rec.get("observed") or {}),
                "standins": len(rec.get("standins") or []),
                "predicted_mean": predicted.get("mean"),
                "predicted_std": predicted.get("std"),
                "acquisition": predicted.get("acquisition"),
                "value": None if value is None else settings.sign * value,
                "best_so_far": None if best is None else settings.sign * best,
                "point": rec.get("point"),
            }
        )
    reason = closed_reason(layout, sweep, live_count(layout, slots, settle_seconds), runs)
    if reason == "stopped":
        try:
            import json

            reason = json.loads(read_file(stop_path(layout, sweep_id))).get("reason", "stopped")
        except (OSError, ValueError, AttributeError):
            pass
    return {
        "sweep": sweep_id,
        "method": sweep.block.get("method", "bayes"),
        "metric": sweep.block["metric"],
        "run_cap": sweep.run_cap,
        "queue": sweep.block.get("queue", 1),
        "sample_seed": sweep.seed,
        "open": reason is None,
        "closed_because": reason,
        "slots": rows,
    }
