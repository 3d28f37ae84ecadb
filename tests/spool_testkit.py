"""Test scripts shared by several test modules (imported by name: `from spool_testkit import ...`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: tiny scripts written into every `spool_root`'s scripts folder (name -> source).
TEST_SCRIPTS: dict[str, str] = {
    # the smallest script that succeeds: one JSON result line
    "s.py": "print('{\"ok\": true}')\n",
    # echoes what it was given: argv, the SPOOL_* variables it saw, and its cwd
    "echo.py": (
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('SPOOL_')}\n"
        "print(json.dumps({'argv': sys.argv[1:], 'env': env, 'cwd': os.getcwd()}))\n"
    ),
    # the `json` contract: params arrive on stdin and are echoed back as the result
    "stdin_echo.py": "import json, sys\nprint(json.dumps({'params': json.load(sys.stdin)}))\n",
    # a few metrics lines, then the result (the last JSON object)
    "metrics.py": (
        "import json\n"
        "for step in range(3):\n"
        "    print(json.dumps({'step': step, 'loss': 1.0 / (step + 1)}))\n"
        "print('not json')\n"
        "print(json.dumps({'accuracy': 0.9}))\n"
    ),
    # fails: a message on stderr and a non-zero exit
    "fail.py": "import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n",
    # exits 0 but prints no JSON object
    "no_result.py": "print('hello, no json here')\n",
    # the original scripts' convention: a result whose "status" is 400 or more is a failure
    "status_error.py": 'print(\'{"status": 500, "message": "bad input"}\')\n',
    # sleeps `--seconds` (default 30) then succeeds: for timeouts, cancels and leases
    "sleep.py": (
        "import argparse, json, time\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--seconds', type=float, default=30)\n"
        "a, _ = p.parse_known_args()\n"
        "time.sleep(a.seconds)\n"
        "print(json.dumps({'slept': a.seconds}))\n"
    ),
    # a script in a sub-folder of the scripts folder
    "sub/nested.py": "print('{\"nested\": true}')\n",
}


def write_scripts(folder: Path, scripts: Mapping[str, str] = TEST_SCRIPTS) -> None:
    """Write `scripts` (relative name -> source) into `folder`."""
    for name, source in scripts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
