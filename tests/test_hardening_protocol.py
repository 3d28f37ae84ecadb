"""Issue 18's protocol findings, on real folders: explicit ids reserved once (2), publishing
without hard links (10), claim errors that are not the race (11), finished folders synced before
their last move (6). Faults come from `FsOps` subclasses wrapping the real calls, or from
`strace -e inject=...:delay_enter=...` holding an instant open in a real child process.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from spool.errors import InvalidJob, StorageError
from spool.layout import listed_name
from spool.protocol import FsOps, claim, links_work, publish_new
from spool.publish import unlink_closed
from spool.states import State


class NoLinks(FsOps):
    """A mount without hard links, as smbnetfs and macOS's SMB client are: link() is EPERM."""

    def link(self, src: Path, dst: Path) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")


class Refusing(FsOps):
    def __init__(self, err: int):
        self.err = err

    def rename(self, src: Path, dst: Path) -> None:
        raise OSError(self.err, os.strerror(self.err))


def pending_entry(sp, job_id):
    return next(e for e in sp.layout.entries(State.PENDING) if e.id == job_id)


# -- 11: claim errors other than the race ------------------------------------------------------


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS, errno.EIO, errno.EPERM])
def test_a_claim_the_spool_refuses_is_storage_trouble_not_an_empty_queue(spool_root, err):
    job_id = spool_root.submit("s.py")
    with pytest.raises(StorageError) as info:
        claim(spool_root.layout, pending_entry(spool_root, job_id), "r1.0001", fs=Refusing(err))
    assert str(spool_root / "claimed") in str(info.value)
    assert (spool_root / "pending" / f"{job_id}.json").is_file()
    assert os.listdir(spool_root / "claimed") == []


def test_a_claim_that_lost_the_race_is_still_none(spool_root):
    job_id = spool_root.submit("s.py")
    entry = pending_entry(spool_root, job_id)
    assert claim(spool_root.layout, entry, "r1.0001") is not None
    assert claim(spool_root.layout, entry, "r2.0002") is None  # the file went to r1: normal


# -- 10: no-replace publishing without link() --------------------------------------------------


def test_publish_new_without_hard_links_never_replaces(tmp_path):
    fs = NoLinks()
    assert not links_work(tmp_path, fs) and links_work(tmp_path)  # probed per mount and FsOps
    target = tmp_path / "slot.json"
    assert publish_new(target, b'{"a": 1}\n', fs=fs) is True
    assert publish_new(target, b'{"a": 2}\n', fs=fs) is False
    assert target.read_bytes() == b'{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["slot.json"]  # no temp left behind


class BusyAfterClose(FsOps):
    """smbnetfs: a close still on its way to the server makes the next unlink EBUSY."""

    def __init__(self, busy: int):
        self.busy = busy
        self.unlinks = 0

    def unlink(self, path: Path) -> None:
        self.unlinks += 1
        if self.unlinks <= self.busy:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        os.unlink(path)


def test_a_file_just_closed_is_removed_once_the_share_lets_go(tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    fs = BusyAfterClose(busy=3)
    unlink_closed(probe, fs)
    assert not probe.exists() and fs.unlinks == 4


def test_a_file_held_busy_past_the_wait_raises_and_is_kept(tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    fs = BusyAfterClose(busy=10**9)
    started = time.monotonic()
    with pytest.raises(OSError) as info:
        unlink_closed(probe, fs, settle=0.2)
    assert info.value.errno == errno.EBUSY and probe.exists()
    assert 0.2 <= time.monotonic() - started < 1.0 and fs.unlinks > 2


def test_the_links_probe_waits_out_a_busy_unlink(tmp_path):
    """Before: the probe's own clean-up raised EBUSY over SMB3 and `links_work` failed."""

    class BusyNoLinks(BusyAfterClose, NoLinks):
        pass

    fs = BusyNoLinks(busy=2)
    assert links_work(tmp_path, fs) is False
    assert list(tmp_path.iterdir()) == []


def test_publish_new_over_smb_leaves_no_temp_when_its_removal_is_busy(tmp_path):
    """Without links the bytes go to a temp file first; its removal right after the close met
    EBUSY over SMB3 and the temp file stayed behind."""

    class BusyNoLinks(BusyAfterClose, NoLinks):
        pass

    links_work(tmp_path, NoLinks())  # the probe's own unlinks are not counted below
    fs = BusyNoLinks(busy=0)
    assert links_work(tmp_path, fs) is False
    fs.busy, fs.unlinks = 2, 0
    assert publish_new(tmp_path / "slot.json", b"{}\n", fsync=False, fs=fs) is True
    assert [p.name for p in tmp_path.iterdir()] == ["slot.json"]


def test_publish_new_without_hard_links_has_one_winner_among_racers(tmp_path):
    fs = NoLinks()
    wins: list[int] = []
    go = threading.Event()

    def racer(i: int) -> None:
        go.wait()
        for k in range(200):
            if publish_new(tmp_path / f"n{k}.json", f"{i}\n".encode(), fsync=False, fs=fs):
                wins.append(k)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    assert sorted(wins) == list(range(200))


def test_explicit_ids_and_sweeps_work_without_hard_links(spool_root, monkeypatch):
    """`spool sweep` and `submit(job_id=...)` on a mount with no link() (smbnetfs, macOS smbfs)."""
    monkeypatch.setattr(os, "link", NoLinks().link)
    jid = spool_root.submit("s.py", {"i": 1}, job_id="exp-1")
    with pytest.raises(InvalidJob, match="already exists"):
        spool_root.submit("s.py", {"i": 2}, job_id="exp-1")
    r = subprocess.run(
        [sys.executable, "-c", SWEEP_NO_LINKS, str(spool_root.root)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert jid == "exp-1" and len(os.listdir(spool_root / "pending")) == 1 + 3


SWEEP_NO_LINKS = textwrap.dedent(
    """
    import errno, os, sys
    def no_link(*a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")
    os.link = no_link
    from spool.cli.main import main
    sys.exit(main(["--spool", sys.argv[1], "sweep", "s.py", "--grid", "i=1,2,3"]))
    """
)


# -- 2: an explicit id is reserved once ---------------------------------------------------------

SLOW_PUBLISHER = textwrap.dedent(
    """
    import sys
    from spool import Spool
    from spool.errors import InvalidJob
    sp = Spool(sys.argv[1])
    print("looking", flush=True)
    try:
        sp.submit("s.py", {"who": "slow"}, job_id=sys.argv[2])
    except InvalidJob as exc:
        print("refused", exc.message, flush=True)
        sys.exit(2)
    print("published", flush=True)
    """
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed (Debian: strace)")
def test_an_explicit_id_is_never_published_twice_even_after_its_job_moved_on(spool_root):
    """Two `sweep --resume` at once: one is slowed (a network round trip) between its look-up
    and its publish; meanwhile the other publishes the id and a runner claims it, so the pending
    name is free again. The slow one must still be refused."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    slow = subprocess.Popen(
        [
            "strace", "-f", "-qq", "-o", "/dev/null",
            "-e", "inject=link,linkat,mkdir,mkdirat:delay_enter=2500000",  # 2.5 s before each
            sys.executable, "-c", SLOW_PUBLISHER, str(spool_root.root), "pt-00001",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert slow.stdout is not None
    assert slow.stdout.readline().strip() == "looking"
    time.sleep(1.0)  # its look-up (a miss: nothing there yet) is done; its publish is held
    spool_root.submit("s.py", {"who": "fast"}, job_id="pt-00001")
    assert claim(spool_root.layout, pending_entry(spool_root, "pt-00001"), "runner.0001") is not None
    out, err = slow.communicate(timeout=60)
    assert os.listdir(spool_root / "pending") == [], "the id was published a second time"
    assert slow.returncode == 2 and "already exists" in out, out + err


def test_a_reservation_left_by_a_dead_publisher_is_finished_once(spool_root):
    """A publisher that died between reserving and publishing leaves the job's bytes in its
    reservation: the next publisher of that id (a resume) publishes them, once."""
    ids = spool_root.layout.reserved
    (ids / "pt-9").mkdir(parents=True)
    (ids / "pt-9" / "reserved.json").write_text('{"id": "pt-9", "nonce": "x"}\n')
    (ids / "pt-9" / "job.json").write_bytes(b'{"script": "s.py", "params": {"who": "first"}}\n')
    with pytest.raises(InvalidJob):
        spool_root.submit("s.py", {"who": "second"}, job_id="pt-9")
    assert (spool_root / "pending" / "pt-9.json").read_bytes() == b'{"script": "s.py", "params": {"who": "first"}}\n'


# -- 6: a finished folder is synced before the move that publishes it ----------------------------

MOVE_DONE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from spool import Spool
    from spool.protocol import move
    from spool.states import State
    sp = Spool(sys.argv[1])
    folder = Path(sys.argv[2])
    print(move(sp.layout, folder, folder.name.split("@")[0], State.DONE))
    """
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed (Debian: strace)")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="folder fsync is Linux's")
def test_a_finished_folder_is_synced_before_its_move(spool_root):
    job_id = spool_root.submit("s.py")
    folder = claim(spool_root.layout, pending_entry(spool_root, job_id), "r1.0001")
    assert folder is not None
    (folder / "result.json").write_text('{"state": "done"}\n')
    r = subprocess.run(
        ["strace", "-qq", "-y", "-e", "trace=fsync,rename,renameat,renameat2",
         sys.executable, "-c", MOVE_DONE, str(spool_root.root), str(folder)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    calls = [ln for ln in r.stderr.splitlines() if str(folder) in ln]
    synced = [i for i, ln in enumerate(calls) if ln.startswith("fsync(") and f"<{folder}>" in ln]
    moved = [i for i, ln in enumerate(calls) if ln.startswith("rename") and "/done/" in ln]
    assert synced and moved and synced[0] < moved[0], "\n".join(calls)


# -- 7: names as smbnetfs lists them ------------------------------------------------------------


def test_claimed_names_listed_the_smbnetfs_way_are_read():
    assert listed_name("job-1%40r1.ab12") == "job-1@r1.ab12"
    assert listed_name("job-1@r1.ab12") == "job-1@r1.ab12"
    assert listed_name("plain") == "plain"
