"""Roles are checked on every message: viewers and commenters can read and be present, never
write, and a changed role takes effect on an open socket within a second."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets
from pycrdt import Array, Doc, Map, Text, YSyncMessageType

from server import protocol
from tests.support import Api, Person, ServerProcess, YClient, eventually, state_vector, sync_url


def _an_update() -> bytes:
    """A real update from another document: a new cell, as an editor would send it."""
    doc: Doc = Doc()
    cells = doc.get("cells", type=Array)
    cells.append(
        Map({"id": "intruder", "cell_type": "code", "source": Text("rm -rf /"), "metadata": Map()})
    )
    return doc.get_update()


@pytest.mark.parametrize("role", ["viewer", "commenter"])
async def test_readers_cannot_write_in_any_way(
    role: str, server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create(f"read only for a {role}")
    alice.share(notebook, "bob", role)
    async with YClient(sync_url(server, notebook, people["alice"].token)) as owner:
        before = state_vector(owner.doc.get_state())
        before_export = alice.export(notebook)
        # 1. Through a stock client: local edits are sent as updates and refused.
        async with YClient(sync_url(server, notebook, people["bob"].token)) as bob:
            bob.cells[0]["source"].insert(0, "vandalism")
            del bob.cells[0]
            await eventually(lambda: len(bob.denials()) >= 2)
        # 2. By hand, every message kind that carries an update.
        url = sync_url(server, notebook, people["bob"].token)
        async with websockets.connect(url) as ws:
            update = _an_update()
            for kind in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
                await ws.send(protocol.encode_sync(kind, update))
            denials = 0
            async with asyncio.timeout(5):
                while denials < 2:
                    message = await ws.recv()
                    if isinstance(message, bytes) and message[:2] == b"\x02\x00":
                        denials += 1
                        assert b"cannot edit" in message
        # 3. Offline edits made before connecting (sent in the client's sync step 2).
        offline: Doc = Doc()
        async with YClient(sync_url(server, notebook, people["bob"].token), offline):
            pass
        offline.get("cells", type=Array)[0]["source"].insert(0, "offline")
        async with YClient(sync_url(server, notebook, people["bob"].token), offline) as again:
            await eventually(lambda: len(again.denials()) >= 1)
        await asyncio.sleep(0.2)
        assert state_vector(owner.doc.get_state()) == before
    assert alice.export(notebook) == before_export
    # A reader still reads.
    bob_api = Api(server, people["bob"])
    assert bob_api.export(notebook) == before_export
    bob_api.client.close()


async def test_a_reader_resyncing_is_not_refused(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """A reader's client re-sends the document's deletions when it reconnects (Yjs puts the
    whole delete set in every diff): that changes nothing and is not a refused write."""
    notebook = alice.create("resync")
    alice.share(notebook, "bob", "viewer")
    async with YClient(sync_url(server, notebook, people["alice"].token)) as owner:
        owner.cells[0]["source"].insert(0, "hello world")
        del owner.cells[0]["source"][0:6]
        copy: Doc = Doc()
        async with YClient(sync_url(server, notebook, people["bob"].token), copy) as bob:
            await eventually(lambda: str(bob.cells[0]["source"]) == "world")
        async with YClient(sync_url(server, notebook, people["bob"].token), copy) as again:
            await asyncio.sleep(0.3)
            assert again.denials() == []


async def test_removed_member_is_disconnected_within_a_second(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("revocation")
    alice.share(notebook, "carol", "editor")
    async with YClient(sync_url(server, notebook, people["carol"].token)) as carol:
        started = time.monotonic()
        response = alice.client.delete(f"/api/notebooks/{notebook}/members/carol")
        assert response.status_code == 200
        code = await carol.wait_closed(timeout=1.0)
        assert code == 4403
        assert time.monotonic() - started < 1.0
    # And cannot come back.
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(sync_url(server, notebook, people["carol"].token)):
            pass
    assert refused.value.response.status_code == 404


async def test_lowered_role_takes_effect_on_the_open_socket(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("demotion")
    alice.share(notebook, "dave", "editor")
    async with (
        YClient(sync_url(server, notebook, people["alice"].token)) as owner,
        YClient(sync_url(server, notebook, people["dave"].token)) as dave,
    ):
        dave.cells[0]["source"].insert(0, "allowed ")
        await eventually(lambda: str(owner.cells[0]["source"]).startswith("allowed"))
        alice.share(notebook, "dave", "viewer")
        await asyncio.sleep(0.3)
        before = state_vector(owner.doc.get_state())
        dave.cells[0]["source"].insert(0, "refused ")
        await eventually(lambda: len(dave.denials()) >= 1, timeout=1.0)
        assert state_vector(owner.doc.get_state()) == before
        assert not str(owner.cells[0]["source"]).startswith("refused")
        # Raised again, the same socket may write again. Dave's refused edit is still in
        # his copy, so the server holds his next one until that arrives, on reconnect.
        alice.share(notebook, "dave", "editor")
        await asyncio.sleep(0.3)
        dave.cells[0]["source"].insert(0, "back ")
        await dave.close()
        await dave.connect()
        await eventually(lambda: str(owner.cells[0]["source"]).startswith("back refused allowed"))


def test_members_api_is_for_the_owner(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("members")
    alice.share(notebook, "bob", "editor")
    bob = Api(server, people["bob"])
    try:
        response = bob.client.put(
            f"/api/notebooks/{notebook}/members/erin", json={"role": "editor"}
        )
        assert response.status_code == 403
        response = bob.client.delete(f"/api/notebooks/{notebook}/members/bob")
        assert response.status_code == 403
        response = bob.client.delete(f"/api/notebooks/{notebook}")
        assert response.status_code == 403
        listing = bob.client.get(f"/api/notebooks/{notebook}/members").json()
        assert listing == [
            {"username": "alice", "role": "owner"},
            {"username": "bob", "role": "editor"},
        ]
    finally:
        bob.client.close()
    response = alice.client.put(f"/api/notebooks/{notebook}/members/alice", json={"role": "viewer"})
    assert response.status_code == 409
    response = alice.client.put(
        f"/api/notebooks/{notebook}/members/nobody", json={"role": "viewer"}
    )
    assert response.status_code == 404
    response = alice.client.put(f"/api/notebooks/{notebook}/members/bob", json={"role": "owner"})
    assert response.status_code == 422
