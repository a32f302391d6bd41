"""Two replicas on one PostgreSQL and one Redis: documents converge whichever replica each
client talks to, presence and events cross, a revocation on one replica closes sockets on
the other, and failed logins count together."""

from __future__ import annotations

import asyncio
import json
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Array, Map, Text

from tests.replicas.conftest import Replicas
from tests.support import YClient, eventually, node_client, sync_url


def events_url(server: Any, notebook: str, token: str) -> str:
    return f"{server.ws_url}/api/notebooks/{notebook}/events?token={token}"


async def next_event(ws: websockets.ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return dict(message)


def sources(client: YClient) -> list[str]:
    return [str(cell["source"]) for cell in client.cells]


def new_cell(cell_id: str, source: str) -> Map[Any]:
    return Map(
        {
            "id": cell_id,
            "cell_type": "code",
            "source": Text(source),
            "metadata": Map(),
            "outputs": Array(),
            "execution_count": None,
        }
    )


def random_edit(rng: random.Random, client: YClient, name: str, n: int) -> None:
    cells = client.cells
    if rng.random() < 0.1:
        cells.append(new_cell(f"{name}-{n}", f"<{name}{n}>"))
        return
    source = cells[rng.randrange(len(cells))]["source"]
    if rng.random() < 0.2 and len(source) > 4:
        at = rng.randrange(len(source) - 2)
        del source[at : at + 2]
    else:
        source.insert(rng.randrange(len(source) + 1), f"<{name}{n}>")


async def test_clients_on_two_replicas_converge(replicas: Replicas) -> None:
    """Seeded random edits by three people, each reconnecting now and then to a random
    replica (and editing while away): every copy, and each replica's export, agree."""
    seed = int(os.environ.get("TANDEM_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (TANDEM_TEST_SEED={seed} replays it)")
    rng = random.Random(seed)
    alice = replicas.api(replicas.a, "alice")
    notebook = alice.create("converging")
    for name in ("bob", "carol"):
        alice.share(notebook, name, "editor")
    servers = [replicas.a, replicas.b]
    clients = {}
    for i, name in enumerate(("alice", "bob", "carol")):
        url = sync_url(servers[i % 2], notebook, replicas.people[name].token)
        clients[name] = await YClient(url).connect()
    try:
        for n in range(60):
            name = rng.choice(list(clients))
            client = clients[name]
            if rng.random() < 0.15:
                await client.close()
                random_edit(rng, client, name, n)  # made while away, sent on reconnect
                server = rng.choice(servers)
                client.url = sync_url(server, notebook, replicas.people[name].token)
                await client.connect()
            else:
                random_edit(rng, client, name, n)
            await asyncio.sleep(rng.random() * 0.02)
        everyone = list(clients.values())
        await eventually(lambda: all(sources(c) == sources(everyone[0]) for c in everyone), 20)
        expected = sources(everyone[0])
        assert sum(s.count("<") for s in expected) > 20
    finally:
        for client in clients.values():
            await client.close()
    for server in servers:
        exported = replicas.api(server, "alice").export(notebook)
        assert [cell["source"] for cell in exported["cells"]] == expected


async def test_presence_crosses_replicas(replicas: Replicas) -> None:
    """Stock y-websocket clients: one on each replica sees the other's cursor state, a late
    joiner sees who is already there, and a departure is seen across."""
    alice = replicas.api(replicas.a, "alice")
    notebook = alice.create("who is here")
    alice.share(notebook, "bob", "editor")
    token = replicas.people
    async with node_client(replicas.a, notebook, token["alice"].token, seed=1) as on_a:
        await on_a.request({"cmd": "awareness", "state": {"cursor": "a"}}, "awareness-set")
        async with node_client(replicas.b, notebook, token["bob"].token, seed=2) as on_b:

            async def states(client: Any) -> list[dict[str, Any]]:
                peers = await client.request({"cmd": "peers"}, "peers")
                return [s for cid, s in peers["peers"].items() if int(cid) != peers["self"]]

            seen_on_b: list[dict[str, Any]] = []

            async def alice_seen_on_b() -> bool:
                seen_on_b[:] = await states(on_b)
                return any(s.get("cursor") == "a" for s in seen_on_b)

            await _until(alice_seen_on_b)
            # Stamped by the replica alice is connected to, not by her client.
            assert any(s.get("user", {}).get("name") == "alice" for s in seen_on_b)
            await on_b.request({"cmd": "awareness", "state": {"cursor": "b"}}, "awareness-set")

            async def bob_seen_on_a() -> bool:
                return any(s.get("cursor") == "b" for s in await states(on_a))

            await _until(bob_seen_on_a)
        # bob left replica b: alice's client on replica a is told.

        async def bob_gone() -> bool:
            return not any(s.get("cursor") == "b" for s in await states(on_a))

        await _until(bob_gone)


async def _until(check: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_a_comment_made_on_one_replica_reaches_the_other(replicas: Replicas) -> None:
    alice = replicas.api(replicas.a, "alice")
    notebook = alice.create("discussed across")
    alice.share(notebook, "bob", "commenter")
    async with YClient(sync_url(replicas.a, notebook, replicas.people["alice"].token)) as c:
        cell_id = str(c.cells[0]["id"])
    url = events_url(replicas.b, notebook, replicas.people["bob"].token)
    async with websockets.connect(url) as bob_on_b:
        await next_event(bob_on_b, "hello")
        response = alice.client.post(
            f"/api/notebooks/{notebook}/threads",
            json={"cell_id": cell_id, "body": "made on replica a"},
        )
        assert response.status_code == 201, response.text
        event = await next_event(bob_on_b, "thread.created")
        assert event["thread"]["comments"][0]["body"] == "made on replica a"


async def test_access_removed_on_one_replica_closes_sockets_on_the_other(
    replicas: Replicas,
) -> None:
    """bob is on replica b (sync and events); alice, on replica a, takes his access away
    through a share link he opened being revoked and then his membership: each closes his
    sockets on replica b with the same code as on one server (4403)."""
    alice = replicas.api(replicas.a, "alice")
    bob_token = replicas.people["bob"].token
    notebook = alice.create("taken away")
    link = alice.client.post(f"/api/notebooks/{notebook}/links", json={"role": "editor"})
    assert link.status_code == 201, link.text
    bob_on_b = replicas.api(replicas.b, "bob")
    redeemed = bob_on_b.client.post("/api/links/redeem", json={"token": link.json()["token"]})
    assert redeemed.status_code == 200, redeemed.text
    sync = await YClient(sync_url(replicas.b, notebook, bob_token)).connect()
    events = await websockets.connect(events_url(replicas.b, notebook, bob_token))
    await next_event(events, "hello")
    revoked = alice.client.delete(f"/api/notebooks/{notebook}/links/{link.json()['id']}")
    assert revoked.status_code in (200, 204), revoked.text
    assert await sync.wait_closed(timeout=10) == 4403
    async with asyncio.timeout(10):
        await events.wait_closed()
    assert events.close_code == 4403
    await sync.close()

    # A member made a viewer on replica a can no longer write on replica b, at once.
    alice.share(notebook, "bob", "editor")
    async with YClient(sync_url(replicas.b, notebook, bob_token)) as writer:
        writer.cells[0]["source"].insert(0, "by bob ")
        await eventually(lambda: "by bob" in alice.export(notebook)["cells"][0]["source"])
        alice.share(notebook, "bob", "viewer")
        await eventually(lambda: _role_on(replicas, notebook, "bob") == "viewer")
        writer.cells[0]["source"].insert(0, "not allowed ")
        await eventually(lambda: len(writer.denials()) >= 1)
        alice.client.delete(f"/api/notebooks/{notebook}/members/bob")
        assert await writer.wait_closed(timeout=10) == 4403
    assert alice.export(notebook)["cells"][0]["source"] == "by bob "


def _role_on(replicas: Replicas, notebook: str, name: str) -> str | None:
    members = replicas.api(replicas.b, "alice").client.get(f"/api/notebooks/{notebook}/members")
    return next((m["role"] for m in members.json() if m["username"] == name), None)


@pytest.mark.parametrize("max_failures", [10])
def test_failed_logins_count_across_replicas(replicas: Replicas, max_failures: int) -> None:
    """A guesser spreading tries over both replicas is stopped after as many as on one."""
    wrong = {"username": "carol", "password": "not carol's"}
    for attempt in range(max_failures):
        server = (replicas.a, replicas.b)[attempt % 2]
        response = httpx.post(f"{server.url}/api/auth/login", json=wrong)
        assert response.status_code == 401, response.text
    for server in (replicas.a, replicas.b):
        response = httpx.post(f"{server.url}/api/auth/login", json=wrong)
        assert response.status_code == 429, response.text
    # The right password too waits: the throttle does not tell which one was right.
    right = {"username": "carol", "password": replicas.people["carol"].password}
    assert httpx.post(f"{replicas.b.url}/api/auth/login", json=right).status_code == 429


async def test_an_expired_link_closes_sockets_on_every_replica_and_is_recorded_once(
    replicas: Replicas,
) -> None:
    """Both replicas sweep for expired links; the first to claim one announces it, and the
    announcement closes the sockets opened through it on the other replica too."""
    alice = replicas.api(replicas.a, "alice")
    notebook = alice.create("for a moment")
    soon = datetime.now(UTC) + timedelta(seconds=3)
    link = alice.client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "editor", "expires_at": soon.isoformat()}
    )
    assert link.status_code == 201, link.text
    carol = replicas.api(replicas.b, "carol")
    redeemed = carol.client.post("/api/links/redeem", json={"token": link.json()["token"]})
    assert redeemed.status_code == 200, redeemed.text
    token = replicas.people["carol"].token
    on_a = await YClient(sync_url(replicas.a, notebook, token)).connect()
    on_b = await YClient(sync_url(replicas.b, notebook, token)).connect()
    try:
        assert await on_a.wait_closed(timeout=10) == 4403
        assert await on_b.wait_closed(timeout=10) == 4403
    finally:
        await on_a.close()
        await on_b.close()
    audit = alice.client.get(f"/api/notebooks/{notebook}/audit").json()
    assert [e["action"] for e in audit].count("link.expired") == 1
