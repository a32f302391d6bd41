"""The one thing a Room needs from a websocket, so rooms are tested without a server.
What waits to be sent, and when a client is cut loose, is `server.sockets.Outbox`'s."""

from __future__ import annotations

import contextlib
from typing import Protocol

from starlette.websockets import WebSocket

from server.sockets import GONE, close_reason


class Disconnected(Exception):
    """The peer went away."""


class Transport(Protocol):
    async def recv(self) -> bytes:
        """The next binary frame; raises `Disconnected` when the peer has gone."""
        ...

    async def send(self, message: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class TextFrame(Exception):
    """The peer sent a text frame where the protocol only has binary ones."""


class StarletteTransport:
    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def recv(self) -> bytes:
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise Disconnected()
        data = message.get("bytes")
        if data is None:
            raise TextFrame()
        return bytes(data)

    async def send(self, message: bytes) -> None:
        try:
            await self._websocket.send_bytes(message)
        except GONE as error:
            raise Disconnected() from error

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(*GONE):
            await self._websocket.close(code, close_reason(reason))
