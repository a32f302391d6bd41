"""Reads asked for together are made together, and each caller still gets its own answer."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from server.collab.batched_reads import BatchedReads
from server.collab.update_log import SqlUpdateLog
from server.config import Settings
from server.db import make_engine, migrate
from tests.support_pg import DatabaseUrls


async def test_keys_asked_for_while_a_read_runs_share_the_next_read() -> None:
    calls: list[list[str]] = []
    release = threading.Event()

    def read_many(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        release.wait(5)
        return {key: key.upper() for key in keys}

    reads: BatchedReads[str, str] = BatchedReads(read_many, batch=3)
    first = asyncio.ensure_future(reads.get("a"))
    await asyncio.sleep(0.05)  # the first read is running in its thread
    rest = [asyncio.ensure_future(reads.get(key)) for key in ("b", "c", "b", "d", "e")]
    release.set()
    assert await first == "A"
    assert [await task for task in rest] == ["B", "C", "B", "D", "E"]
    assert calls == [["a"], ["b", "c"], ["d", "e"]]


async def test_a_failed_read_fails_its_callers_only() -> None:
    def read_many(keys: list[str]) -> dict[str, int]:
        if "bad" in keys:
            raise ValueError("unreadable")
        return {key: len(key) for key in keys}

    reads: BatchedReads[str, int] = BatchedReads(read_many, batch=2)
    results = await asyncio.gather(
        reads.get("bad"), reads.get("ok"), reads.get("fine"), return_exceptions=True
    )
    assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
    assert results[2] == 4
    assert await reads.get("again") == 5  # the reader starts afresh


@pytest.fixture
def database_url(database_urls: DatabaseUrls) -> str:
    return database_urls.new("reads")


async def test_rooms_loaded_together_each_get_their_own_document(
    tmp_path: Path, database_url: str
) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=database_url))
    migrate(engine)
    ids = [f"n{i}" for i in range(80)]  # more than one batch
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'o', FALSE, '2026-01-01')"
        )
        for notebook_id in [*ids, "empty"]:
            connection.exec_driver_sql(
                "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
                f"VALUES ('{notebook_id}', 't', 1, '2026-01-01', '2026-01-01')"
            )
    log = SqlUpdateLog(engine)
    await log.start()
    docs: dict[str, Doc[Any]] = {notebook_id: Doc() for notebook_id in ids}
    try:
        for round_ in range(2):
            for index, notebook_id in enumerate(ids):
                text = docs[notebook_id].get("t", type=Text)
                with docs[notebook_id].new_transaction():
                    text += f"{notebook_id}.{round_} "
                update = docs[notebook_id].get_update()
                seq = await log.append(notebook_id, update, lambda _seq: None)
                if round_ == 0 and index % 2 == 0:  # half have a snapshot, then a tail
                    doc = docs[notebook_id]
                    await log.compact(notebook_id, doc.get_update(), doc.get_state(), seq)
        stored = await asyncio.gather(*(log.load(notebook_id) for notebook_id in [*ids, "empty"]))
    finally:
        await log.stop()
        engine.dispose()
    *loaded, empty = stored
    assert empty.snapshot is None and empty.upto_seq == 0 and empty.updates == []
    for index, (notebook_id, document) in enumerate(zip(ids, loaded, strict=True)):
        assert (document.snapshot is not None) == (index % 2 == 0)
        seqs = [seq for seq, _ in document.updates]
        assert seqs == sorted(seqs) and len(seqs) == (1 if index % 2 == 0 else 2)
        rebuilt: Doc[Any] = Doc()
        for update in ([document.snapshot] if document.snapshot else []) + [
            update for _, update in document.updates
        ]:
            rebuilt.apply_update(update)
        assert str(rebuilt.get("t", type=Text)) == f"{notebook_id}.0 {notebook_id}.1 "
