"""`GET .../presence` with two replicas: either replica lists everyone who has the notebook
open on either (name, role, guest or member), drops a person who leaves, and drops those
of a replica that was SIGKILLed within seconds (its records in Redis lapse)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.replicas.conftest import Replicas
from tests.support import ServerProcess, YClient, eventually, sync_url


def who(replicas: Replicas, server: ServerProcess, notebook: str) -> set[tuple[Any, ...]]:
    response = replicas.api(server, "alice").client.get(f"/api/notebooks/{notebook}/presence")
    assert response.status_code == 200, response.text
    return {(p["username"], p["role"], p["guest"], p["connections"]) for p in response.json()}


async def test_presence_lists_everyone_on_every_replica(replicas: Replicas) -> None:
    alice = replicas.api(replicas.a, "alice")
    notebook = alice.create("who is in, everywhere")
    alice.share(notebook, "bob", "viewer")
    link = alice.client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "commenter", "allow_guests": True}
    )
    assert link.status_code == 201, link.text
    with httpx.Client(base_url=replicas.b.url, timeout=30) as stranger:
        joined = stranger.post(
            "/api/links/redeem", json={"token": link.json()["token"], "guest_name": "Gus"}
        )
    assert joined.status_code == 200, joined.text
    guest = joined.json()
    token = replicas.people
    on_a = await YClient(sync_url(replicas.a, notebook, token["alice"].token)).connect()
    bob_on_b = await YClient(sync_url(replicas.b, notebook, token["bob"].token)).connect()
    bob_on_a = await YClient(sync_url(replicas.a, notebook, token["bob"].token)).connect()
    gus_on_b = await YClient(sync_url(replicas.b, notebook, guest["token"])).connect()
    everyone = {
        ("alice", "owner", False, 1),
        ("bob", "viewer", False, 2),  # one socket on each replica
        (guest["username"], "commenter", True, 1),
    }
    try:
        for server in (replicas.a, replicas.b):
            await eventually(lambda s=server: who(replicas, s, notebook) == everyone, 10)

        await gus_on_b.close()  # a person who leaves drops out everywhere
        await eventually(
            lambda: (
                who(replicas, replicas.a, notebook)
                == everyone - {(guest["username"], "commenter", True, 1)}
            ),
            10,
        )

        # Replica b dies: bob's socket there is gone, and a says so within seconds.
        await asyncio.to_thread(replicas.b.kill)
        killed = time.monotonic()
        await eventually(
            lambda: (
                who(replicas, replicas.a, notebook)
                == {("alice", "owner", False, 1), ("bob", "viewer", False, 1)}
            ),
            10,
        )
        print(f"a killed replica's people dropped after {time.monotonic() - killed:.1f} s")
    finally:
        for client in (on_a, bob_on_b, bob_on_a, gus_on_b):
            await client.close()
        if replicas.b.proc is not None and replicas.b.proc.poll() is not None:
            await asyncio.to_thread(replicas.b.start)
