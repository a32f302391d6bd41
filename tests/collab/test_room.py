"""Room logic with in-memory sockets and a real SQLite update log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text, YSyncMessageType
from sqlalchemy import Engine

from server import protocol
from server.collab.room import MAX_CLIENT_IDS_PER_CONNECTION, Connection, RoomLimits
from server.collab.rooms import RoomManager
from server.collab.update_log import SqlUpdateLog
from server.config import Settings
from server.db import make_engine, migrate
from server.events.bus import EventBus
from server.vocabulary import Role
from tests.collab.memory import MemoryTransport
from tests.support import eventually


def engine_with_notebook(tmp_path: Path) -> Engine:
    """A migrated SQLite database holding one user and one notebook, 'nb'."""
    engine = make_engine(Settings(data_dir=tmp_path))
    migrate(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'o', 0, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
            "VALUES ('nb', 't', 1, '2026-01-01', '2026-01-01')"
        )
    return engine


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[tuple[RoomManager, SqlUpdateLog]]:
    engine = engine_with_notebook(tmp_path)
    log = SqlUpdateLog(engine)
    await log.start()
    manager = RoomManager(log, EventBus(), RoomLimits(compact_after_updates=5), grace_seconds=0.05)
    yield manager, log
    await manager.shutdown()
    await log.stop()
    engine.dispose()


def text_update(doc: Doc[Any], text: str) -> bytes:
    before = doc.get_state()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update(before)


async def join(
    manager: RoomManager, name: str, role: Role
) -> tuple[Connection, MemoryTransport, asyncio.Task[None]]:
    transport = MemoryTransport()
    connection = Connection(transport, name, role, 100)
    task = asyncio.create_task(manager.serve("nb", connection))
    await eventually(lambda: bool(transport.sent))
    return connection, transport, task


async def test_update_is_stored_before_anyone_sees_it(
    rooms: tuple[RoomManager, SqlUpdateLog],
) -> None:
    manager, log = rooms
    _, writer, task_w = await join(manager, "w", Role.EDITOR)
    _, reader, task_r = await join(manager, "r", Role.VIEWER)
    update = text_update(Doc(), "hi")
    seen_stored: list[bool] = []
    original_send = reader.send

    async def checking_send(message: bytes) -> None:
        if message[:2] == b"\x00\x02":
            stored = await log.load("nb")
            seen_stored.append(
                any(data == update for _, data in stored.updates) or stored.snapshot is not None
            )
        await original_send(message)

    reader.send = checking_send  # type: ignore[method-assign]
    writer.incoming.put_nowait(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))
    await eventually(lambda: seen_stored == [True])
    # The sender's echo is sent too, after storing.
    await eventually(lambda: any(m[:2] == b"\x00\x02" for m in writer.sent))
    for transport in (writer, reader):
        transport.incoming.put_nowait(None)
    await asyncio.gather(task_w, task_r)


async def test_presence_is_owned_and_removed_on_leave(
    rooms: tuple[RoomManager, SqlUpdateLog],
) -> None:
    manager, _ = rooms
    _, alice, task_a = await join(manager, "alice", Role.EDITOR)
    _, mallory, task_m = await join(manager, "mallory", Role.VIEWER)
    alice.incoming.put_nowait(
        protocol.encode_awareness_message(
            [protocol.AwarenessEntry(11, 1, json.dumps({"user": {"name": "alice"}}))]
        )
    )
    await eventually(lambda: any(m[0] == 1 for m in mallory.sent))
    # Mallory tries to overwrite (and to remove) Alice's presence: both are ignored.
    mark = len(alice.sent)
    mallory.incoming.put_nowait(
        protocol.encode_awareness_message(
            [
                protocol.AwarenessEntry(11, 2, json.dumps({"user": {"name": "alice"}, "x": 1})),
                protocol.AwarenessEntry(11, 3, "null"),
            ]
        )
    )
    mallory.incoming.put_nowait(b"\x03")  # query: the room answers with the true states
    await eventually(lambda: len(mallory.sent) > 2)
    await asyncio.sleep(0.05)
    assert not any(m[0] == 1 for m in alice.sent[mark:])
    room = manager.get("nb")
    assert room is not None and json.loads(room.presence[11].state) == {"user": {"name": "alice"}}
    # Alice leaves: everyone is told her client is gone.
    alice.incoming.put_nowait(None)
    await task_a

    def removal_seen() -> bool:
        for message in mallory.sent:
            if message[0] == 1:
                parsed = protocol.parse_message(message)
                assert isinstance(parsed, protocol.AwarenessUpdate)
                if any(
                    e.client_id == 11 and e.is_removal
                    for e in protocol.parse_awareness_update(parsed.payload)
                ):
                    return True
        return False

    await eventually(removal_seen)
    mallory.incoming.put_nowait(None)
    await task_m


async def test_compaction_and_reload_keep_every_update(
    rooms: tuple[RoomManager, SqlUpdateLog],
) -> None:
    manager, log = rooms
    _, writer, task = await join(manager, "w", Role.EDITOR)
    source: Doc = Doc()
    for i in range(23):  # compacts every 5 updates while more keep coming
        writer.incoming.put_nowait(
            protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, text_update(source, f"{i},"))
        )
    await eventually(lambda: sum(m[:2] == b"\x00\x02" for m in writer.sent) == 23)
    writer.incoming.put_nowait(None)
    await task
    await eventually(lambda: manager.get("nb") is None)  # unloaded after the grace period
    stored = await log.load("nb")
    assert stored.updates == []  # unloading compacted everything into the snapshot
    reloaded: Doc = Doc()
    assert stored.snapshot is not None
    reloaded.apply_update(stored.snapshot)
    assert str(reloaded.get("t", type=Text)) == str(source.get("t", type=Text))


async def test_pending_updates_survive_compaction(rooms: tuple[RoomManager, SqlUpdateLog]) -> None:
    """An update whose predecessor has not arrived must not vanish into a snapshot."""
    manager, log = rooms
    _, writer, task = await join(manager, "w", Role.EDITOR)
    source: Doc = Doc()
    first = text_update(source, "first ")
    second = text_update(source, "second ")
    writer.incoming.put_nowait(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, second))
    await eventually(lambda: any(m[:2] == b"\x00\x02" for m in writer.sent))
    room = manager.get("nb")
    assert room is not None
    assert str(room.doc.get("t", type=Text)) == ""  # held back, waiting for `first`
    writer.incoming.put_nowait(None)
    await task
    await eventually(lambda: manager.get("nb") is None)
    assert (await log.load("nb")).updates == []
    # A second compaction, from a room that still holds it back, keeps it too.
    _, other, task = await join(manager, "w", Role.EDITOR)
    other.incoming.put_nowait(
        protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, text_update(Doc(), "other "))
    )
    await eventually(lambda: any(m[:2] == b"\x00\x02" for m in other.sent))
    other.incoming.put_nowait(None)
    await task
    await eventually(lambda: manager.get("nb") is None)
    assert (await log.load("nb")).updates == []
    # Reopened from the snapshot alone, the late predecessor completes the text.
    _, again, task = await join(manager, "w", Role.EDITOR)
    again.incoming.put_nowait(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, first))
    room = manager.get("nb")
    assert room is not None
    await eventually(lambda: "second first " in str(room.doc.get("t", type=Text)))
    again.incoming.put_nowait(None)
    await task


async def test_slow_client_is_cut_loose(rooms: tuple[RoomManager, SqlUpdateLog]) -> None:
    manager, _ = rooms
    blocked = asyncio.Event()

    class StuckTransport(MemoryTransport):
        async def send(self, message: bytes) -> None:
            await blocked.wait()

    stuck = StuckTransport()
    connection = Connection(stuck, "slow", Role.VIEWER, 3)
    task = asyncio.create_task(manager.serve("nb", connection))
    _, writer, task_w = await join(manager, "w", Role.EDITOR)
    source: Doc = Doc()
    for i in range(10):
        writer.incoming.put_nowait(
            protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, text_update(source, str(i)))
        )
    await eventually(lambda: connection.closing)
    blocked.set()
    await eventually(lambda: stuck.closed is not None)
    assert stuck.closed is not None and stuck.closed[0] == 1013
    await task
    writer.incoming.put_nowait(None)
    await task_w


async def test_group_commit_batches_concurrent_appends(tmp_path: Path) -> None:
    from sqlalchemy import event

    engine = engine_with_notebook(tmp_path)
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    log = SqlUpdateLog(engine)
    await log.start()
    order: list[int] = []
    futures = [log.append("nb", bytes([i % 256]) * 10, order.append) for i in range(500)]
    seqs = await asyncio.gather(*futures)
    await log.stop()
    assert seqs == sorted(seqs) and len(set(seqs)) == 500
    assert order == seqs  # durable callbacks run in commit order
    assert len(commits) < 50, f"{len(commits)} commits for 500 appends"
    stored = await log.load("nb")
    assert [seq for seq, _ in stored.updates] == seqs
    engine.dispose()


async def test_one_socket_cannot_flood_presence(rooms: tuple[RoomManager, SqlUpdateLog]) -> None:
    manager, _ = rooms
    _, flooder, task = await join(manager, "mallory", Role.VIEWER)
    entries = [protocol.AwarenessEntry(1000 + i, 1, "{}") for i in range(500)]
    flooder.incoming.put_nowait(protocol.encode_awareness_message(entries))
    room = manager.get("nb")
    assert room is not None
    await eventually(lambda: len(room.presence) > 0)
    await asyncio.sleep(0.05)
    assert len(room.presence) == MAX_CLIENT_IDS_PER_CONNECTION
    flooder.incoming.put_nowait(None)
    await task
    assert room.presence == {}
