"""Do nothing and succeed: prints ``{"ok": true}``. For benchmarks and tests.

Usage: ``python noop.py [anything ...]`` -- every argument and flag is accepted and ignored,
so any job or sweep can point at it. It imports nothing beyond the standard library.
"""

import sys

if __name__ == "__main__":
    sys.stdout.write('{"ok": true}\n')
    sys.stdout.flush()
