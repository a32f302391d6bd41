"""When a notebook was last changed, for the list's "Updated": its edits and runs, not only
renames. Rooms are polled (as checkpoints are) and the changed ones written in one UPDATE,
at most every `every` seconds and when a room closes — never a write per keystroke."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine, update
from sqlmodel import Session, col

from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.notebooks.models import Notebook
from server.timeutil import utcnow

log = logging.getLogger(__name__)


class EditActivity:
    def __init__(self, engine: Engine, rooms: RoomManager, every: float = 30.0) -> None:
        self._engine = engine
        self._rooms = rooms
        self._every = every
        self._seen: dict[str, int] = {}  # notebook -> the room's last seq already written
        self._task: asyncio.Task[None] | None = None
        rooms.on_load(self._on_load)
        rooms.on_unload(self._on_unload)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_load(self, room: Room) -> None:
        self._seen[room.notebook_id] = room.last_seq

    async def _on_unload(self, room: Room) -> None:
        seen = self._seen.pop(room.notebook_id, room.last_seq)
        if room.last_seq > seen:
            await self._write({room.notebook_id: room.last_seq})
        self._seen.pop(room.notebook_id, None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            changed = {
                room.notebook_id: room.last_seq
                for room in self._rooms.open_rooms()
                if room.last_seq > self._seen.get(room.notebook_id, room.last_seq)
            }
            if changed:
                await self._write(changed)

    async def _write(self, changed: dict[str, int]) -> None:
        notebook_ids = list(changed)

        def write() -> None:
            with Session(self._engine) as db:
                db.exec(
                    update(Notebook)
                    .where(col(Notebook.id).in_(notebook_ids))
                    .values(updated_at=utcnow())
                )
                db.commit()

        try:
            await asyncio.to_thread(write)
        except Exception as error:  # the database away: the next round tries again
            log.warning("could not record when notebooks changed: %s", type(error).__name__)
            return
        for notebook_id, seq in changed.items():
            if notebook_id in self._seen:
                self._seen[notebook_id] = seq
