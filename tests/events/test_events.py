"""The events channel: JSON per notebook, with auth and roles; members.changed rides on it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.support import Api, Person, ServerProcess, start_with_alice, sync_url


def events_url(server: ServerProcess, notebook: str, token: str) -> str:
    return f"{server.ws_url}/api/notebooks/{notebook}/events?token={token}"


async def next_event(ws: websockets.ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return dict(message)


async def test_members_changed_reaches_everyone_and_revokes(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("events")
    alice.share(notebook, "bob", "viewer")
    async with (
        websockets.connect(events_url(server, notebook, people["alice"].token)) as owner,
        websockets.connect(events_url(server, notebook, people["bob"].token)) as bob,
    ):
        hello = await next_event(bob, "hello")
        assert (hello["role"], hello["user"]) == ("viewer", "bob")
        assert hello["runtime"]["status"] == "stopped"
        await next_event(owner, "hello")

        alice.share(notebook, "carol", "commenter")
        for ws in (owner, bob):
            event = await next_event(ws, "members.changed")
            assert event["changed"] == {"username": "carol", "role": "commenter"}
            assert {"username": "carol", "role": "commenter"} in event["members"]

        response = alice.client.patch(f"/api/notebooks/{notebook}", json={"title": "new name"})
        assert response.status_code == 200
        for ws in (owner, bob):
            assert (await next_event(ws, "notebook.renamed"))["title"] == "new name"

        await bob.send(json.dumps({"type": "ping"}))
        assert await next_event(bob, "pong") == {"type": "pong"}
        await bob.send("not json")
        assert (await next_event(bob, "error"))["detail"]

        response = alice.client.delete(f"/api/notebooks/{notebook}/members/bob")
        assert response.status_code == 200
        assert (await next_event(bob, "members.changed"))["changed"]["role"] is None
        async with asyncio.timeout(2):
            await bob.wait_closed()
        assert bob.close_code == 4403
        event = await next_event(owner, "members.changed")
        assert event["changed"] == {"username": "bob", "role": None}


async def test_a_page_that_leaves_before_its_hello_costs_no_traceback(
    fresh_server: ServerProcess,
) -> None:
    """Pages reload and navigate away while their events socket is still opening: the
    server's hello then meets a closing socket, which is the page's business, not an
    error in the server's log."""
    alice, api = start_with_alice(fresh_server)
    notebook = api.create("left early")
    url = events_url(fresh_server, notebook, alice.token)

    async def open_and_leave(address: str) -> None:
        ws = await websockets.connect(address)
        await ws.close()

    # The document's socket too: its first frames meet the same closing socket.
    for address in (url, sync_url(fresh_server, notebook, alice.token)) * 3:
        await asyncio.gather(*(open_and_leave(address) for _ in range(40)))
    async with websockets.connect(url) as ws:  # and the server still answers
        assert (await next_event(ws, "hello"))["user"] == "alice"
    api.client.close()
    assert "Traceback" not in fresh_server.log()
