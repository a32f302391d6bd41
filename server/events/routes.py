"""The events websocket: JSON messages about a notebook that are not part of its document.

The server sends `{"type": "hello", "role": ..., "user": ..., "runtime": {...}}` first, then
every event of the notebook as it happens (listed in `server.events`, typed in
`server.events.types`).
A client may send `{"type": "ping"}` and gets `{"type": "pong"}`. Losing access closes the
socket (4403); a client that leaves too many events unread is cut loose (1013, see
`server.sockets`).
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
from server.sockets import GONE, Outbox, websocket_outbox

router = APIRouter(tags=["events"])


@router.websocket("/api/notebooks/{notebook_id}/events")
async def events(websocket: WebSocket, notebook_id: str) -> None:
    services: Services = websocket.app.state.services
    access = await websocket_access(websocket, notebook_id, services)
    if access is None:
        return
    user, role = access
    await websocket.accept()
    outbox: Outbox[dict[str, Any]] = websocket_outbox(
        websocket, websocket.send_json, services.settings.client_send_queue
    )

    def on_event(event: NotebookEvent) -> None:
        if isinstance(event, SessionsEnded):  # about one person's sign-ins: not for others
            if event.username == user.username:
                outbox.close(CloseCode.RESTARTING, "your sign-ins changed; reconnect", flush=True)
            return
        outbox.send(event.to_json())
        if isinstance(event, MembersChanged) and event.changed.username == user.username:
            if event.changed.role is None:
                reason = "your access to this notebook was removed"
                outbox.close(CloseCode.ACCESS_REMOVED, reason, flush=True)
        elif isinstance(event, NotebookDeleted):
            outbox.close(CloseCode.DELETED, "this notebook was deleted", flush=True)

    unsubscribe = services.bus.subscribe(notebook_id, on_event)
    try:
        runtime = await services.gateway.status(notebook_id)
        # Hello goes first; events that came meanwhile wait in the outbox until it has.
        hello = {
            "type": "hello",
            "role": role.value,
            "user": user.username,
            "runtime": runtime.model_dump(mode="json"),
        }
        try:
            await websocket.send_json(hello)
        except GONE:
            return  # the page left before its hello (a reload, a navigation)
        sender = outbox.start()
        reader = asyncio.create_task(_read(websocket, outbox))
        await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    finally:
        unsubscribe()
        with contextlib.suppress(*GONE):
            await outbox.stop(1.0)


async def _read(websocket: WebSocket, outbox: Outbox[dict[str, Any]]) -> None:
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, KeyError, RuntimeError):
            return
        try:
            message = json.loads(text)
        except ValueError:
            outbox.send({"type": "error", "detail": "messages are JSON objects"})
            continue
        if isinstance(message, dict) and message.get("type") == "ping":
            outbox.send({"type": "pong"})
        else:
            outbox.send({"type": "error", "detail": "unknown message type"})
