"""Who may talk to the server, and how much they may send.

- `resolve_token`: a loopback bind needs no token; any other address needs one, from
  `--token-file` or generated into `<spool>/.serve-token` (mode 0600) on first use.
- `Guard` (ASGI middleware), in this order:
  * with a token: every request must carry it, as `Authorization: Bearer <token>` or as the
    `housespool_token` cookie a browser gets by opening any page once with `?token=<token>`;
    compared in constant time (`hmac.compare_digest`); otherwise 401;
  * without a token (loopback only): the `Host` header must name a loopback address, so a
    web page cannot reach the server through DNS rebinding; otherwise 400;
  * a POST (or any unsafe method) sent by a browser from another origin (`Origin` not this
    server, or `Sec-Fetch-Site: cross-site`) is 403: no cross-site request forgery. CORS is off
    (no `Access-Control-*` headers are ever sent), so pages elsewhere cannot read answers.
- `BodyLimit` (ASGI middleware): a body larger than the cap is 413 before any handler runs;
  the body is read whole (up to the cap) and handed on, so nothing is half-written.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from spool.errors import ConfigError

__all__ = [
    "resolve_token",
    "is_loopback",
    "token_matches",
    "Guard",
    "BodyLimit",
    "TOKEN_FILE",
    "COOKIE",
    "MAX_BODY",
]

TOKEN_FILE = ".serve-token"
COOKIE = "housespool_token"
MAX_BODY = 1024 * 1024
MIN_TOKEN_CHARS = 16
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Scope = dict[str, Any]


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read_token(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file: {exc.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise ConfigError("the token file is not UTF-8 text", file=path) from None
    if len(text) < MIN_TOKEN_CHARS or any(c.isspace() for c in text):
        raise ConfigError(f"a token must be at least {MIN_TOKEN_CHARS} characters with no spaces", file=path)
    return text


def resolve_token(spool_root: Path, host: str, token_file: str | os.PathLike[str] | None) -> str | None:
    """The token the server demands (None: a loopback bind with no `--token-file`)."""
    if token_file is not None:
        return _read_token(Path(token_file).expanduser())
    if is_loopback(host):
        return None
    path = spool_root / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the token file: {exc.strerror}", file=path) from None
    token = secrets.token_urlsafe(32)
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (of UTF-8 bytes, so any text is safe to compare)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        name = key.decode("latin-1").lower()
        if name not in out:  # the first of repeated headers counts
            out[name] = value.decode("latin-1")
    return out


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


async def _send_json(
    send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _drain(receive: Any) -> None:
    """Read what is left of a request body we refuse (bounded), so the connection stays sane."""
    for _ in range(64):
        msg = await receive()
        if msg.get("type") != "http.request" or not msg.get("more_body"):
            return


class Guard:
    """Token, Host and Origin checks for every HTTP request (see the module docstring)."""

    def __init__(self, app: Any, token: str | None = None, extra_hosts: tuple[str, ...] = ()):
        self.app = app
        self.token = token
        self.extra_hosts = {h.lower() for h in extra_hosts}

    def _host_ok(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host = urlsplit(f"//{host_header}").hostname or ""
        return is_loopback(host) or host.lower() in self.extra_hosts

    @staticmethod
    def _same_origin(headers: dict[str, str], scheme: str) -> bool:
        if headers.get("sec-fetch-site") == "cross-site":
            return False
        origin = headers.get("origin")
        if origin is None:
            return True  # not sent by a browser, or a same-origin GET
        if origin == "null":
            return False
        host = headers.get("host", "")
        parts = urlsplit(origin)
        return parts.netloc.lower() == host.lower() and parts.scheme in ("http", "https", scheme)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = scope.get("method", "GET")
        if self.token is not None:
            auth = headers.get("authorization", "")
            scheme, _, given = auth.partition(" ")
            ok = scheme.lower() == "bearer" and token_matches(given.strip(), self.token)
            if not ok:
                ok = token_matches(_cookie(headers.get("cookie"), COOKIE), self.token)
            if not ok and method == "GET":
                query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
                if token_matches(query.get("token"), self.token):
                    await self._login(scope, send, query)
                    return
            if not ok:
                await _drain(receive)
                await _send_json(
                    send,
                    401,
                    {
                        "detail": "a token is needed: send 'Authorization: Bearer <token>'",
                        "error": "unauthorized",
                    },
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        elif not self._host_ok(headers.get("host")):
            await _drain(receive)
            await _send_json(
                send, 400, {"detail": "this server answers only to a loopback Host", "error": "bad_host"}, []
            )
            return
        if method not in _SAFE_METHODS and not self._same_origin(headers, scope.get("scheme", "http")):
            await _drain(receive)
            await _send_json(
                send, 403, {"detail": "cross-origin requests are refused", "error": "cross_origin"}, []
            )
            return
        await self.app(scope, receive, send)

    async def _login(self, scope: Scope, send: Any, query: dict[str, str]) -> None:
        """`GET <page>?token=...`: set the cookie, and send the browser to the page without the token."""
        assert self.token is not None
        rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
        # one leading slash: `//evil.example/` (or `/\\evil`) would send the browser off this server
        path = "/" + str(scope.get("path", "/")).lstrip("/\\")
        location = quote(path) + (f"?{rest}" if rest else "")
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1", "replace")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"content-length", b"0"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413; hand the whole body on otherwise."""

    def __init__(self, app: Any, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _headers(scope).get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.limit):
            await _drain(receive)
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(body)
            if not msg.get("more_body"):
                break
        whole = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return dict(await receive())  # e.g. http.disconnect, for streaming answers

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        await _send_json(
            send,
            413,
            {"detail": f"the body is larger than {self.limit} bytes", "error": "too_large"},
            [(b"connection", b"close")],
        )
