"""The server's own edits (kernel outputs) keep persist-before-broadcast, and a runtime's
edit the log fences out leaves nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, YSyncMessageType

from server import protocol
from server.collab.fences import raise_fence
from server.collab.room import RoomLimits
from server.collab.rooms import RoomManager
from server.collab.update_log import Durable, SqlUpdateLog, StoredDocument, UpdateLog
from server.errors import CloseCode, FencedOut
from server.events.bus import EventBus
from server.vocabulary import Role
from tests.collab.test_room import engine_with_notebook, join
from tests.support import eventually


class GatedLog(UpdateLog):
    """A real SQL log whose appends wait for the test to open a gate."""

    def __init__(self, inner: SqlUpdateLog) -> None:
        self.inner = inner
        self.gate = asyncio.Event()

    def append(
        self, notebook_id: str, update: bytes, on_durable: Durable, *, fence: int | None = None
    ) -> asyncio.Future[int]:
        async def later() -> int:
            await self.gate.wait()
            return await self.inner.append(notebook_id, update, on_durable, fence=fence)

        return asyncio.ensure_future(later())

    async def load(self, notebook_id: str) -> StoredDocument:
        return await self.inner.load(notebook_id)

    async def compact(
        self,
        notebook_id: str,
        state: bytes,
        state_vector: bytes,
        upto_seq: int,
        seqs: Collection[int] | None = None,
    ) -> int:
        return await self.inner.compact(notebook_id, state, state_vector, upto_seq, seqs)


def add_output(doc: Doc[Any]) -> None:
    cells = doc.get("cells", type=Array)
    cells.append(Map({"id": "c", "outputs": Array([Map({"text": Text("42\n")})])}))


async def test_server_edit_is_stored_before_anyone_sees_it(tmp_path: Path) -> None:
    engine = engine_with_notebook(tmp_path)
    inner = SqlUpdateLog(engine)
    await inner.start()
    log = GatedLog(inner)
    manager = RoomManager(log, EventBus(), RoomLimits(), grace_seconds=0.05)
    log.gate.set()
    _, watcher, task = await join(manager, "w", Role.VIEWER)
    log.gate.clear()
    room = manager.get("nb")
    assert room is not None
    sent_before = len(watcher.sent)

    editing = asyncio.create_task(room.edit(add_output))
    await asyncio.sleep(0.05)
    assert not editing.done()
    assert len(watcher.sent) == sent_before  # in the server's Doc, not yet sent to anyone
    # A client asking for the document now must not get the unsaved edit either.
    asker = Doc()
    watcher.incoming.put_nowait(
        protocol.encode_sync(YSyncMessageType.SYNC_STEP1, asker.get_state())
    )
    await asyncio.sleep(0.05)
    assert len(watcher.sent) == sent_before
    assert (await inner.load("nb")).updates == []

    log.gate.set()
    await editing
    stored = await inner.load("nb")
    assert len(stored.updates) == 1
    await eventually(lambda: len(watcher.sent) == sent_before + 2)
    replica = Doc()
    for message in watcher.sent[sent_before:]:
        assert message[0] == 0  # sync messages: the update, then the step-2 answer
        replica.apply_update(protocol.parse_message(message).update)  # type: ignore[union-attr]
    assert replica.get("cells", type=Array).to_py() == [{"id": "c", "outputs": [{"text": "42\n"}]}]
    watcher.incoming.put_nowait(None)
    await task
    await manager.shutdown()
    await inner.stop()
    engine.dispose()


async def test_an_edit_that_changes_nothing_stores_nothing(tmp_path: Path) -> None:
    engine = engine_with_notebook(tmp_path)
    log = SqlUpdateLog(engine)
    await log.start()
    manager = RoomManager(log, EventBus(), RoomLimits(), grace_seconds=0.05)
    async with manager.hold("nb") as room:
        await room.edit(lambda doc: None)
    assert (await log.load("nb")).updates == []
    await manager.shutdown()
    await log.stop()
    engine.dispose()


def set_title(doc: Doc[Any]) -> None:
    doc.get("meta", type=Map)["title"] = "kept"


async def test_a_fenced_out_edit_survives_neither_in_the_doc_nor_in_a_snapshot(
    tmp_path: Path,
) -> None:
    """A runtime's edit under epoch 1 while the notebook's fence is at 2 is refused: no
    snapshot is taken while it waits (it would store it whatever the log decides), the
    room is discarded (its clients told to reconnect, 1012) and the next room, read from
    the log, has only what was stored; an edit under the current epoch is stored."""
    engine = engine_with_notebook(tmp_path)
    raise_fence(engine, "nb", 2)
    inner = SqlUpdateLog(engine)
    await inner.start()
    log = GatedLog(inner)
    manager = RoomManager(log, EventBus(), RoomLimits(), grace_seconds=0.05)
    log.gate.set()
    _, watcher, task = await join(manager, "w", Role.VIEWER)
    room = manager.get("nb")
    assert room is not None
    await room.edit(set_title)  # unfenced, stored: the room has something to compact
    log.gate.clear()
    stale = room.start_edit(add_output, fence=1)
    assert "outputs" in str(room.doc.get("cells", type=Array).to_py())  # applied already
    assert room.start_compaction() is None  # not while the Doc holds an unsettled edit
    log.gate.set()
    with pytest.raises(FencedOut):
        await stale
    assert room.discarded
    await eventually(lambda: watcher.closed is not None)
    assert watcher.closed is not None and watcher.closed[0] == CloseCode.RESTARTING
    await task
    assert manager.get("nb") is None  # forgotten at once: nobody reads the discarded Doc
    stored = await inner.load("nb")
    assert stored.snapshot is None and len(stored.updates) == 1
    async with manager.hold("nb") as fresh:
        assert fresh is not room
        assert fresh.doc.get("cells", type=Array).to_py() == []
        assert fresh.doc.get("meta", type=Map).to_py() == {"title": "kept"}
        await fresh.start_edit(add_output, fence=2)
        assert fresh.start_compaction() is not None
    reread = await inner.load("nb")
    assert len(reread.updates) == 2 or reread.snapshot is not None
    await manager.shutdown()
    await inner.stop()
    engine.dispose()
