"""The SQL update log on a real SQLite file (and, for the writer's batches, on a real
PostgreSQL too): sequence numbers are never reused, a batch's seqs name its own rows; on
PostgreSQL, a runtime's write below its notebook's fence is refused in the transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from pycrdt import Doc, Text

from server.collab.fences import raise_fence
from server.collab.update_log import SqlUpdateLog
from server.config import Settings
from server.db import alembic_config, make_engine, migrate
from server.errors import FencedOut
from tests.support_pg import DatabaseUrls, PostgresServer


def engine_with_notebooks(tmp_path: Path, ids: list[str], database_url: str = "") -> Any:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=database_url))
    migrate(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'o', FALSE, '2026-01-01')"
        )
        for notebook_id in ids:
            connection.exec_driver_sql(
                "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
                f"VALUES ('{notebook_id}', 't', 1, '2026-01-01', '2026-01-01')"
            )
    return engine


def edit(doc: Doc[Any], text: str) -> bytes:
    before = doc.get_state()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update(before)


async def test_an_update_after_a_compaction_is_never_numbered_below_the_snapshot(
    tmp_path: Path,
) -> None:
    """Regression: with a plain rowid, SQLite reuses the numbers of deleted rows, so once a
    compaction dropped the newest rows the next update got a seq at or below the snapshot's
    `upto_seq`, and a restart before the next compaction skipped it: lost."""
    engine = engine_with_notebooks(tmp_path, ["a", "b"])
    log = SqlUpdateLog(engine)
    await log.start()
    doc: Doc[Any] = Doc()
    other: Doc[Any] = Doc()
    try:
        await log.append("b", edit(other, "b"), lambda _seq: None)
        seqs = [await log.append("a", edit(doc, f"{i}"), lambda _seq: None) for i in range(3)]
        await log.compact("a", doc.get_update(), doc.get_state(), max(seqs))
        later = await log.append("a", edit(doc, "after"), lambda _seq: None)
        assert later > max(seqs)
        stored = await log.load("a")
    finally:
        await log.stop()
        engine.dispose()
    rebuilt: Doc[Any] = Doc()
    assert stored.snapshot is not None
    rebuilt.apply_update(stored.snapshot)
    for _, update in stored.updates:
        rebuilt.apply_update(update)
    assert str(rebuilt.get("t", type=Text)) == "after210"


def test_the_upgrade_numbers_new_updates_above_everything_already_handed_out(
    tmp_path: Path,
) -> None:
    """A database from before the fix: its next seq starts above what its snapshots
    folded in, not above the rows compaction happened to leave."""
    engine = make_engine(Settings(data_dir=tmp_path))
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'o', 0, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
            "VALUES ('a', 't', 1, '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO snapshots (notebook_id, upto_seq, data, updated_at) "
            "VALUES ('a', 50, x'00', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO update_log (seq, notebook_id, data) VALUES (3, 'a', x'00')"
        )
    migrate(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO update_log (notebook_id, data) VALUES ('a', x'01')")
        seqs = [row[0] for row in connection.exec_driver_sql("SELECT seq FROM update_log")]
    engine.dispose()
    assert seqs == [3, 51]


@contextlib.contextmanager
def writes_held(engine: Any, database_url: str) -> Iterator[None]:
    """Another connection holds the update log's write lock until the block ends, so the
    writer's first insert waits and every append made meanwhile queues for one batch."""
    if database_url:
        with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as other:
            other.execute("LOCK TABLE update_log IN EXCLUSIVE MODE")
            yield
    else:
        other = sqlite3.connect(engine.url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("COMMIT")
            other.close()


def stored_rows(engine: Any) -> dict[int, tuple[str, bytes]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT seq, notebook_id, data FROM update_log")
        return {int(seq): (notebook, bytes(data)) for seq, notebook, data in rows}


@pytest.fixture
def database_url(database_urls: DatabaseUrls) -> str:
    """A new database on the module's back end (both, from tests/collab/conftest.py)."""
    return database_urls.new("log")


async def test_a_batch_hands_back_each_update_the_seq_of_its_own_row(
    tmp_path: Path, database_url: str
) -> None:
    """The writer inserts a batch through the driver: every append's future and
    `on_durable` get the seq of the row holding that very update, in append order."""
    engine = engine_with_notebooks(tmp_path, ["a", "b"], database_url)
    log = SqlUpdateLog(engine)
    await log.start()
    told: list[tuple[int, int]] = []
    updates = [(("a", "b")[i % 2], f"update {i}".encode()) for i in range(40)]
    try:
        with writes_held(engine, database_url):
            futures = [log.append("a", b"first", lambda _seq: None)]
            await asyncio.sleep(0.3)  # the writer is now waiting on the lock
            futures += [
                log.append(notebook, data, lambda seq, i=i: told.append((i, seq)))
                for i, (notebook, data) in enumerate(updates)
            ]
        seqs = await asyncio.gather(*futures)
    finally:
        await log.stop()
    rows = stored_rows(engine)
    engine.dispose()
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert rows[seqs[0]] == ("a", b"first")
    assert [rows[seq] for seq in seqs[1:]] == updates
    assert told == list(enumerate(seqs[1:]))


async def test_a_batch_that_fails_stores_none_of_its_rows(
    tmp_path: Path, database_url: str
) -> None:
    """One row of a batch breaks a constraint (its notebook is gone): the batch is rolled
    back whole, every append in it fails, and the next append is stored as usual."""
    engine = engine_with_notebooks(tmp_path, ["a"], database_url)
    log = SqlUpdateLog(engine)
    await log.start()
    try:
        with writes_held(engine, database_url):
            held = log.append("a", b"first", lambda _seq: None)
            await asyncio.sleep(0.3)
            batch = [log.append(n, n.encode(), lambda _seq: None) for n in ("a", "gone", "a")]
        await held
        results = await asyncio.gather(*batch, return_exceptions=True)
        after = await log.append("a", b"after", lambda _seq: None)
    finally:
        await log.stop()
    rows = stored_rows(engine)
    engine.dispose()
    assert all(isinstance(result, Exception) for result in results)
    assert sorted(rows.values()) == [("a", b"after"), ("a", b"first")]
    assert rows[after] == ("a", b"after")


async def test_a_runtime_write_below_the_fence_is_refused_and_not_stored(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """A runtime's append carries its lease epoch: one below the notebook's fence is refused
    and not stored (its future fails with FencedOut, on_durable is not called), one at the
    fence is stored, and unfenced appends in the same batch (and a fenced one of a notebook
    with no fence) are unaffected. An append checked while another transaction raises the
    fence waits for it and is refused; a fence is never lowered."""
    engine = engine_with_notebooks(tmp_path, ["nb", "free"], postgres.create_database("fence"))
    raise_fence(engine, "nb", 1)
    log = SqlUpdateLog(engine)
    await log.start()
    durable: list[bytes] = []

    def append(notebook_id: str, data: bytes, fence: int | None) -> asyncio.Future[int]:
        return log.append(notebook_id, data, lambda _: durable.append(data), fence=fence)

    sent = [
        ("nb", b"client", None),
        ("nb", b"stale-at-1", 1),
        ("nb", b"owner-at-2", 2),
        ("free", b"other-notebook", None),
        ("free", b"no-fence-yet-at-1", 1),
    ]
    raising = engine.connect()
    try:
        # Another replica takes the runtime: its fence is being raised, not yet committed.
        raising.begin()
        raising.exec_driver_sql("UPDATE runtime_fences SET epoch = 2 WHERE notebook_id = 'nb'")
        first = append("nb", b"first-at-1", 1)  # its batch waits for the fence's row
        await asyncio.sleep(0.3)
        assert not first.done()
        batch = [append(*write) for write in sent]  # queued meanwhile: the next batch
        raising.commit()
        results = await asyncio.gather(first, *batch, return_exceptions=True)
    finally:
        raising.close()
        await log.stop()
    refused = [
        data
        for (_, data, _), result in zip(sent, results[1:], strict=True)
        if isinstance(result, FencedOut)
    ]
    assert isinstance(results[0], FencedOut)
    assert refused == [b"stale-at-1"]
    assert all(isinstance(r, int) for r in results if not isinstance(r, FencedOut)), results
    assert durable == [b"client", b"owner-at-2", b"other-notebook", b"no-fence-yet-at-1"]
    assert sorted(stored_rows(engine).values()) == [
        ("free", b"no-fence-yet-at-1"),
        ("free", b"other-notebook"),
        ("nb", b"client"),
        ("nb", b"owner-at-2"),
    ]
    raise_fence(engine, "nb", 1)  # a late writer of an old epoch cannot lower it
    with engine.connect() as connection:
        fences = connection.exec_driver_sql("SELECT notebook_id, epoch FROM runtime_fences")
        assert [tuple(row) for row in fences] == [("nb", 2)]
    engine.dispose()
