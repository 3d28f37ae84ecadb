"""The ``json`` contract: read the params object on standard input, echo it back.

Usage: ``echo '{"a": 1, "b": 2.5}' | python json_echo.py``

Prints one JSON line, ``{"echo": <params>, "sum": <sum of the numeric top-level values>}``
(booleans are not numbers here; nested values are not summed). Empty input counts as ``{}``.
Input that is not a JSON object is an error: a message on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    text = sys.stdin.read()
    try:
        params = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        print(f"json_echo.py: standard input is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(params, dict):
        print(f"json_echo.py: expected a JSON object, got {type(params).__name__}", file=sys.stderr)
        return 2
    total = sum(
        value for value in params.values() if isinstance(value, (int, float)) and not isinstance(value, bool)
    )
    print(json.dumps({"echo": params, "sum": total}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
