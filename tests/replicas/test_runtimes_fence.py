"""The runtime lease's epoch as a fencing token checked by PostgreSQL: replica a runs a
cell while its lease is taken behind its back, as another replica would take it (a new
epoch in Redis, recorded in `runtime_fences`). Leases last 600 s here, so a's own clock
would let it write for minutes and its renewal (every 150 s) does not notice in time: only
the database's check stops it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.gateway.helpers import text_of
from tests.replicas.conftest import Replicas, start_replicas
from tests.support import (
    Api,
    WorkerProcess,
    YClient,
    eventually,
    notebook_with_code,
    sync_url,
)
from tests.support_pg import PostgresServer
from tests.support_redis import RedisServer

# Prints a line every 0.2 s for a minute: still printing long after the steal.
PRINTING = "import time\nfor i in range(300):\n    print(i, flush=True)\n    time.sleep(0.2)"


@dataclass
class Fenced:
    pair: Replicas
    admin: Api  # at a, where the worker is


@pytest.fixture(scope="module")
def fenced(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fenced]:
    root = tmp_path_factory.mktemp("fenced")
    pair = start_replicas(
        postgres,
        redis_server.url,
        root,
        TANDEM_RUNTIME_LEASE_SECONDS="600",
        TANDEM_COMPACT_AFTER_UPDATES="5",  # a's room compacts while it runs
    )
    worker = WorkerProcess(pair.a, pair.worker_token("w"), "w").start()
    admin = pair.api(pair.a, "root")
    try:
        deadline = time.monotonic() + 30
        while not admin.client.get("/api/workers").json():
            assert time.monotonic() < deadline, "the worker did not connect"
            time.sleep(0.1)
        yield Fenced(pair, admin)
    finally:
        worker.stop()
        pair.stop()
    pair.check_logs()


def stored_text(api: Api, notebook_id: str) -> str:
    """The cell's stream output as the export (the stored document) has it."""
    outputs = api.export(notebook_id)["cells"][0].get("outputs", [])
    parts = ["".join(o["text"]) if isinstance(o["text"], list) else o["text"] for o in outputs]
    return "".join(parts)


def steal(redis_url: str, database_url: str, notebook_id: str) -> int:
    """Take the runtime's lease as another replica's `Cluster.acquire` does: a new epoch in
    Redis, then recorded as the notebook's fence."""
    client = redis.Redis.from_url(redis_url)
    engine = create_engine(database_url)
    try:
        epoch = int(client.incr(f"tandem:epoch:{notebook_id}"))
        client.set(f"tandem:lease:{notebook_id}", f"elsewhere {epoch}", px=600_000)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO runtime_fences (notebook_id, epoch) VALUES (:nb, :epoch) "
                    "ON CONFLICT (notebook_id) DO UPDATE "
                    "SET epoch = GREATEST(runtime_fences.epoch, excluded.epoch)"
                ),
                {"nb": notebook_id, "epoch": epoch},
            )
        return epoch
    finally:
        client.close()
        engine.dispose()


def kernels_at(api: Api) -> set[str]:
    workers = api.client.get("/api/workers").json()
    return {str(k["notebook_id"]) for w in workers for k in w["kernels"]}


async def test_a_replica_whose_lease_was_taken_stores_no_more_output(
    fenced: Fenced, redis_server: RedisServer
) -> None:
    """Once the fence is raised, no line a's kernel prints reaches the stored document or
    any client, though a still trusts its lease; a's clients reconnect (1012) and a
    reloaded room holds nothing the refused writes did; a shuts its kernel down."""
    pair = fenced.pair
    alice_a, alice_b = pair.api(pair.a, "alice"), pair.api(pair.b, "alice")
    nb, ids = notebook_with_code(alice_a, [PRINTING])
    token = pair.people["alice"].token
    try:
        async with (
            YClient(sync_url(pair.a, nb, token)) as on_a,
            YClient(sync_url(pair.b, nb, token)) as on_b,
        ):
            response = alice_a.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
            assert response.status_code == 202, response.text
            await eventually(lambda: "5\n" in text_of(on_b, ids[0]), 60)
            before = await asyncio.to_thread(stored_text, alice_b, nb)
            await asyncio.to_thread(steal, redis_server.url, pair.database_url, nb)
            await asyncio.sleep(1.0)  # writes committed before the fence rose reach b
            settled = await asyncio.to_thread(stored_text, alice_b, nb)
            assert settled.startswith(before)
            assert settled.count("\n") <= before.count("\n") + 2, (before, settled)
            await asyncio.sleep(3.0)  # 15 more lines printed meanwhile
            assert await asyncio.to_thread(stored_text, alice_b, nb) == settled
            assert text_of(on_b, ids[0]) == settled
            assert settled.startswith(text_of(on_a, ids[0]))
            assert await on_a.wait_closed(1) == 1012  # a discarded its room
        log = pair.a.log()
        assert "fenced out" in log
        assert "lost the runtime's lease" not in log  # the lease's own clock did not stop it
        await eventually(lambda: nb not in kernels_at(fenced.admin), 15)
        # A room a reads anew holds exactly what is stored.
        async with YClient(sync_url(pair.a, nb, token)) as again:
            assert text_of(again, ids[0]) == settled
        assert await asyncio.to_thread(stored_text, alice_a, nb) == settled
    finally:
        client = redis.Redis.from_url(redis_server.url)
        client.delete(f"tandem:lease:{nb}")
        client.close()
