"""The one thing a Room needs from a websocket, so rooms are tested without a server."""

from __future__ import annotations

import contextlib
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect


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
        except (WebSocketDisconnect, RuntimeError, OSError) as error:
            raise Disconnected() from error

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._websocket.close(code, close_reason(reason))


def close_reason(reason: str) -> str:
    """A websocket close reason is at most 123 bytes of UTF-8."""
    encoded = reason.encode("utf-8")[:123]
    return encoded.decode("utf-8", errors="ignore")
