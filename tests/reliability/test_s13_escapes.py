"""Scenario 13, escapes: `..`, absolute paths, symlinks out of scripts/ and data/, job ids
with separators are all refused (the job fails as invalid, its bytes kept); params full of
shell metacharacters reach the script verbatim, as single arguments (no shell ever runs)."""

from __future__ import annotations

import json
import os

import pytest
from rkit import drop, size, timeout_for

from spool.errors import InvalidJob
from spool.states import State

ECHO = (
    "import json, os, sys\n"
    "data = sys.stdin.read() if os.environ.get('READ_STDIN') else None\n"
    "print(json.dumps({'argv': sys.argv[1:], 'stdin': data, 'env': os.environ.get('NASTY')}))\n"
)
NASTY = "a b;$(touch PWNED)`touch PWNED2`|&&'\"\\\n*?~{x,y}<in >out $HOME %s -rf"
ROUNDS = size(5, 1)


def job(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.slow
@timeout_for(600, 120)
def test_escapes_refused_and_metacharacters_verbatim(scenario, tmp_path):
    sp, runners = scenario.spool(settle_seconds=0.5)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("print('{\"escaped\": true}')\n")
    (outside / "secret.csv").write_text("secret\n")
    (sp.scripts_dir / "echo.py").write_text(ECHO)
    os.symlink(outside / "evil.py", sp.scripts_dir / "link.py")
    os.symlink(outside, sp.scripts_dir / "linkdir")
    os.symlink(outside, sp.root / "data" / "outlink")
    (sp.root / "data" / "in.csv").write_text("a\n1\n")

    refused = {  # id -> (job bytes, words expected in the reason)
        "dotdot": (job(script="../outside/evil.py"), "'..'"),
        "dotdot-deep": (job(script="sub/../../evil.py"), "'..'"),
        "absolute": (job(script=str(outside / "evil.py")), "relative"),
        "backslash": (job(script="..\\evil.py"), "relative"),
        "symlink-script": (job(script="link.py"), "leaves"),
        "symlink-dir": (job(script="linkdir/evil.py"), "leaves"),
        "argv4-dotdot": (job(script="echo.py", contract="argv4", params={"dataPath": "../"}), "leaves"),
        "argv4-abs": (
            job(script="echo.py", contract="argv4", params={"dataPath": "/etc/"}),
            "spool-relative",
        ),
        "argv4-symlink": (
            job(
                script="echo.py",
                contract="argv4",
                params={"dataPath": "data/outlink/", "dataFileName": "secret.csv"},
            ),
            "leaves",
        ),
        "argv4-write": (job(script="echo.py", contract="argv4", params={"writePath": "../../x/"}), "leaves"),
        "argv4-file": (
            job(script="echo.py", contract="argv4", params={"dataFileName": "../../etc/passwd"}),
            "file name",
        ),
        "input-dotdot": (job(script="echo.py", inputs=["../outside/secret.csv"]), "'..'"),
    }
    bad_names = {  # file names that cannot be job ids: refused under a new id, name and bytes kept
        "a\\b.json": job(script="echo.py"),
        "a@b.json": job(script="echo.py"),
        "new\nline.json": job(script="echo.py"),
        "sp ace.json": job(script="echo.py"),
        "..json.": job(script="echo.py"),
    }
    fine = {
        "flags": job(
            script="echo.py",
            params={"nasty": NASTY, "--inject": "--x=1"},
            args=[NASTY, "-c"],
            env={"NASTY": NASTY},
        ),
        "json-stdin": job(
            script="echo.py", contract="json", params={"nasty": NASTY}, env={"READ_STDIN": "1"}
        ),
        "argv4-nasty": job(
            script="echo.py", contract="argv4", params={"dataFileName": "in.csv", "execution": {"n": NASTY}}
        ),
        "input-symlink": job(script="echo.py", inputs=["data/outlink/secret.csv", "data/in.csv"]),
    }
    submitted: dict[str, bytes] = {}
    for r in range(ROUNDS):
        for jid, (raw, _) in refused.items():
            drop(sp, f"{jid}-{r}", raw)
            submitted[f"{jid}-{r}.json"] = raw
        for jid, raw in fine.items():
            drop(sp, f"{jid}-{r}", raw)
            submitted[f"{jid}-{r}.json"] = raw
    pending = sp.layout.state_dir(State.PENDING)
    for name, raw in bad_names.items():
        (pending / name).write_bytes(raw)
        submitted[name] = raw
    with pytest.raises(InvalidJob):
        sp.submit("echo.py", job_id="../x")
    with pytest.raises(InvalidJob):
        sp.submit("echo.py", job_id="a/b")

    runners.start(name="guard", exit_when_idle=True)
    runners.wait_all(120)
    v = scenario.check(sp, submitted, remain=[n for n in bad_names if n.startswith(".")])

    for r in range(ROUNDS):
        for jid, (_, words) in refused.items():
            rec = v.records[f"{jid}-{r}.json"]
            assert rec["state"] == "failed" and rec["error"]["kind"] == "invalid", (jid, rec["error"])
            assert words in rec["error"]["message"], (jid, rec["error"]["message"])
        res = v.records[f"flags-{r}.json"]["result"]
        assert res["argv"] == [NASTY, "-c", f"--nasty={NASTY}", "----inject=--x=1"]  # verbatim --key=value
        assert res["env"] == NASTY
        assert json.loads(v.records[f"json-stdin-{r}.json"]["result"]["stdin"]) == {"nasty": NASTY}
        a4 = v.records[f"argv4-nasty-{r}.json"]["result"]["argv"]
        assert a4[0] == "in.csv" and json.loads(a4[3]) == {"n": NASTY}
        prov = v.records[f"input-symlink-{r}.json"].get("provenance") or {}
        hashed = prov.get("inputs", {})
        assert "leaves" in hashed["data/outlink/secret.csv"]["error"], hashed  # never read
        assert "sha256" in hashed["data/in.csv"], hashed
    for name in bad_names:
        if name.startswith("."):
            continue
        rec = v.records[name]
        assert rec["error"]["kind"] == "invalid" and rec["id"].startswith("invalid-"), rec
    assert not list(sp.root.rglob("PWNED*")) and not list(tmp_path.rglob("PWNED*"))
    assert not (outside / "escaped").exists()
    scenario.figures("13 escapes", f"{len(refused)} escapes + {len(bad_names)} bad ids x {ROUNDS}", v)
