"""The sync websocket: the standard y-websocket protocol, one socket per open notebook."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket

from server.collab.room import Connection
from server.collab.transport import StarletteTransport
from server.deps import AppServices, Readable, websocket_access

router = APIRouter(tags=["collab"])


async def sync(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    notebook_id: str = websocket.path_params["notebook_id"]
    access = await websocket_access(websocket, notebook_id, services)
    if access is None:
        return
    user, role = access
    await websocket.accept()
    connection = Connection(
        StarletteTransport(websocket),
        user.username,
        role,
        services.settings.client_send_queue,
        guest=user.is_guest,
    )
    await services.rooms.serve(notebook_id, connection)


# A plain Starlette route: FastAPI's dependency solving had nothing to inject here and was a
# twentieth of a join's CPU when hundreds of sockets open at once.
router.add_websocket_route("/api/notebooks/{notebook_id}/sync", sync)


@router.get("/api/notebooks/{notebook_id}/presence")
async def presence(access: Readable, services: AppServices) -> list[dict[str, Any]]:
    """Who has the notebook open now, on any replica: name, role, guest or member, open
    sockets."""
    return await services.presence.people(access[0].id)
