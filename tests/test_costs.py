"""What a run cost (usage in result.json), argv4 output paths after the move, `after`, the probe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_kit import record, runner

from runner.core.usage import (
    COMPUTE_APPS_QUERY,
    Peak,
    UsageSampler,
    maxrss_bytes,
    parse_compute_apps,
    parse_proc_stat,
    usage_record,
)
from runner.machine.capabilities import Capabilities
from runner.machine.probe import PROBING, CapsProbe
from spool import Spool
from spool.errors import InvalidJob
from spool.states import State

REPO = Path(__file__).resolve().parents[1]

HOG = (
    "import json, time\n"
    "block = b'x' * (200 * 1024 * 1024)  # 200 MB, every page written\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < 1.0:\n"
    "    pass\n"
    "print(json.dumps({'bytes': len(block)}))\n"
)


# -- parsing and sampling (no GPU here: nvidia-smi's answers are given as text) ---------------------
def test_parse_proc_stat_with_a_hostile_command_name():
    text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 50 7 3 20 0 1 0 100 1000 2560 1844 0 0"
    ppid, session, rss, cpu = parse_proc_stat(text)
    assert (ppid, session) == (1, 4242)
    assert rss == 2560 * os.sysconf("SC_PAGE_SIZE")
    assert cpu == pytest.approx((150 + 50 + 7 + 3) / os.sysconf("SC_CLK_TCK"))
    assert parse_proc_stat("garbage") is None


def test_parse_compute_apps():
    text = "1234, 512\n1234, 256\n99, [N/A]\n\n7, 1024 MiB\npid, used_gpu_memory [MiB]\n"
    assert parse_compute_apps(text) == {1234: 768.0, 7: 1024.0}
    assert parse_compute_apps("") == {}


def test_maxrss_units_per_platform():
    assert maxrss_bytes(1000, "linux") == 1024000
    assert maxrss_bytes(1000, "darwin") == 1000


def test_usage_record_takes_the_larger_peak():
    class RU:
        ru_utime, ru_stime, ru_maxrss = 1.23456, 0.1, 100 * 1024  # 100 MB in kilobytes

    rec = usage_record(2.0, RU(), Peak(rss=300 * 1024 * 1024, samples=2), "linux")
    assert rec == {"wall_s": 2.0, "user_s": 1.235, "sys_s": 0.1, "max_rss_mb": 300.0, "samples": 2}
    rec = usage_record(2.0, None, Peak(rss=50 * 1024 * 1024, cpu=0.5, gpu_mib=1500.0, samples=3))
    assert rec["cpu_s"] == 0.5 and rec["gpu_mem_mb"] == 1500.0 and "user_s" not in rec


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="sampling reads /proc")
def test_sampler_sums_a_session_and_maps_gpu_memory():
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; x = b'y' * (30 << 20); "
         "p = subprocess.Popen([sys.executable, '-c', 'import time; z = b\"q\" * (20 << 20); time.sleep(30)']); "
         "time.sleep(30)"],
        start_new_session=True,
    )
    try:
        time.sleep(1.5)
        calls = []

        def fake_smi(argv, timeout):
            calls.append(argv)
            return 0, f"{child.pid}, 700\n1, 999\n", ""

        s = UsageSampler(every=60, gpu_every=10, run=fake_smi)
        s.add(child.pid)
        s.sample_once(time.monotonic())
        peak = s.remove(child.pid)
        assert calls == [COMPUTE_APPS_QUERY]
        assert peak.rss >= 50 << 20  # both processes of the session, summed
        assert peak.gpu_mib == 700.0 and peak.samples == 1
        none = UsageSampler(every=60, gpu_every=None, run=fake_smi)
        none.add(child.pid)
        none.sample_once(time.monotonic())
        assert none.remove(child.pid).gpu_mib is None and len(calls) == 1  # no GPU: never asked
    finally:
        os.killpg(child.pid, 9)
        child.wait()


# -- end to end with a real runner -------------------------------------------------------------------
def test_usage_of_a_script_that_allocates_200mb_and_burns_a_second(spool_root, run_cli):
    (spool_root.scripts_dir / "hog.py").write_text(HOG)
    job = spool_root.submit("hog.py")
    runner(spool_root)
    usage = record(spool_root, job)["usage"]
    assert 200 <= usage["max_rss_mb"] <= 450, usage
    assert usage["user_s"] + usage["sys_s"] >= 0.95, usage
    assert usage["wall_s"] >= 1.0 and usage["wall_s"] >= usage["user_s"], usage
    assert "gpu_mem_mb" not in usage  # no NVIDIA GPU here: absent, not zero
    df = Spool(spool_root.root).results()
    assert df.loc[0, "usage.max_rss_mb"] == usage["max_rss_mb"]
    table = run_cli("--spool", spool_root.root, "results")
    assert "usage.max_rss_mb" in table.stdout or "max_rss_mb" in table.stdout
    shown = run_cli("--spool", spool_root.root, "show", job).stdout
    assert f"max_rss_mb {usage['max_rss_mb']}" in shown or "max rss" in shown


def test_argv4_output_paths_open_after_the_move(spool_root, run_cli):
    import shutil

    shutil.copy(REPO / "scripts" / "encode_csv.py", spool_root.scripts_dir)
    shutil.copy(REPO / "spool-dir" / "data" / "iris_small.csv", spool_root.root / "data")
    job = spool_root.submit(
        "encode_csv.py",
        {"dataFileName": "iris_small.csv", "dataPath": "data/", "execution": {"max_columns": 50}},
        contract="argv4",
    )
    runner(spool_root)
    rec = record(spool_root, job)
    assert "/claimed/" in rec["result"]["path"]  # the script's own words, kept as they were
    assert rec["result_paths"] == {"path": f"done/{job}/outputs/iris_small_encoded.csv"}
    df = Spool(spool_root.root).results()
    assert Path(df.loc[0, "result.path"]).is_file()
    assert Path(df.loc[0, "result.path"]).read_text().startswith("num_")
    shown = run_cli("--spool", spool_root.root, "show", job).stdout
    now_line = next(line for line in shown.splitlines() if "now at" in line)
    assert Path(now_line.split("now at", 1)[1].split(":", 1)[1].strip()).is_file()


def test_after_orders_and_fails_with_dependency(spool_root, run_cli):
    root = str(spool_root.root)
    sweep = json.loads(run_cli("--spool", root, "sweep", "sleep.py", "--grid", "seconds=0.3,0.6",
                               "--json").stdout)
    b = run_cli("--spool", root, "submit", "s.py", "--after", sweep["sweep"]).stdout.strip()
    c = run_cli("--spool", root, "submit", "s.py", "--after", b).stdout.strip()
    f = spool_root.submit("fail.py")
    d = spool_root.submit("s.py", after=[f])
    # a file dropped by hand naming nothing: failed, not left waiting for ever
    (spool_root / "pending" / "dropped-1.json").write_text('{"script": "s.py", "after": ["nosuch-job"]}')
    runner(spool_root, "--slots", "3")
    sp = Spool(root)
    ended = {j: record(sp, j)["ended"] for j in sweep["jobs"]}
    assert record(sp, b)["started"] > max(ended.values())
    assert record(sp, c)["started"] > record(sp, b)["ended"]
    err = record(sp, d)["error"]
    assert sp.get(d).state is State.FAILED and err["kind"] == "dependency" and f in err["message"]
    err = record(sp, "dropped-1")["error"]
    assert err["kind"] == "dependency" and "nosuch-job" in err["message"]


def test_after_refuses_unknown_ids_and_cycles(spool_root, run_cli):
    proc = run_cli("--spool", spool_root.root, "submit", "s.py", "--after", "nosuch")
    assert proc.returncode == 2 and "after" in proc.stderr and "nosuch" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (spool_root / "pending" / "y1.json").write_text('{"script": "s.py", "after": ["x1"]}')
    with pytest.raises(InvalidJob, match="cycle"):
        spool_root.submit("s.py", job_id="x1", after=["y1"])
    with pytest.raises(InvalidJob, match="itself"):
        spool_root.submit("s.py", job_id="x2", after=["x2"])


# -- the probe off the start path -------------------------------------------------------------------
def _caps(**kw) -> Capabilities:
    base = dict(host="h", os="linux", arch="x86_64", cpu_count=2, cpu_model="c", memory_gb=8.0,
                gpu=False, gpu_reason="quick", python="p", python_version="3.11.7")
    base.update(kw)
    return Capabilities(**base)


def test_probe_runs_in_the_background_and_is_cached(tmp_path):
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    release = __import__("threading").Event()
    calls = []

    def full(py, tags):
        calls.append(py)
        release.wait(10)
        return _caps(gpu=True, gpu_reason="GTX 1060 works", cuda_devices=[{"index": 0}])

    probe = CapsProbe(str(python), ["t"], folder=tmp_path / "cache", full=full,
                      quick=lambda py, tags: _caps(gpu_reason=PROBING, tags=tags))
    assert not probe.ready and probe.caps.gpu_reason == PROBING and probe.poll() is None
    release.set()
    assert probe.wait(10)
    got = probe.poll()
    assert got is not None and got.gpu and probe.ready and probe.poll() is None
    # the next start has the verdict at once, without probing
    again = CapsProbe(str(python), ["u"], folder=tmp_path / "cache", full=full, quick=None)  # type: ignore[arg-type]
    assert again.ready and again.from_cache and again.caps.gpu and again.caps.tags == ["u"]
    assert len(calls) == 1
    # installing a package (site-packages changes) or a new interpreter: probed again
    time.sleep(0.01)
    (site / "torch").mkdir()
    third = CapsProbe(str(python), [], folder=tmp_path / "cache", full=full,
                      quick=lambda py, tags: _caps(gpu_reason=PROBING))
    assert not third.ready
    third.wait(10)
    assert len(calls) == 2


def test_runner_takes_cpu_jobs_while_probing_and_gpu_jobs_wait(spool_root, tmp_path):
    cpu = spool_root.submit("s.py")
    gpu = spool_root.submit("s.py", requires={"gpu": True})
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "fresh-cache")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "spool"), "--spool", str(spool_root.root), "runner",
         "--exit-when-idle", "--nice", "0"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "probing torch and the GPU in the background" in proc.stderr
    assert "probed" in proc.stderr  # the verdict came before the runner left (and is cached)
    assert Spool(spool_root.root).get(cpu).state is State.DONE
    assert Spool(spool_root.root).get(gpu).state is State.PENDING  # no GPU here: left for another
    assert list((tmp_path / "fresh-cache" / "housespool").glob("probe-*.json"))


def test_report_shows_labels_notes_and_usage(spool_root, run_cli):
    pytest.importorskip("matplotlib")
    root = str(spool_root.root)
    out = run_cli("--spool", root, "sweep", "sleep.py", "--grid", "seconds=0.1,0.2", "--label", "group=g1",
                  "--json")
    sweep = json.loads(out.stdout)
    runner(spool_root)
    first = sweep["jobs"][0]
    run_cli("--spool", root, "note", first, "looks <b>odd</b>")
    assert run_cli("--spool", root, "report").returncode == 0
    page = (spool_root.root / "report" / "jobs" / f"{first}.html").read_text()
    assert "looks &lt;b&gt;odd&lt;/b&gt;" in page and "<b>odd</b>" not in page  # text, never HTML
    assert "peak memory" in page and "group" in page
    sweep_page = (spool_root.root / "report" / "sweeps" / f"{sweep['sweep']}.html").read_text()
    assert "Time and memory per machine" in sweep_page and "label.group" in sweep_page
    # drawn by the browser from the page's data: each job's wall time and peak memory, with its id
    block = re.search(r'<script type="application/json" id="chart-data-usage">(.*?)</script>', sweep_page, re.S)
    assert block and 'data-chart="usage"' in sweep_page
    usage = json.loads(block.group(1))
    assert sorted(j for ids in usage["panels"][0]["ids"] for j in ids) == sorted(sweep["jobs"])
    # a note added later rebuilds that job's page (its key follows notes/<id>/)
    time.sleep(0.01)
    run_cli("--spool", root, "note", first, "second thoughts")
    assert run_cli("--spool", root, "report").returncode == 0
    assert "second thoughts" in (spool_root.root / "report" / "jobs" / f"{first}.html").read_text()
