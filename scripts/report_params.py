"""Report what reached this script: its arguments and the ``SPOOL_*`` environment.

Usage: ``python report_params.py [anything ...]`` -- no parsing, so every argument arrives
verbatim. Prints one JSON line::

    {"argv": sys.argv[1:], "env": {"SPOOL_JOB_ID": .., ...}, "params": <SPOOL_PARAMS parsed or null>,
     "cwd": .., "python": ..}

It never reads standard input (a runner may leave it open).
"""

import json
import os
import sys


def main() -> int:
    env = {key: value for key, value in sorted(os.environ.items()) if key.startswith("SPOOL_")}
    try:
        params = json.loads(env["SPOOL_PARAMS"]) if "SPOOL_PARAMS" in env else None
    except ValueError:
        params = None
    result = {
        "argv": sys.argv[1:],
        "env": env,
        "params": params,
        "cwd": os.getcwd(),
        "python": sys.executable,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
