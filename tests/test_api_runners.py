"""`Spool.runners()`: the heartbeats in `runners/`, aged by the spool's clock."""

from __future__ import annotations

import json
import os
import time

from spool.clock import SpoolClock, spool_now
from spool.heartbeats import ALIVE_MIN_SECONDS


def beat(sp, name: str, age: float, **doc) -> None:
    path = sp.layout.runners / f"{name}.json"
    path.write_text(json.dumps({"name": name, "status": "idle", "heartbeat_seconds": 5, **doc}))
    t = spool_now(sp.layout) - age
    os.utime(path, (t, t))


def test_runners_are_aged_by_the_spool_clock_and_judged_alive(spool_root):
    beat(spool_root, "fresh", 1)
    beat(spool_root, "gone", ALIVE_MIN_SECONDS + 5)
    beat(spool_root, "slow", 20, heartbeat_seconds=10)  # 3 beats of 10 s: still alive at 20 s
    beat(spool_root, "stopped", 1, status="stopped")
    (spool_root.layout.runners / "torn.json").write_text('{"name": ')
    (spool_root.layout.runners / ".kit-x.json").write_text("{}")
    rows = {r["name"]: r for r in spool_root.runners()}
    assert sorted(rows) == ["fresh", "gone", "slow", "stopped"]
    assert rows["fresh"]["alive"] and rows["slow"]["alive"]
    assert not rows["gone"]["alive"] and not rows["stopped"]["alive"]
    assert 0 <= rows["fresh"]["age"] < 5 and rows["gone"]["age"] >= ALIVE_MIN_SECONDS + 4
    assert not [p for p in os.listdir(spool_root.layout.runners) if p.startswith(".clock-")]


def test_the_spool_clock_is_the_file_servers_time(spool_root):
    clock = SpoolClock(spool_root.layout, "t1")
    now = clock.now()
    assert clock.path.exists() and abs(now - os.stat(clock.path).st_mtime) < 1e-6
    assert abs(now - time.time()) < 5  # a local folder: the same machine's clock
    clock.remove()
    clock.remove()  # gone already: quietly nothing
    assert not clock.path.exists()
