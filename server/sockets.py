"""One websocket's outgoing side, the same for the sync, events and worker sockets: a
bounded queue, one writer task, the backpressure rule and the close.

Sending never blocks the caller (a room broadcasting, an event bus, the gateway): messages
wait in the outbox and one task writes them in order. A peer that lets more than `limit`
messages pile up is cut loose with 1013 (too far behind): it resyncs faster from scratch
than from a backlog. A close jumps the queue (whatever still waits is dropped) unless
it is told to flush.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.errors import CloseCode

T = TypeVar("T")

# What writing to a websocket that has gone away raises, between Starlette and uvicorn.
GONE = (WebSocketDisconnect, RuntimeError, OSError)


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


class Outbox(Generic[T]):
    """Messages waiting for one websocket, and the task that writes them.

    `write` sends one message (it may raise when the peer has gone: the writer stops and
    `stop` hands the error back); `close` sends the close frame and must not raise. `take`
    picks the next message off the queue, so a caller may fold several waiting ones into
    one (the sync socket merges document updates); by default it is the first one.
    """

    def __init__(
        self,
        write: Callable[[T], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        limit: int | None,
        *,
        take: Callable[[deque[T]], T] | None = None,
    ) -> None:
        self._write = write
        self._close = close
        self._limit = limit
        self._take = take or deque.popleft
        self._queue: deque[T] = deque()
        self._closing: _Close | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self._closing is not None

    def __len__(self) -> int:
        return len(self._queue)

    def send(self, message: T) -> None:
        """Queue a message; never blocks. Over the limit, the peer is cut loose instead."""
        if self._closing is not None:
            return
        if self._limit is not None and len(self._queue) >= self._limit:
            self.close(CloseCode.TOO_FAR_BEHIND, "too far behind; reconnect to resync")
            return
        self._queue.append(message)
        self._ready.set()

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Close with `code` as soon as the writer is free (with `flush`, once what waits
        has gone out); later sends are dropped."""
        if self._closing is not None:
            return
        self._closing = _Close(code, reason)
        if not flush:
            self._queue.clear()
        self._ready.set()

    def start(self) -> asyncio.Task[None]:
        """Start the writer task (once); it ends after the close frame has gone out."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return self._task

    async def stop(self, grace: float, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close (unless a close is already on its way), give it `grace` seconds to go out,
        then end the writer. Raises what the writer raised, if anything but a cancel."""
        task = self._task
        if task is None:
            return
        if not task.done():
            self.close(code, reason)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), grace)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if queue:
                await self._write(self._take(queue))
                continue
            if self._closing is not None:
                await self._close(self._closing.code, self._closing.reason)
                return
            self._ready.clear()
            await self._ready.wait()


def websocket_outbox(
    websocket: WebSocket, write: Callable[[T], Awaitable[None]], limit: int | None
) -> Outbox[T]:
    """An outbox for a Starlette websocket, whose close ignores a peer already gone."""

    async def close(code: int, reason: str) -> None:
        with contextlib.suppress(*GONE):
            await websocket.close(code, close_reason(reason))

    return Outbox(write, close, limit)


def close_reason(reason: str) -> str:
    """A websocket close reason is at most 123 bytes of UTF-8."""
    encoded = reason.encode("utf-8")[:123]
    return encoded.decode("utf-8", errors="ignore")
