"""Kill -9 the server while people type: what anyone has seen survives, and nothing typed is
lost once the typists reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re

from pycrdt import Array, Map, Text

from tests.support import (
    ServerProcess,
    YClient,
    eventually,
    start_with_alice,
    sync_url,
    update_log_rows,
)

TYPISTS = 3


async def test_sigkill_while_typing_loses_nothing_anyone_saw(fresh_server: ServerProcess) -> None:
    seed = int(os.environ.get("TANDEM_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    alice, api = start_with_alice(fresh_server)
    notebook = api.create("typing through a crash")
    url = sync_url(fresh_server, notebook, alice.token)

    clients = [await YClient(url).connect() for _ in range(TYPISTS)]
    for i, client in enumerate(clients):
        client.cells.append(
            Map(
                {
                    "id": f"cell-{i}",
                    "cell_type": "code",
                    "source": Text(""),
                    "metadata": Map(),
                    "outputs": Array(),
                    "execution_count": None,
                }
            )
        )
    await eventually(lambda: all(len(c.cells) == 1 + TYPISTS for c in clients))

    def cell_of(client: YClient, i: int) -> Text:
        return next(c["source"] for c in client.cells if c["id"] == f"cell-{i}")

    async def type_into(i: int, client: YClient) -> None:
        n = 0
        with contextlib.suppress(Exception):
            while True:
                text = cell_of(client, i)
                text.insert(len(text), f" t{i}-{n}")
                n += 1
                await asyncio.sleep(rng.uniform(0.001, 0.01))

    typing = [asyncio.create_task(type_into(i, c)) for i, c in enumerate(clients)]
    await asyncio.sleep(rng.uniform(0.3, 1.5))
    fresh_server.kill()
    for task in typing:
        task.cancel()
    await asyncio.gather(*typing, return_exceptions=True)

    # What each client had received from the others when the server died.
    seen_by_others: set[str] = set()
    typed: set[str] = set()
    for viewer, client in enumerate(clients):
        for i in range(TYPISTS):
            tokens = set(re.findall(r"t\d+-\d+", str(cell_of(client, i))))
            if i == viewer:
                typed |= tokens
            else:
                seen_by_others |= tokens
    for client in clients:
        await client.close()
    assert seen_by_others, "the test should have synced some typing before the kill"

    fresh_server.start()
    recovered = api.export(notebook)
    stored = set(re.findall(r"t\d+-\d+", " ".join(c["source"] for c in recovered["cells"])))
    assert seen_by_others <= stored, f"lost: {sorted(seen_by_others - stored)[:10]}"

    # The typists reconnect with their copies: whatever was unsaved is sent again.
    for client in clients:
        await client.connect()

    def everything_is_stored() -> bool:
        cells = api.export(notebook)["cells"]
        return typed <= set(re.findall(r"t\d+-\d+", " ".join(c["source"] for c in cells)))

    await eventually(everything_is_stored)
    for client in clients:
        await client.close()
    api.client.close()


async def test_compaction_through_the_server_keeps_everything(fresh_server: ServerProcess) -> None:
    """With a tiny compaction threshold the log is folded into snapshots while people type;
    a restart reads snapshot + tail and nothing is missing."""
    alice, api = start_with_alice(fresh_server, TANDEM_COMPACT_AFTER_UPDATES="10")
    notebook = api.create("compaction")
    url = sync_url(fresh_server, notebook, alice.token)
    async with YClient(url) as a, YClient(url) as b:
        for i in range(60):
            source = (a if i % 2 else b).cells[0]["source"]
            source.insert(len(source), f"<{i}>")
            await asyncio.sleep(0.002)
        await eventually(lambda: str(a.cells[0]["source"]).count("<") == 60)
        expected = str(a.cells[0]["source"])
    # Compaction runs beside the typing and may still be folding when the last edit lands.
    await eventually(lambda: update_log_rows(fresh_server) < 30, interval=0.1)
    fresh_server.stop()
    fresh_server.start()
    assert api.export(notebook)["cells"][0]["source"] == expected
    api.client.close()


async def test_graceful_shutdown_closes_with_1012_and_snapshots(
    fresh_server: ServerProcess,
) -> None:
    """SIGTERM: open sockets are told the server is restarting (1012, so y-websocket clients
    reconnect), and every open room is folded into a snapshot on the way out."""
    alice, api = start_with_alice(fresh_server)
    notebook = api.create("shutdown")
    client = await YClient(sync_url(fresh_server, notebook, alice.token)).connect()
    client.cells[0]["source"].insert(0, "kept")
    await eventually(lambda: api.export(notebook)["cells"][0]["source"] == "kept")
    fresh_server.stop()
    assert await client.wait_closed(timeout=5) == 1012
    await client.close()
    assert update_log_rows(fresh_server) == 0
    fresh_server.start()
    assert api.export(notebook)["cells"][0]["source"] == "kept"
    api.client.close()
