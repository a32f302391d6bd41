"""Automatic checkpoints and the "Updated" bookkeeping with two replicas holding one room:
both see every edit, and exactly one of them records it (one checkpoint per interval, one
checkpoint of the final state, one write of the notebook's `updated_at` when both rooms
close), not one per replica."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from server.notebooks.activity import RedisEditClaims
from tests.replicas.conftest import Replicas, start_replicas
from tests.support import YClient, eventually, sync_url
from tests.support_pg import PostgresServer
from tests.support_redis import RedisServer

EVERY = 2.0  # TANDEM_CHECKPOINT_SECONDS here
EDITING = 9.0  # seconds of typing on both replicas

# Every change of a notebook's `updated_at`, as PostgreSQL saw it.
WATCH_UPDATED_AT = """
CREATE TABLE updated_at_writes (notebook_id text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION note_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO updated_at_writes (notebook_id) VALUES (NEW.id);
  RETURN NEW;
END $$;
CREATE TRIGGER note_updated_at AFTER UPDATE OF updated_at ON notebooks
  FOR EACH ROW EXECUTE FUNCTION note_updated_at();
"""


@pytest.fixture
def pair(postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Replicas]:
    replicas = start_replicas(
        postgres, redis_server.url, tmp_path, TANDEM_CHECKPOINT_SECONDS=str(EVERY)
    )
    try:
        yield replicas
    finally:
        replicas.stop()
    replicas.check_logs()


def _dsn(replicas: Replicas) -> str:
    return replicas.database_url.replace("postgresql+psycopg://", "postgresql://")


def _writes(replicas: Replicas, notebook: str) -> int:
    with psycopg.connect(_dsn(replicas)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM updated_at_writes WHERE notebook_id = %s", (notebook,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _checkpoints(replicas: Replicas, notebook: str) -> list[dict[str, Any]]:
    response = replicas.api(replicas.a, "alice").client.get(f"/api/notebooks/{notebook}/versions")
    assert response.status_code == 200, response.text
    found = [v for v in response.json() if v["kind"] == "checkpoint"]
    return sorted(found, key=lambda v: str(v["created_at"]))


def _source(replicas: Replicas, notebook: str, version: str) -> str:
    response = replicas.api(replicas.a, "alice").client.get(
        f"/api/notebooks/{notebook}/versions/{version}/export"
    )
    assert response.status_code == 200, response.text
    return "".join(response.json()["cells"][0]["source"])


async def test_two_replicas_editing_one_notebook_record_it_once(
    pair: Replicas, redis_server: RedisServer
) -> None:
    alice = pair.api(pair.a, "alice")
    notebook = alice.create("kept once")
    alice.share(notebook, "bob", "editor")
    with psycopg.connect(_dsn(pair), autocommit=True) as connection:
        connection.execute(WATCH_UPDATED_AT)
    on_a = await YClient(sync_url(pair.a, notebook, pair.people["alice"].token)).connect()
    on_b = await YClient(sync_url(pair.b, notebook, pair.people["bob"].token)).connect()
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + EDITING
        n = 0
        while loop.time() < until:
            client = (on_a, on_b)[n % 2]
            client.cells[0]["source"].insert(0, f"<{n}>")
            n += 1
            await asyncio.sleep(0.1)
        final = f"<{n - 1}>"
        await eventually(lambda: str(on_a.cells[0]["source"]) == str(on_b.cells[0]["source"]))
        expected = str(on_a.cells[0]["source"])
        assert expected.startswith(final)

        # While both rooms are open: one checkpoint per interval, never two close together.
        made = [datetime.fromisoformat(v["created_at"]) for v in _checkpoints(pair, notebook)]
        gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(made)]
        print(f"{len(made)} checkpoints in {EDITING:.0f} s of editing, gaps {gaps}")
        assert 2 <= len(made) <= EDITING / EVERY + 1, gaps
        assert min(gaps) >= EVERY / 2, gaps
    finally:
        await on_a.close()
        await on_b.close()

    # Both rooms close (the test servers unload an empty room after 1 s); each would keep
    # the final state as a checkpoint and write `updated_at`: one of them does.
    channel = f"tandem:room:{notebook}"
    watcher = redis.Redis.from_url(redis_server.url)
    try:
        await eventually(lambda: dict(watcher.pubsub_numsub(channel)).get(channel.encode()) == 0)
    finally:
        watcher.close()
    await asyncio.sleep(2)  # the unload hooks run after the room leaves its channel
    final_copies = [
        v for v in _checkpoints(pair, notebook) if _source(pair, notebook, v["id"]) == expected
    ]
    assert len(final_copies) == 1, final_copies
    assert _writes(pair, notebook) == 1


def test_edits_are_claimed_once_and_a_failed_write_gives_its_claim_back(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        here, there = RedisEditClaims(client), RedisEditClaims(client)
        assert here.claim("claimed-nb", 5)
        assert not there.claim("claimed-nb", 5)  # the same edits: recorded already
        assert not there.claim("claimed-nb", 4)  # older ones too
        here.release("claimed-nb", 5)  # its database write failed
        assert there.claim("claimed-nb", 5)
        here.release("claimed-nb", 4)  # not the claim that stands: nothing happens
        assert here.claim("claimed-nb", 6) and not there.claim("claimed-nb", 6)
    finally:
        client.close()
