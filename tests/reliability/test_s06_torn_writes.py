"""Scenario 6, torn writes: job files written slowly, byte by byte, straight into pending/;
`.part` copies renamed into place when complete; editor swap files, backups and temp files
left there for good; half-written JSON abandoned for good.

None is taken early (a job is claimed only after its closing brace was written); every complete
one runs; the abandoned ones end in failed/ with a reason and their bytes; the names that are
never jobs stay in pending/, untouched.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from datetime import datetime

import pytest
from rkit import finished, job_bytes, size, timeout_for, wait_for

from spool.states import State

N = size(1000, 100)  # written byte by byte
PARTS = size(100, 10)  # copied as .part, then renamed
ABANDONED = size(50, 6)  # half written, never finished
WRITERS = 8
SETTLE = 2.0


@pytest.mark.slow
@timeout_for(1800, 150)
def test_torn_writes_are_never_taken_early(scenario):
    sp, runners = scenario.spool(settle_seconds=SETTLE, scan_interval=0.2)
    pending = sp.layout.state_dir(State.PENDING)
    rng = random.Random(6)
    slow = {f"slow-{i:04d}": job_bytes(i, params={"pad": "x" * rng.randrange(0, 40)}) for i in range(N)}
    parts = {f"part-{i:03d}": job_bytes(10_000 + i) for i in range(PARTS)}
    abandoned = {f"half-{i:03d}": job_bytes(20_000 + i)[: rng.randrange(1, 30)] for i in range(ABANDONED)}
    forever = {  # never jobs: editors' and copy tools' files
        ".slow-0000.json.swp": b"\x00vim swap\x00" * 50,
        "slow-0001.json~": job_bytes(1),
        "notes.json.tmp": b'{"script": "mark.py"}',
        "big.json.part": b'{"script": "mark.py", "params": {"i": 1',
        ".hidden.json": job_bytes(7),
        "download.json.crdownload": job_bytes(8),
    }
    closed_at: dict[str, float] = {}  # job -> wall time its closing brace was written
    lock = threading.Lock()

    for k in range(2):
        runners.start("--slots", "2", name=f"torn{k}")

    def writer(names: list[str]) -> None:
        wr = random.Random(hash(names[0]) if names else 0)
        open_files = []
        todo = list(names)
        while todo or open_files:
            while todo and len(open_files) < 4:  # four files at once, interleaved
                name = todo.pop()
                fd = os.open(pending / f"{name}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                open_files.append([name, fd, 0])
            for item in list(open_files):
                name, fd, pos = item
                raw = slow[name]
                os.write(fd, raw[pos : pos + 1])
                if pos == len(raw.rstrip()) - 1:  # the closing brace: from now on it may parse
                    with lock:
                        closed_at[name] = time.time()
                item[2] = pos + 1
                if item[2] == len(raw):
                    os.close(fd)
                    open_files.remove(item)
            time.sleep(wr.choice([0.001, 0.005, 0.01, 0.02]) if wr.random() > 0.01 else wr.uniform(0.2, 0.8))

    names = list(slow)
    threads = [threading.Thread(target=writer, args=(names[k::WRITERS],)) for k in range(WRITERS)]
    for t in threads:
        t.start()
    for name, raw in forever.items():
        (pending / name).write_bytes(raw)
    for name, raw in abandoned.items():
        (pending / f"{name}.json").write_bytes(raw)
    for name, raw in parts.items():  # a copy tool: .part first, renamed when complete
        part = pending / f"{name}.json.part"
        with open(part, "wb") as f:
            for i in range(0, len(raw), 7):
                f.write(raw[i : i + 7])
                f.flush()
                time.sleep(0.002)
        os.rename(part, pending / f"{name}.json")
    for t in threads:
        t.join()
    total = N + PARTS + ABANDONED
    wait_for(lambda: finished(sp) == total, 600, 0.2, "every complete job ran and every abandoned one failed")
    runners.stop_all()

    submitted = {f"{j}.json": raw for j, raw in {**slow, **parts, **abandoned}.items()}
    submitted.update(forever)
    v = scenario.check(sp, submitted, remain=forever)
    assert v.done == N + PARTS and v.failed == ABANDONED, v.summary()
    for name in abandoned:
        err = v.records[f"{name}.json"]["error"]
        assert err["kind"] == "invalid" and "not valid JSON" in err["message"], err
    early = []
    for name in slow:
        claim = json.loads((v.folders[f"{name}.json"] / "claim.json").read_bytes())
        claimed = datetime.fromisoformat(claim["claimed_at"]).timestamp()
        if claimed < closed_at[name]:
            early.append((name, closed_at[name] - claimed))
    assert not early, f"taken before the closing brace was written: {early[:5]}"
    scenario.figures(
        "6 torn writes",
        f"{N} byte-by-byte, {PARTS} .part, {ABANDONED} abandoned, {len(forever)} never-jobs",
        v,
    )
