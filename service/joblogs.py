"""A job's log files, read whole or followed live, while the job's folder moves between states."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from spool.api import Spool
from spool.states import State
from spool.untrusted import open_regular

__all__ = ["open_log", "read_all", "follow"]


def open_log(sp: Spool, job_id: str, name: str) -> Any:
    """The open log file of a started job (None if it has none); follows a move between states."""
    for _ in range(3):
        entry = sp.layout.find(job_id)
        if entry is None or entry.state is State.PENDING or not entry.is_folder:
            return None
        try:
            return open_regular(entry.path / name)  # closed by the reader; a FIFO is never opened
        except FileNotFoundError:
            if entry.state is not State.CLAIMED:
                return None
        except OSError:  # not a regular file, or unreadable: no log to show
            return None
    return None


def read_all(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(1 << 16):
            yield chunk


async def follow(sp: Spool, job_id: str, name: str, request: Request) -> AsyncIterator[bytes]:
    """Wait for the job to start, then stream its log until it is no longer running (or the
    client goes away)."""
    while True:
        entry = await run_in_threadpool(sp.layout.find, job_id)
        if entry is None or await request.is_disconnected():
            return
        if entry.state is not State.PENDING:
            break
        await asyncio.sleep(0.25)
    deadline = time.monotonic() + 10
    handle = None
    while handle is None:
        handle = await run_in_threadpool(open_log, sp, job_id, name)
        if handle is not None:
            break
        entry = await run_in_threadpool(sp.layout.find, job_id)
        if entry is None or entry.state is not State.CLAIMED or time.monotonic() > deadline:
            return  # ended (or never started) without this log
        await asyncio.sleep(0.1)
    with handle:
        while True:
            chunk = await run_in_threadpool(handle.read, 1 << 16)
            if chunk:
                yield chunk
                continue
            entry = await run_in_threadpool(sp.layout.find, job_id)
            if entry is None or entry.state is not State.CLAIMED:
                rest = await run_in_threadpool(handle.read)
                if rest:
                    yield rest
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.2)
