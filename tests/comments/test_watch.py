"""The comment watch lets go of a room when it unloads (observers would keep its Doc)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

from server.collab.room import RoomLimits
from server.collab.rooms import RoomManager
from server.collab.update_log import SqlUpdateLog
from server.comments.watch import CommentWatch
from server.events.bus import EventBus
from server.history.checkpoints import Checkpoints
from tests.collab.test_room import engine_with_notebook


async def test_an_unloaded_room_is_freed(tmp_path: Path) -> None:
    engine = engine_with_notebook(tmp_path)
    log = SqlUpdateLog(engine)
    await log.start()
    rooms = RoomManager(log, EventBus(), RoomLimits(), grace_seconds=0.01)
    watch = CommentWatch(engine, rooms, EventBus())
    checkpoints = Checkpoints(engine, rooms, log, 600)
    async with rooms.hold("nb") as room:
        room_ref, doc_ref = weakref.ref(room), weakref.ref(room.doc)
        await asyncio.sleep(0.05)
        watch.track("nb", "some-cell")
    del room
    for _ in range(50):
        await asyncio.sleep(0.02)
        gc.collect()
        if room_ref() is None:
            break
    assert room_ref() is None
    assert doc_ref() is None
    await rooms.shutdown()
    await watch.stop()
    await checkpoints.stop()
    await log.stop()
    engine.dispose()
