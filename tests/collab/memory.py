"""An in-memory Transport: rooms tested without a server (STYLE.md)."""

from __future__ import annotations

import asyncio

from server.collab.transport import Disconnected


class MemoryTransport:
    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def recv(self) -> bytes:
        frame = await self.incoming.get()
        if frame is None:
            raise Disconnected()
        return frame

    async def send(self, message: bytes) -> None:
        self.sent.append(message)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.incoming.put_nowait(None)
