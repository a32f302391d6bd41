"""The events websocket: JSON messages about a notebook that are not part of its document.

The server sends `{"type": "hello", "role": ..., "user": ..., "runtime": {...}}` first, then
every event of the notebook as it happens (listed in `server.events`, typed in
`server.events.types`).
A client may send `{"type": "ping"}` and gets `{"type": "pong"}`. Losing access closes the
socket (4403).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from server.deps import websocket_access
from server.errors import CloseCode
from server.events.types import MembersChanged, NotebookDeleted, NotebookEvent, SessionsEnded
from server.services import Services

router = APIRouter(tags=["events"])

_QUEUE = 1024


@router.websocket("/api/notebooks/{notebook_id}/events")
async def events(websocket: WebSocket, notebook_id: str) -> None:
    services: Services = websocket.app.state.services
    access = await websocket_access(websocket, notebook_id, services)
    if access is None:
        return
    user, role = access
    await websocket.accept()
    outbox: asyncio.Queue[dict[str, Any] | tuple[int, str]] = asyncio.Queue(_QUEUE)

    def on_event(event: NotebookEvent) -> None:
        if isinstance(event, SessionsEnded):  # about one person's sign-ins: not for others
            if event.username == user.username:
                with contextlib.suppress(asyncio.QueueFull):
                    outbox.put_nowait((CloseCode.RESTARTING, "your sign-ins changed; reconnect"))
            return
        message = event.to_json()
        closing: tuple[int, str] | None = None
        if isinstance(event, MembersChanged) and event.changed.username == user.username:
            if event.changed.role is None:
                closing = (CloseCode.ACCESS_REMOVED, "your access to this notebook was removed")
        elif isinstance(event, NotebookDeleted):
            closing = (CloseCode.DELETED, "this notebook was deleted")
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(message)
        if closing is not None:
            with contextlib.suppress(asyncio.QueueFull):
                outbox.put_nowait(closing)

    unsubscribe = services.bus.subscribe(notebook_id, on_event)
    sender = asyncio.create_task(_send(websocket, outbox))
    try:
        runtime = await services.gateway.status(notebook_id)
        await websocket.send_json(
            {
                "type": "hello",
                "role": role.value,
                "user": user.username,
                "runtime": runtime.model_dump(mode="json"),
            }
        )
        reader = asyncio.create_task(_read(websocket))
        await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
    finally:
        unsubscribe()
        sender.cancel()


async def _send(
    websocket: WebSocket, outbox: asyncio.Queue[dict[str, Any] | tuple[int, str]]
) -> None:
    while True:
        item = await outbox.get()
        if isinstance(item, tuple):
            await websocket.close(*item)
            return
        await websocket.send_json(item)


async def _read(websocket: WebSocket) -> None:
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, KeyError, RuntimeError):
            return
        try:
            message = json.loads(text)
        except ValueError:
            await websocket.send_json({"type": "error", "detail": "messages are JSON objects"})
            continue
        if isinstance(message, dict) and message.get("type") == "ping":
            await websocket.send_json({"type": "pong"})
        else:
            await websocket.send_json({"type": "error", "detail": "unknown message type"})
