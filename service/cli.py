"""`spool serve`: plugged into the `spool` command through the `housespool.verbs` entry point.

Importing this module is cheap (FastAPI and uvicorn are imported only when the verb runs), so
every other `spool` verb stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "cmd_serve", "DEFAULT_PORT"]

DEFAULT_PORT = 8750
HEADER_TIMEOUT = 10.0  # service.deadline's default, here so that `spool --help` imports no uvicorn


def cmd_serve(args: argparse.Namespace) -> int:
    from spool.api import Spool
    from spool.errors import UsageError

    try:
        import uvicorn

        from service.app import create_app
    except ImportError as exc:
        raise UsageError(
            f"spool serve needs the serve extra: pip install 'housespool[serve]' ({exc.name} is missing)"
        ) from None
    from service.security import TOKEN_FILE, is_loopback, resolve_token

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    if not 0.1 <= args.header_timeout <= 3600:  # also refuses nan and inf
        raise UsageError(f"--header-timeout must be between 0.1 and 3600 seconds, not {args.header_timeout}")
    sp = Spool(args.spool)
    sp.check()
    token = resolve_token(sp.root, args.host, args.token_file)
    app = create_app(sp.root, token=token, report=args.report)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    lines = [f"spool serve: {sp.root} at http://{shown}:{args.port}/ (API docs: /docs, job form: /)"]
    if token is not None:
        where = args.token_file or sp.root / TOKEN_FILE
        lines.append(f"  every request needs 'Authorization: Bearer <token>'; the token is in {where}")
        lines.append("  (a browser: open any page once with ?token=<token>)")
    elif not is_loopback(args.host):  # pragma: no cover - resolve_token always gives one here
        raise UsageError("refusing to serve a non-loopback address without a token")
    if args.report:
        lines.append("  report: /report/")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    from service.deadline import protocol_with_timeout

    config = uvicorn.Config(
        app,
        http=protocol_with_timeout(args.header_timeout),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="a REST API over the spool (and every script as a micro-service)",
        description="Serve the spool over HTTP: the jobs API, the scripts as micro-services, the job form "
        "and the original POST /scripts/run. Binds 127.0.0.1 by default; any other address needs a token "
        "(--token-file F, else one is generated into <spool>/.serve-token).",
    )
    common(p, json_flag=False)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--token-file",
        metavar="F",
        help="file holding the bearer token every request must carry (required off loopback, else generated)",
    )
    p.add_argument("--report", action="store_true", help="also serve the static report at /report/")
    p.add_argument(
        "--header-timeout",
        type=float,
        default=HEADER_TIMEOUT,
        metavar="S",
        help=f"close a connection that sent no whole request head in S seconds (default {HEADER_TIMEOUT:g})",
    )
    p.set_defaults(func=cmd_serve)
