"""Scenario 12, fuzzed job files: hypothesis writes job files into pending/ (valid, near-valid,
binary garbage, huge, deeply nested, odd unicode and undecodable names) while one runner runs.

The runner never crashes, and every file lands in done/ or failed/ (with a reason and its
bytes), except names that are never jobs (leading dot, editor/copy suffixes), which stay put.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rkit import count, finished, keepable, size, timeout_for, wait_for

from spool.layout import is_ignored_name
from spool.model import MAX_JOB_BYTES, Job
from spool.states import State

FILES = size(10000, 300)
BATCH = 50 if FILES > 1000 else 30
SETTLE = 0.5
FZ = 'import json, sys\nprint(json.dumps({"ok": True, "argc": len(sys.argv)}))\n'

# -- what a job file can be ------------------------------------------------------------------------

scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
value = st.recursive(
    scalar,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)
env_name = st.text(alphabet=string.ascii_uppercase + "_", min_size=1, max_size=8).filter(
    lambda k: not k.startswith(("PYTHON", "LD_", "DYLD_", "SPOOL_")) and k not in ("PATH", "HOME")
)
valid_job = st.fixed_dictionaries(
    {"script": st.just("fz.py")},
    optional={
        "params": st.dictionaries(st.text(min_size=1, max_size=12), value, max_size=5),
        "contract": st.sampled_from(["flags", "json", "argv4"]),
        "timeout": st.floats(0.5, 100),
        "retries": st.integers(0, 2),
        "priority": st.integers(-(10**30), 10**30),
        "name": st.text(max_size=20),
        "sweep": st.text(max_size=10),
        "env": st.dictionaries(env_name, st.text(max_size=20), max_size=3),
        "args": st.lists(st.text(max_size=10), max_size=3),
        "warm": st.booleans(),
    },
)
FIELDS = sorted(Job.model_fields)


@st.composite
def near_valid(draw: Callable[..., Any]) -> bytes:
    job = draw(valid_job)
    how = draw(
        st.sampled_from(["drop", "unknown", "wrong", "script", "torn", "byte", "list", "escape", "legacy"])
    )
    if how == "drop":
        job.pop("script")
    elif how == "unknown":
        job[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in FIELDS))] = draw(value)
    elif how == "wrong":
        job[draw(st.sampled_from([f for f in FIELDS if f not in ("rev", "rev_diff", "requires")]))] = draw(
            value
        )
    elif how == "script":
        job["script"] = draw(
            st.sampled_from(["", "/etc/passwd", "../fz.py", "nope.py", "a/../../b.py", "fz.py/"]) | st.text()
        )
    elif how == "legacy":
        job = {
            "scriptName": "fz.py",
            "jobParameters": draw(value),
            **({"extra": 1} if draw(st.booleans()) else {}),
        }
    raw = json.dumps(job).encode()
    if how == "torn":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "byte":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + draw(st.binary(min_size=1, max_size=3)) + raw[i:]
    elif how == "list":
        raw = b"[" + raw + b"]"
    elif how == "escape":  # escapes JSON allows that no argv or environment can carry
        raw = (
            raw[:-1]
            + b', "params": {"x": "'
            + draw(st.sampled_from([b"\\ud800", b"a\\u0000b", b"\\udfff\\ud800"]))
            + b'"}}'
        )
        raw = raw if raw.startswith(b"{") else b"{}"
    return raw


# Big contents are drawn as small recipes and built only when written: hypothesis keeps every
# value it has drawn, and thousands of 4 MB strings would fill the machine's memory.
huge = st.integers(MAX_JOB_BYTES - 2000, MAX_JOB_BYTES + 100_000).map(lambda n: ("huge", n, 0))
deep = st.tuples(st.just("deep"), st.integers(20, 300_000), st.integers(0, 2))


def build(content: bytes | tuple[str, int, int]) -> bytes:
    if isinstance(content, bytes):
        return content
    what, n, kind = content
    if what == "huge":
        return b'{"script": "fz.py", "params": {"x": "' + b"a" * (n - 40) + b'"}}'
    if kind == 0:
        return b"[" * n + b"]" * n
    if kind == 1:
        return b'{"script": "fz.py", "params": {"a": ' + b"[" * n + b"]" * n + b"}}"
    return b'{"script": "fz.py", "params": {"a": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}}"


content = st.one_of(  # weighted by repetition: big files are few (they cost disk, memory, time)
    *[valid_job.map(lambda j: json.dumps(j).encode())] * 4,
    valid_job.map(lambda j: b"\xef\xbb\xbf" + json.dumps(j, indent=2, ensure_ascii=False).encode()),
    *[near_valid()] * 4,
    *[st.binary(max_size=3000)] * 2,
    huge,
    deep,
)
stem = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
)
name = st.one_of(
    st.just("ok"),
    stem,
    st.sampled_from(
        ["é", "日本語", "🙂", "\u202eevil", "e\u0301", "a b", "tab\t", "new\nline", "..", "-x", "CON", "@x"]
    ),
    st.binary(min_size=1, max_size=8).map(lambda b: os.fsdecode(b.replace(b"/", b"_").replace(b"\0", b"_"))),
)
suffix = st.sampled_from(
    [".json"] * 6 + ["", ".JSON", ".json.txt", ".json.part", ".json.swp", ".json~", ".tmp"]
)
#: always dropped first: contents that once crashed or hung a runner, or nearly could
EDGES = {
    "nul-param.json": b'{"script": "fz.py", "params": {"x": "a\\u0000b"}}',
    "nul-key.json": b'{"script": "fz.py", "params": {"a\\u0000": 1}}',
    "nul-arg.json": b'{"script": "fz.py", "args": ["\\u0000"]}',
    "surrogate-param.json": b'{"script": "fz.py", "params": {"x": "\\ud800"}}',
    "surrogate-env.json": b'{"script": "fz.py", "env": {"X": "\\udfff"}}',
    "surrogate-json.json": b'{"script": "fz.py", "contract": "json", "params": {"x": "\\ud800\\u0000"}}',
    "bom.json": b'\xef\xbb\xbf{"script": "fz.py"}',
    "e2big.json": b'{"script": "fz.py", "params": {"x": "' + b"a" * 300_000 + b'"}}',
    "deep.json": b"[" * 300_000 + b"]" * 300_000,
    "deep-params.json": b'{"script": "fz.py", "params": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
    "nan.json": b'{"script": "fz.py", "timeout": NaN}',
    "infinity.json": b'{"script": "fz.py", "priority": Infinity}',
    "bigint.json": b'{"script": "fz.py", "priority": 1' + b"0" * 5000 + b"}",
    "dupkeys.json": b'{"script": "nope.py", "script": "fz.py"}',
    "empty.json": b"",
    "null.json": b"null",
    "number.json": b"12",
    "utf16.json": '{"script": "fz.py"}'.encode("utf-16"),
    "over-limit.json": b'{"script": "fz.py", "params": {"x": "' + b"a" * MAX_JOB_BYTES + b'"}}',
    "nan-param.json": b'{"script": "fz.py", "params": {"x": NaN}}',
    "huge-float-param.json": b'{"script": "fz.py", "params": {"x": [1e400]}}',
    "surrogate-key.json": b'{"script": "fz.py", "params": {"\\ud800": 1}}',
    "dup-param.json": b'{"script": "fz.py", "params": {"a": 1, "a": 2}}',
    "env-pythonpath.json": b'{"script": "fz.py", "env": {"PYTHONPATH": "/tmp"}}',
    "env-spool.json": b'{"script": "fz.py", "env": {"SPOOL_JOB_ID": "x"}}',
    "formula-name.json": b'{"script": "fz.py", "name": "=HYPERLINK(\\"http://x\\")"}',
}

files = st.lists(st.tuples(name, suffix, content), min_size=BATCH // 2, max_size=BATCH)


def readers_survive(sp: Any) -> None:
    """After the storm every reader still reads the spool: the CLI's (a strict UTF-8 pipe), the
    report's; none prints a traceback (issue 19)."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "spool"
    for verb in (["ls"], ["ls", "--json"], ["status"], ["results", "--all"], ["results", "--all", "--csv"],
                 ["results", "--all", "--json"], ["report", "--output", str(sp.root.parent / "fz-report")]):
        res = subprocess.run([str(exe), "--spool", str(sp.root), *verb], capture_output=True, timeout=600,
                             env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
        assert res.returncode == 0 and b"Traceback" not in res.stderr, (verb, res.stderr[-2000:])


@pytest.mark.slow
@timeout_for(3600, 200)
def test_fuzzed_job_files_never_crash_the_runner(scenario):
    sp, runners = scenario.spool(settle_seconds=SETTLE, scan_interval=0.2)
    (sp.scripts_dir / "fz.py").write_text(FZ)
    pending = sp.layout.state_dir(State.PENDING)
    rp = runners.start("--slots", "2", name="fuzzed", quiet=False)
    submitted: dict[str, bytes] = {}
    remain: list[str] = []
    seq = [0]
    for fname, raw in EDGES.items():
        (pending / f".{fname}.tmp").write_bytes(raw)
        os.rename(pending / f".{fname}.tmp", pending / fname)
        submitted[fname] = keepable(raw)

    @settings(
        max_examples=FILES // (BATCH // 2) + 5,  # lists hold BATCH/2..BATCH files; stop at FILES
        deadline=None,
        database=None,
        phases=[Phase.generate],  # a crash shows the whole batch; shrinking a live spool misleads
        suppress_health_check=list(HealthCheck),
    )
    @given(files)
    def drop_batch(batch: list[tuple[str, str, Any]]) -> None:
        if len(submitted) >= FILES:
            return
        for stem_, suf, content_ in batch:
            raw = build(content_)
            seq[0] += 1
            fname = f"{stem_}-{seq[0]}{suf}"
            if len(os.fsencode(fname)) > 240:
                fname = f"long-{seq[0]}{suf}"
            tmp = pending / f".fz-{seq[0]}.tmp"
            tmp.write_bytes(raw)
            os.rename(tmp, pending / fname)
            submitted[fname] = keepable(raw)
            if is_ignored_name(fname):
                remain.append(fname)
        want = len(submitted) - len(remain)
        try:
            wait_for(
                lambda: (finished(sp) >= want and count(sp, State.CLAIMED) == 0) or not rp.alive(),
                120,
                0.05,
            )
        except AssertionError:
            raise AssertionError(
                f"batch not resolved: {[(s, x, build(r)[:200]) for s, x, r in batch]}"
            ) from None
        assert rp.alive(), (
            f"the runner died on this batch: {[(s, x, build(r)[:200]) for s, x, r in batch]}\n{rp.stderr()[-3000:]}"
        )

    drop_batch()
    runners.stop_all()
    readers_survive(sp)
    v = scenario.check(sp, submitted, remain=remain)
    assert v.done + v.failed == len(submitted) - len(remain)
    scenario.figures(
        "12 fuzzed job files",
        f"{len(submitted)} files ({len(remain)} never-jobs)",
        v,
        done=v.done,
        failed=v.failed,
        kinds=dict(v.kinds),
    )


@pytest.mark.slow
@timeout_for(300, 60)
def test_odd_file_types_are_rejected_not_waited_on(scenario):
    """A FIFO would block a reader forever; dangling and looping symlinks cannot be read; a
    folder with a job's name holds no job. Each is rejected with a reason; the runner drains."""
    sp, runners = scenario.spool(settle_seconds=SETTLE, scan_interval=0.2)
    (sp.scripts_dir / "fz.py").write_text(FZ)
    pending = sp.layout.state_dir(State.PENDING)
    os.mkfifo(pending / "fifo.json")
    os.symlink("loop.json", pending / "loop.json")
    os.symlink("/nonexistent/job.json", pending / "dangling.json")
    (pending / "folder-without-job").mkdir()
    (pending / "fine.json").write_bytes(b'{"script": "fz.py"}')
    runners.start(name="odd", exit_when_idle=True)
    runners.wait_all(60)
    reasons = {}
    for folder in sp.layout.state_dir(State.FAILED).iterdir():
        rec = json.loads((folder / "result.json").read_bytes())
        reasons[rec.get("original_name")] = rec["error"]["message"]
    assert set(reasons) == {"fifo.json", "loop.json", "dangling.json", "folder-without-job"}, reasons
    assert "regular file" in reasons["fifo.json"]
    assert (sp.layout.state_dir(State.DONE) / "fine" / "result.json").exists()
    assert not os.listdir(pending) and not os.listdir(sp.layout.state_dir(State.CLAIMED))
    assert not [c for c in runners.crashes()]
    scenario.figures("12b odd file types", "fifo, symlink loop, dangling symlink, empty folder", None, runs=5)
