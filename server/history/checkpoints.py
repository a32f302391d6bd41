"""Versions nobody has to ask for.

- A checkpoint every `checkpoint_seconds` while a notebook is being edited, and one when
  its room closes if it changed since the last. With several replicas each holding the
  notebook's room, each sees every edit; the first to keep a state keeps it for all
  (`service.checkpoint_needless`, under the notebook's row lock): the others skip a
  periodic checkpoint when one was made in the last half interval, and any checkpoint
  whose state the latest one already holds.
- When one update removes half or more of a notebook's cells (four or more), the state
  just before it is rebuilt from the update log and kept: a bad client or a slip can
  always be undone from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

from pycrdt import Doc
from sqlalchemy import Engine
from sqlmodel import Session

from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.collab.update_log import UpdateLog
from server.errors import NotFound
from server.history import service
from server.history.models import VersionKind
from server.timeutil import utcnow

log = logging.getLogger(__name__)

SYSTEM = "tandem"


class Checkpoints:
    def __init__(
        self, engine: Engine, rooms: RoomManager, update_log: UpdateLog, every: float
    ) -> None:
        self._engine = engine
        self._rooms = rooms
        self._log = update_log
        self._every = every
        # notebook -> (monotonic time, seq) of its last checkpoint (or of first sight).
        self._last: dict[str, tuple[float, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        rooms.on_load(self._on_load)
        rooms.on_unload(self._on_unload)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _on_load(self, room: Room) -> None:
        self._last[room.notebook_id] = (time.monotonic(), room.last_seq)
        room.on_cells_removed = self._cells_removed

    async def _on_unload(self, room: Room) -> None:
        _, seq = self._last.pop(room.notebook_id, (0.0, room.last_seq))
        if room.last_seq > seq:
            await self._checkpoint(room.notebook_id, room.doc.get_update(), periodic=False)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self._every / 4))
            now = time.monotonic()
            for room in self._rooms.open_rooms():
                at, seq = self._last.get(room.notebook_id, (now, room.last_seq))
                if room.last_seq > seq and now - at >= self._every and room.settled:
                    self._last[room.notebook_id] = (now, room.last_seq)
                    await self._checkpoint(room.notebook_id, room.doc.get_update(), periodic=True)

    async def _checkpoint(self, notebook_id: str, state: bytes, *, periodic: bool) -> None:
        """Keep `state` as a checkpoint unless another replica's makes it needless."""
        recent = timedelta(seconds=self._every / 2) if periodic else None

        def save() -> None:
            with Session(self._engine) as db:
                made_after = utcnow() - recent if recent is not None else None
                if service.checkpoint_needless(db, notebook_id, state, made_after):
                    return
                service.save(db, notebook_id, state, VersionKind.CHECKPOINT, SYSTEM)
                db.commit()

        try:
            await asyncio.to_thread(save)
        except NotFound:
            return  # deleted meanwhile
        except Exception:
            log.exception("saving a checkpoint of %s failed", notebook_id)

    async def _save(self, notebook_id: str, state: bytes, kind: VersionKind) -> None:
        def save() -> None:
            with Session(self._engine) as db:
                service.save(db, notebook_id, state, kind, SYSTEM)
                db.commit()

        try:
            await asyncio.to_thread(save)
        except Exception:
            log.exception("saving a %s of %s failed", kind.value, notebook_id)

    def _cells_removed(self, room: Room, seq: int, before: int, after: int) -> None:
        if before >= 4 and after <= before // 2:
            task = asyncio.ensure_future(self._keep_before(room.notebook_id, seq, before, after))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _keep_before(self, notebook_id: str, seq: int, before: int, after: int) -> None:
        stored = await self._log.load(notebook_id)
        if stored.upto_seq >= seq:
            log.warning("notebook %s: the state before a mass deletion was compacted", notebook_id)
            return
        doc: Doc[Any] = Doc()
        updates = [stored.snapshot] if stored.snapshot else []
        updates += [update for update_seq, update in stored.updates if update_seq < seq]
        for update in updates:
            # One the room skipped when it loaded (stored before updates were tried first),
            # this skips too.
            with contextlib.suppress(Exception):
                doc.apply_update(update)
        log.info(
            "notebook %s: %d of %d cells removed at once; kept a version",
            notebook_id,
            before - after,
            before,
        )
        await self._save(notebook_id, doc.get_update(), VersionKind.BEFORE_MASS_DELETE)
