"""Hostile or broken input gets a clear refusal, hurts nobody else and changes nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from pycrdt import YSyncMessageType

from server import protocol
from tests.support import (
    Api,
    Person,
    ServerProcess,
    YClient,
    eventually,
    start_with_alice,
    state_vector,
    sync_url,
)

BAD_FRAMES = {
    "empty": (b"", 1002),
    "truncated varint": (b"\x00\x00\xff", 1002),
    "length past the end": (b"\x00\x02\x10abc", 1002),
    "endless varint": (b"\x00" + b"\xff" * 12, 1002),
    "trailing bytes": (protocol.encode_sync(YSyncMessageType.SYNC_STEP1, b"\x00") + b"x", 1002),
    "unknown message type": (b"\x07\x00", 1003),
    "unknown sync type": (b"\x00\x09\x00", 1003),
    "garbage update": (
        protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, b"\x05\x01\xff\xff"),
        1007,
    ),
    "garbage state vector": (protocol.encode_sync(YSyncMessageType.SYNC_STEP1, b"\x05\xff"), 1002),
    "bad awareness": (b"\x01\x03\x01\x01", 1002),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
async def test_malformed_frames_close_only_their_own_socket(
    name: str, server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    frame, expected_code = BAD_FRAMES[name]
    notebook = alice.create(f"bad input: {name}")
    url = sync_url(server, notebook, people["alice"].token)
    async with YClient(url) as bystander:
        before = state_vector(bystander.doc.get_state())
        async with websockets.connect(url) as ws:
            await ws.send(frame)
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            assert ws.close_code == expected_code
            assert ws.close_reason
        # The bystander is still served and nothing changed.
        assert state_vector(bystander.doc.get_state()) == before
        bystander.cells[0]["source"].insert(0, "still here")
        await eventually(
            lambda: alice.export(notebook)["cells"][0]["source"].startswith("still here")
        )


async def test_text_frames_are_refused(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("text frame")
    async with websockets.connect(sync_url(server, notebook, people["alice"].token)) as ws:
        await ws.send("hello")
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert ws.close_code == 1003


async def test_oversized_frame_is_closed_with_1009(fresh_server: ServerProcess) -> None:
    alice, api = start_with_alice(fresh_server, TANDEM_MAX_FRAME_BYTES="65536")
    notebook = api.create("big frames")
    url = sync_url(fresh_server, notebook, alice.token)
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(b"\x00\x02" + b"\x80" * 70000)
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert ws.close_code == 1009
    async with YClient(url) as client:
        assert len(client.cells) == 1
    api.client.close()


@pytest.mark.parametrize(
    ("case", "status"),
    [("unknown notebook", 404), ("no token", 401), ("wrong token", 401), ("stranger", 404)],
)
async def test_refused_handshakes(
    case: str, status: int, server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("handshakes")
    url = {
        "unknown notebook": sync_url(server, "0" * 32, people["alice"].token),
        "no token": sync_url(server, notebook, None),
        "wrong token": sync_url(server, notebook, "tdm_not-a-real-token"),
        "stranger": sync_url(server, notebook, people["erin"].token),
    }[case]
    for path in ("sync", "events"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url.replace("/sync", f"/{path}")):
                pass
        assert refused.value.response.status_code == status
        assert b"tdm_" not in refused.value.response.body


def test_invalid_json_bodies(server: ServerProcess, people: dict[str, Person], alice: Api) -> None:
    headers = {"Authorization": f"Bearer {people['alice'].token}"}
    cases = [
        ("POST", "/api/notebooks", b"{not json", "application/json", 400),
        ("POST", "/api/notebooks", b'{"title": ""}', "application/json", 400),
        ("POST", "/api/notebooks", b'{"title": 5}', "application/json", 400),
        ("POST", "/api/notebooks", b'["x"]', "application/json", 400),
        ("POST", "/api/auth/login", b'{"username": "a"}', "application/json", 422),
        ("POST", "/api/auth/login", b"nope", "application/json", 422),
    ]
    for method, path, body, content_type, status in cases:
        response = httpx.request(
            method,
            server.url + path,
            content=body,
            headers={**headers, "content-type": content_type},
        )
        assert response.status_code == status, (path, body, response.text)
        assert "detail" in response.json()
    # A password sent in a bad body is never echoed back.
    response = httpx.post(
        server.url + "/api/auth/login", json={"username": "a", "password": ["s3cret-value"]}
    )
    assert response.status_code == 422
    assert "s3cret-value" not in response.text


def test_no_traceback_or_secret_in_the_log(
    server: ServerProcess, people: dict[str, Person]
) -> None:
    """Runs after the other tests of this module on the shared server (pytest keeps file
    order): whatever they sent, the log has no traceback and no token."""
    log = server.log()
    assert "Traceback" not in log
    for person in people.values():
        assert person.token not in log
        assert person.password not in log
