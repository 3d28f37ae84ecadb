"""Hyperband's rules on hand-made histories (spool.sweeps.hyperband), and the folder reader
that gives them their histories (spool.sweeps.histories)."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest

from spool.errors import SweepError
from spool.layout import Layout
from spool.states import State
from spool.sweeps.histories import Histories
from spool.sweeps.hyperband import Hyperband, metric_values, parse_early_terminate

LOSS = {"name": "loss", "goal": "minimize"}
ACC = {"name": "acc", "goal": "maximize"}


def rules(metric: dict[str, str] = LOSS, **et: Any) -> Hyperband:
    return Hyperband.from_definition({"type": "hyperband", **et}, metric)


def stopped(hb: Hyperband, runs: dict[str, tuple[str, list[float]]]) -> dict[str, Any]:
    """Judge every running run against all the others, as each runner does for its own."""
    out = {}
    for name, (state, history) in runs.items():
        if state != "running":
            continue
        others = [h for n, (_, h) in runs.items() if n != name]
        out[name] = hb.decide(history, others)
    return out


# ---- bands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("et", "bands"),
    [
        ({"min_iter": 1}, (1, 3, 9, 27, 81)),
        ({"min_iter": 3, "eta": 2}, (3, 6, 12, 24, 48)),
        ({"min_iter": 2, "eta": 2.5}, (2, 5, 12, 31, 78)),  # int() of 2, 5.0, 12.5, 31.25, 78.125
        ({"max_iter": 81, "s": 4}, (1, 3, 9, 27)),
        ({"max_iter": 27, "s": 2}, (3, 9)),
        ({"max_iter": 19, "s": 2}, (2, 6)),  # W&B's own explanation: floor(19/3), floor(19/9)
        ({"max_iter": 10, "s": 5}, (1, 3)),  # 3.33, 1.11, then 0.37 < 1 ends the bands
        ({"max_iter": 5, "eta": 2, "s": 2}, (1, 2)),
        ({"max_iter": 30, "s": 2, "min_iter": 1}, (3, 10)),  # both forms: max_iter wins, as in W&B
    ],
)
def test_bands_from_min_iter_and_from_max_iter_and_s(et: dict[str, Any], bands: tuple[int, ...]) -> None:
    assert rules(**et).bands[: len(bands)] == bands


def test_min_iter_bands_grow_until_no_history_can_reach_them() -> None:
    hb = rules(min_iter=1, eta=10)
    assert hb.bands[:3] == (1, 10, 100) and hb.bands[-1] <= 2**53
    assert len(rules(min_iter=1, eta=1.01).bands) <= 100  # W&B makes 100 bands in this form


def test_defaults_are_eta_3_and_strict() -> None:
    assert parse_early_terminate({"type": "hyperband", "min_iter": 2}, LOSS) == {
        "type": "hyperband",
        "min_iter": 2,
        "eta": 3,
        "strict": True,
    }


@pytest.mark.parametrize(
    ("et", "metric", "needles"),
    [
        ({"type": "hyperband", "min_iter": 1, "patience": 3}, LOSS, ["early_terminate.patience", "patience"]),
        ({"type": "median", "min_iter": 1}, LOSS, ["early_terminate.type", "median"]),
        ({"min_iter": 1}, LOSS, ["early_terminate.type"]),
        ({"type": "hyperband", "min_iter": 1}, None, ["metric"]),
        ({"type": "hyperband"}, LOSS, ["min_iter", "max_iter"]),
        ({"type": "hyperband", "min_iter": 0}, LOSS, ["early_terminate.min_iter", ">= 1"]),
        ({"type": "hyperband", "min_iter": 1.5}, LOSS, ["early_terminate.min_iter"]),
        ({"type": "hyperband", "min_iter": 1, "eta": 1}, LOSS, ["early_terminate.eta", "> 1"]),
        ({"type": "hyperband", "min_iter": 1, "eta": "3"}, LOSS, ["early_terminate.eta"]),
        ({"type": "hyperband", "min_iter": 1, "strict": "yes"}, LOSS, ["early_terminate.strict"]),
        ({"type": "hyperband", "max_iter": 27}, LOSS, ["early_terminate.s", "needs s"]),
        ({"type": "hyperband", "max_iter": 27, "s": 1.5}, LOSS, ["early_terminate.s"]),
        ({"type": "hyperband", "max_iter": 2, "s": 1}, LOSS, ["early_terminate.max_iter", "no band"]),
        ("hyperband", LOSS, ["early_terminate", "mapping"]),
    ],
)
def test_bad_early_terminate_is_refused_naming_the_key(
    et: Any, metric: dict[str, str] | None, needles: list[str]
) -> None:
    with pytest.raises(SweepError) as info:
        parse_early_terminate(et, metric)
    text = str(info.value)
    assert all(n in text for n in needles), text


# ---- histories ----------------------------------------------------------------------------


def test_a_history_is_the_finite_numbers_of_the_metric_in_order() -> None:
    records = [
        {"loss": 3},
        {"acc": 0.5},
        {"loss": float("nan")},
        {"loss": "1.0"},
        {"loss": True},
        {"loss": float("inf")},
        {"loss": 2.5},
        "not a record",
        {"loss": None},
        {"loss": 1},
    ]
    assert metric_values(records, "loss") == [3.0, 2.5, 1.0]


# ---- decisions ----------------------------------------------------------------------------

# W&B's own example (hyperband_stopping.py's doctest): b is stopped at band 1, c passes band 1
# but not band 2, d is level with band 2's threshold and goes on; a and e have finished.
WANDB_EXAMPLE = {
    "a": ("finished", [10, 9]),
    "b": ("running", [10, 10]),
    "c": ("running", [10, 8, 8]),
    "d": ("running", [10, 7, 7]),
    "e": ("finished", [10, 6, 6]),
}


@pytest.mark.parametrize("strict", [True, False])
def test_wandbs_own_example_stops_b_and_c(strict: bool) -> None:
    hb = rules(max_iter=5, eta=2, s=2, strict=strict)
    verdicts = stopped(hb, WANDB_EXAMPLE)
    assert {k for k, v in verdicts.items() if v and v.stop} == {"b", "c"}
    # band 1 (index 1 of each history): sorted [6, 7, 8, 9, 10], index int(5 / 2) = 2 -> 8
    # band 2: sorted [6, 7, 8], index int(3 / 2) = 1 -> 7
    assert hb.thresholds(h for _, h in WANDB_EXAMPLE.values()) == [8, 7]
    b, c, d = verdicts["b"], verdicts["c"], verdicts["d"]
    assert (b.band, b.threshold, b.value, b.iteration) == (1, 8, 10, 2)
    assert (c.band, c.threshold, c.value) == (2, 7, 8)
    assert (d.band, d.threshold, d.value, d.stop) == (2, 7, 7, False)  # level is not worse


# A sweep where strict and non-strict disagree (min_iter 1, eta 3: bands 1, 3, 9, ...).
MIXED = {
    "A": ("finished", [5, 4, 3, 2, 1]),
    "B": ("finished", [6, 5, 4, 3, 2]),
    "C": ("failed", [7, 6]),
    "P": ("pending", []),
    "R": ("running", [8, 2, 6, 6]),  # good at band 1, bad at band 3, best-so-far still good
    "S": ("running", [9]),  # no band reached yet
}


def test_strict_compares_the_value_at_the_band() -> None:
    hb = rules(min_iter=1)
    # band 1: [2, 4, 5, 6] (R, A, B, C), index int(4 / 3) = 1 -> 4; band 3: [2, 3, 6], index 1 -> 3
    assert hb.thresholds(h for _, h in MIXED.values())[:3] == [4, 3, None]
    v = stopped(hb, MIXED)
    assert v["S"] is None
    r = v["R"]
    assert (r.stop, r.band, r.threshold, r.value, r.iteration, r.strict) == (True, 3, 3, 6, 4, True)


def test_not_strict_compares_the_best_value_so_far() -> None:
    v = stopped(rules(min_iter=1, strict=False), MIXED)
    r = v["R"]
    assert (r.stop, r.band, r.threshold, r.value, r.strict) == (False, 3, 3, 2, False)
    worse = {**MIXED, "R": ("running", [8, 5, 6, 6])}  # best so far 5 > 3: stopped
    r = stopped(rules(min_iter=1, strict=False), worse)["R"]
    assert (r.stop, r.value) == (True, 5)


@pytest.mark.parametrize("strict", [True, False])
def test_maximize_flips_the_sign_and_reports_the_metrics_own_values(strict: bool) -> None:
    minimize = stopped(rules(min_iter=1, strict=strict), MIXED)
    flipped = {k: (s, [-x for x in h]) for k, (s, h) in MIXED.items()}
    maximize = stopped(rules(ACC, min_iter=1, strict=strict), flipped)
    for name, v in minimize.items():
        w = maximize[name]
        if v is None:
            assert w is None
            continue
        assert w is not None
        assert (w.stop, w.band, w.threshold, w.value) == (v.stop, v.band, -v.threshold, -v.value)
    assert maximize["R"].threshold == -3


def test_only_the_largest_band_reached_counts() -> None:
    # R is worse than everyone at band 1 but, at band 3, level with the threshold: it goes on
    runs = {
        "A": ("finished", [1, 1, 9, 9, 9]),
        "B": ("finished", [1, 1, 9, 9, 9]),
        "R": ("running", [5, 5, 5, 9]),
    }
    r = stopped(rules(min_iter=1), runs)["R"]
    assert (r.band, r.stop) == (3, False)


def test_the_first_run_to_reach_a_band_is_its_own_threshold() -> None:
    r = rules(min_iter=1).decide([10, 20], [[1]])
    assert r is not None and (r.band, r.threshold, r.stop) == (1, 20, False)


def _reference(
    runs: dict[str, tuple[str, list[float]]], bands: list[int], eta: float, strict: bool
) -> set[str]:
    """The algorithm as W&B's controller states it, written out plainly (minimize)."""
    histories = [h for _, h in runs.values() if len(h) > 0]
    thresholds = []
    for band in bands:
        at_band = sorted(h[band] for h in histories if len(h) > band)
        thresholds.append(at_band[int((1.0 / eta) * len(at_band))] if at_band else math.inf)
    stop = set()
    for name, (state, h) in runs.items():
        if state != "running":
            continue
        closest, limit = -1, 0.0
        for band, threshold in zip(bands, thresholds, strict=True):
            if band < len(h):
                closest, limit = band, threshold
            else:
                break
        if closest != -1 and (h[closest] if strict else min(h)) > limit:
            stop.add(name)
    return stop


@pytest.mark.parametrize("seed", range(40))
def test_random_sweeps_stop_exactly_the_runs_the_reference_stops(seed: int) -> None:
    rng = random.Random(seed)
    eta = rng.choice([2, 3, 4, 2.5])
    strict = rng.random() < 0.5
    et: dict[str, Any] = {"eta": eta, "strict": strict}
    if rng.random() < 0.5:
        et["min_iter"] = rng.randint(1, 3)
    else:
        et.update(max_iter=rng.randint(8, 40), s=rng.randint(1, 4))
    hb = rules(**et)
    runs = {
        f"r{i}": (
            rng.choice(["running", "running", "finished", "failed"]),
            [round(rng.uniform(0, 10), 1) for _ in range(rng.randint(0, 30))],
        )
        for i in range(rng.randint(1, 25))
    }
    got = {k for k, v in stopped(hb, runs).items() if v is not None and v.stop}
    assert got == _reference(runs, list(hb.bands), eta, strict)


# ---- reading histories from the folder ----------------------------------------------------


def _job(root: Path, state: State, job_id: str, lines: list[Any], token: str = "") -> Path:
    name = f"{job_id}@{token or 'r1-x'}" if state is State.CLAIMED else job_id
    folder = root / state.value / name
    folder.mkdir(parents=True)
    (folder / "job.json").write_text("{}")
    text = "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)
    (folder / "metrics.jsonl").write_text(text)
    return folder


def test_histories_come_from_claimed_done_and_failed_of_this_sweep_only(tmp_path: Path) -> None:
    for state in State:
        (tmp_path / state.value).mkdir()
    _job(tmp_path, State.DONE, "sw-00000", [{"loss": 3}, {"loss": 2}, {"acc": 1}])
    _job(tmp_path, State.FAILED, "sw-00001", [{"loss": 5}, "not json", {"loss": "x"}])
    _job(tmp_path, State.CLAIMED, "sw-00002", [{"loss": 4}])
    _job(tmp_path, State.DONE, "other-00000", [{"loss": 0}])
    (tmp_path / "pending" / "sw-00003.json").write_text("{}")
    found = Histories(Layout(tmp_path), "sw", "loss").read()
    assert {k: (v.state, v.values) for k, v in found.items()} == {
        "sw-00000": (State.DONE, [3.0, 2.0]),
        "sw-00001": (State.FAILED, [5.0]),
        "sw-00002": (State.CLAIMED, [4.0]),
    }
    assert set(Histories(Layout(tmp_path), "sw", "loss").read(skip="sw-00002")) == {"sw-00000", "sw-00001"}


def test_a_running_jobs_history_is_read_on_whole_lines_only(tmp_path: Path) -> None:
    for state in State:
        (tmp_path / state.value).mkdir()
    folder = _job(tmp_path, State.CLAIMED, "sw-00000", [{"loss": 4}])
    hist = Histories(Layout(tmp_path), "sw", "loss")
    assert hist.read()["sw-00000"].values == [4.0]
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"loss": 3}\n{"loss": 2')  # the second line is still being written
    assert hist.read()["sw-00000"].values == [4.0, 3.0]
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(".5}\n")
    assert hist.read()["sw-00000"].values == [4.0, 3.0, 2.5]
    # it ends: the same file, now under done/, is not read twice
    os.rename(folder, tmp_path / "done" / "sw-00000")
    run = hist.read()["sw-00000"]
    assert (run.state, run.values) == (State.DONE, [4.0, 3.0, 2.5])
    # retried: a new attempt's new file is read from its start
    os.rename(tmp_path / "done" / "sw-00000", tmp_path / "claimed" / "sw-00000@r2-y")
    new = tmp_path / "claimed" / "sw-00000@r2-y" / "metrics.jsonl"
    new.rename(new.with_name("old.jsonl"))
    new.write_text('{"loss": 9}\n')
    assert hist.read()["sw-00000"].values == [9.0]


def test_an_ended_job_is_not_read_again_unless_its_folder_changed(tmp_path: Path) -> None:
    for state in State:
        (tmp_path / state.value).mkdir()
    folder = _job(tmp_path, State.FAILED, "sw-00000", [{"loss": 4}, {"loss": 3}])
    hist = Histories(Layout(tmp_path), "sw", "loss")
    for _ in range(3):
        assert hist.read()["sw-00000"].values == [4.0, 3.0]
    # retried and failed again between two looks: a new attempt's file in the same folder
    (folder / "metrics.jsonl").rename(folder / "attempt-1.jsonl")
    (folder / "metrics.jsonl").write_text('{"loss": 7}\n')
    os.utime(folder, ns=(0, os.stat(folder).st_mtime_ns + 10**9))  # a coarse clock: a clear step
    assert hist.read()["sw-00000"].values == [7.0]


def test_a_fifo_named_metrics_jsonl_never_blocks_the_reader(tmp_path: Path) -> None:
    for state in State:
        (tmp_path / state.value).mkdir()
    _job(tmp_path, State.DONE, "sw-00000", [{"loss": 1}])
    folder = tmp_path / "claimed" / "sw-00001@r1-x"
    folder.mkdir()
    os.mkfifo(folder / "metrics.jsonl")
    found = Histories(Layout(tmp_path), "sw", "loss").read()  # would hang on a blocking open
    assert found["sw-00000"].values == [1.0] and found["sw-00001"].values == []
