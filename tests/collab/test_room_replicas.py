"""Rooms of two replicas on one update log, their fan-out joined in memory (the Redis one is
tested with a real Redis in tests/replicas): updates and presence cross, and a heal reads
back from the log what the fan-out dropped, also after the other replica compacted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text, YSyncMessageType

from server import protocol
from server.collab.fanout import Fanout
from server.collab.room import Connection, Room, RoomLimits
from server.collab.rooms import RoomManager
from server.collab.update_log import SqlUpdateLog
from server.events.bus import EventBus
from server.vocabulary import Role
from tests.collab.memory import MemoryTransport
from tests.collab.test_room import engine_with_notebook, text_update
from tests.support import eventually


class Link(Fanout):
    """One replica's side of an in-memory fan-out; `dropping` loses every message."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.peer: Link | None = None
        self.dropping = False

    def attach(self, room: Room) -> None:
        self.rooms[room.notebook_id] = room

    async def leave(self, notebook_id: str) -> None:
        self.rooms.pop(notebook_id, None)

    def _there(self, notebook_id: str) -> Room | None:
        if self.dropping or self.peer is None:
            return None
        return self.peer.rooms.get(notebook_id)

    def updated(self, notebook_id: str, seq: int, update: bytes) -> None:
        if (room := self._there(notebook_id)) is not None:
            room.apply_remote(seq, update)

    def presence(self, notebook_id: str, message: bytes) -> None:
        if (room := self._there(notebook_id)) is not None:
            room.remote_presence_message(message)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[RoomManager, RoomManager]]:
    engine = engine_with_notebook(tmp_path)
    log = SqlUpdateLog(engine)
    await log.start()
    links = Link(), Link()
    links[0].peer, links[1].peer = links[1], links[0]
    managers = tuple(
        RoomManager(log, EventBus(), RoomLimits(), grace_seconds=0.05, fanout=link)
        for link in links
    )
    yield managers[0], managers[1]
    for manager in managers:
        await manager.shutdown()
    await log.stop()
    engine.dispose()


async def join(manager: RoomManager, role: Role = Role.EDITOR) -> MemoryTransport:
    transport = MemoryTransport()
    connection = Connection(transport, "someone", role, 100)
    asyncio.create_task(manager.serve("nb", connection))  # noqa: RUF006  (ends with the room)
    await eventually(lambda: bool(transport.sent))
    return transport


def updates_in(transport: MemoryTransport) -> list[bytes]:
    return [
        message
        for message in transport.sent
        if message[:2] == bytes([0, YSyncMessageType.SYNC_UPDATE])
    ]


def text_of(manager: RoomManager) -> str:
    room = manager.get("nb")
    assert room is not None
    return str(room.doc.get("t", type=Text))


def link_of(manager: RoomManager) -> Link:
    room = manager.get("nb")
    assert room is not None and isinstance(room.fanout, Link)
    return room.fanout


async def send(transport: MemoryTransport, update: bytes) -> None:
    transport.incoming.put_nowait(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))


async def test_an_update_crosses_once_and_a_heal_reads_what_was_dropped(
    replicas: tuple[RoomManager, RoomManager],
) -> None:
    one, two = replicas
    writer = await join(one)
    reader = await join(two, Role.VIEWER)
    doc: Doc[Any] = Doc()
    await send(writer, text_update(doc, "a"))
    await eventually(lambda: text_of(two) == "a" and len(updates_in(reader)) == 1)

    link_of(one).dropping = True
    await send(writer, text_update(doc, "b"))
    await eventually(lambda: text_of(one) == "ba")
    await asyncio.sleep(0.05)
    assert text_of(two) == "a"  # the fan-out lost it

    room = two.get("nb")
    assert room is not None
    await room.heal()
    assert text_of(two) == "ba"
    await eventually(lambda: len(updates_in(reader)) == 2)  # the healed one went out too
    await room.heal()
    await asyncio.sleep(0.05)
    assert len(updates_in(reader)) == 2  # nothing applied twice, nothing sent twice


async def test_a_heal_after_the_other_replica_compacted_reads_its_snapshot(
    replicas: tuple[RoomManager, RoomManager],
) -> None:
    one, two = replicas
    writer = await join(one)
    await join(two, Role.VIEWER)
    link_of(one).dropping = True
    doc: Doc[Any] = Doc()
    for word in ("x", "y", "z"):
        await send(writer, text_update(doc, word))
    await eventually(lambda: text_of(one) == "zyx")
    compacting = one.get("nb")
    assert compacting is not None
    task = compacting.start_compaction()
    assert task is not None
    await task  # the rows two never saw are folded into one's snapshot and gone
    room = two.get("nb")
    assert room is not None and text_of(two) == ""
    await room.heal()
    assert text_of(two) == "zyx"


async def test_presence_crosses_and_a_late_joiner_sees_it(
    replicas: tuple[RoomManager, RoomManager],
) -> None:
    one, two = replicas
    here = await join(one)
    there = await join(two)
    state = json.dumps({"cursor": 3})
    here.incoming.put_nowait(
        protocol.encode_awareness_message([protocol.AwarenessEntry(77, 1, state)])
    )

    def has_77(transport: MemoryTransport) -> bool:
        for message in transport.sent:
            parsed = protocol.parse_message(message)
            if isinstance(parsed, protocol.AwarenessUpdate) and any(
                entry.client_id == 77 and not entry.is_removal
                for entry in protocol.parse_awareness_update(parsed.payload)
            ):
                return True
        return False

    await eventually(lambda: has_77(there))
    late = await join(two)
    assert has_77(late)  # in the presence sent on joining
