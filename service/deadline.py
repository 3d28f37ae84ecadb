"""A deadline for request heads: a connection that never finishes its headers is closed.

uvicorn times out idle keep-alive connections, but not one that opened and then sends its
request line and headers a byte at a time, or not at all (slowloris): each such connection
is held for ever, and enough of them take every file descriptor the server has. Here a
connection waiting for a request head gets `HEADER_TIMEOUT` seconds from its first moment of
waiting (its opening, or the end of its last response) to deliver the whole head.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderDeadline", "HEADER_TIMEOUT", "protocol_with_timeout"]

HEADER_TIMEOUT = 10.0


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, with a deadline on every request head."""

    header_timeout = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_deadline is None and not self._in_request():
            self._head_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expire(self) -> None:
        self._head_deadline = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._arm()  # bytes of a head: the deadline runs from the first, not from the last
        super().data_received(data)
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle now: uvicorn's keep-alive timeout applies until the next bytes

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_with_timeout(seconds: float) -> type[HeaderDeadline]:
    """`HeaderDeadline` with its own timeout (`spool serve --header-timeout`)."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": float(seconds)})
