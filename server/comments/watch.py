"""Keeps threads honest about their cells while a room is open.

For every cell that has threads it remembers the cell's latest text (a Text observer), and
when the cells array changes it sees which of those cells went away (the threads become
orphaned, quoting the text the cell had) or came back (an undone deletion: they return).
Observers run inside the Doc's transaction and only read; the database is written after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from pycrdt import Map, Text
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.comments.models import CommentThread
from server.events.bus import EventBus
from server.events.types import ThreadsOrphaned, ThreadsRestored
from server.notebooks.document import cells_by_id, cells_of, find_cell, summaries

log = logging.getLogger(__name__)

# Rooms whose commented cells one query reads (well under any database's parameter limit).
_FILL_BATCH = 500


class _RoomWatch:
    def __init__(self, owner: CommentWatch, room: Room, cell_ids: set[str]) -> None:
        self.owner = owner
        self.room = room
        self.cells = cells_of(room.doc)
        self.tracked: set[str] = set()
        self.present: set[str] = set()
        self.texts: dict[str, str] = {}
        # Subscriptions are let go on unload: observers on a Doc would keep it alive.
        self.subscriptions: list[tuple[Any, Any]] = []
        sub = self.cells.observe(lambda _event: self._cells_changed())
        self.subscriptions.append((self.cells, sub))
        for cell_id in cell_ids:
            self.track(cell_id)

    def _ids(self) -> set[str]:
        # Read afresh: this runs inside the array's own event, maybe before the cell
        # index's observer has caught up with it.
        return {s.id for s in summaries(self.cells) if s is not None and isinstance(s.id, str)}

    def track(self, cell_id: str) -> None:
        if cell_id in self.tracked:
            return
        self.tracked.add(cell_id)
        cell = find_cell(self.cells, cell_id)
        if cell is not None:
            self.present.add(cell_id)
            self._follow(cell_id, cell)

    def _follow(self, cell_id: str, cell: Map[Any]) -> None:
        source = cell.get("source")
        if not isinstance(source, Text):
            return
        self.texts[cell_id] = str(source)

        def remember(_event: Any) -> None:
            self.texts[cell_id] = str(source)

        self.subscriptions.append((source, source.observe(remember)))

    def detach(self) -> None:
        for shared, subscription in self.subscriptions:
            with contextlib.suppress(Exception):
                shared.unobserve(subscription)
        self.subscriptions.clear()

    def _cells_changed(self) -> None:
        if not self.tracked:
            return
        ids = self._ids()
        gone = {c for c in self.present if c not in ids}
        back = {c for c in self.tracked - self.present if c in ids}
        for cell_id, cell in cells_by_id(self.cells, back).items():
            self._follow(cell_id, cell)
        self.present = (self.present - gone) | back
        if gone or back:
            last = {cell_id: self.texts.get(cell_id, "") for cell_id in gone}
            self.owner.changed(self.room.notebook_id, last, back)


class CommentWatch:
    def __init__(self, engine: Engine, rooms: RoomManager, bus: EventBus) -> None:
        self._engine = engine
        self._rooms = rooms
        self._bus = bus
        # Weak: a watch lives as long as its room's Doc (whose observers hold it), no longer.
        self._watches: weakref.WeakValueDictionary[str, _RoomWatch] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        # Watches of rooms just loaded, waiting for their threads' cells to be read.
        self._unfilled: list[_RoomWatch] = []
        self._filling = False
        rooms.on_load(self._on_load)
        rooms.on_unload(self._on_unload)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_load(self, room: Room) -> None:
        # Attached at once (so no deletion is missed), filled when the threads are read.
        watch = _RoomWatch(self, room, set())
        self._watches[room.notebook_id] = watch
        self._unfilled.append(watch)
        if not self._filling:
            self._filling = True
            self._spawn(self._fill())

    async def _on_unload(self, room: Room) -> None:
        watch = self._watches.get(room.notebook_id)
        if watch is not None and watch.room is room:
            watch.detach()
            del self._watches[room.notebook_id]

    async def _fill(self) -> None:
        """Read the threads' cells of every room loaded meanwhile in one query: when
        hundreds of rooms open at once, one thread hop for many instead of one each."""
        try:
            while self._unfilled:
                batch, self._unfilled = self._unfilled[:_FILL_BATCH], self._unfilled[_FILL_BATCH:]
                try:
                    anchored = await asyncio.to_thread(
                        self._anchored_cells, [watch.room.notebook_id for watch in batch]
                    )
                except Exception:
                    log.exception("reading the commented cells of %d rooms failed", len(batch))
                    continue
                for watch in batch:
                    if self._watches.get(watch.room.notebook_id) is not watch:
                        continue  # unloaded meanwhile
                    for cell_id in anchored.get(watch.room.notebook_id, ()):
                        watch.track(cell_id)
        finally:
            self._filling = False

    def _anchored_cells(self, notebook_ids: list[str]) -> dict[str, set[str]]:
        anchored: dict[str, set[str]] = {}
        with Session(self._engine) as db:
            rows = db.exec(
                select(CommentThread.notebook_id, CommentThread.cell_id).where(
                    col(CommentThread.notebook_id).in_(notebook_ids)
                )
            )
            for notebook_id, cell_id in rows:
                anchored.setdefault(notebook_id, set()).add(cell_id)
        return anchored

    def track(self, notebook_id: str, cell_id: str) -> None:
        """A thread was started on this cell: watch it from now on."""
        watch = self._watches.get(notebook_id)
        if watch is not None and self._rooms.get(notebook_id) is watch.room:
            watch.track(cell_id)

    def changed(self, notebook_id: str, gone: dict[str, str], back: set[str]) -> None:
        self._spawn(self._record(notebook_id, gone, back))

    async def _record(self, notebook_id: str, gone: dict[str, str], back: set[str]) -> None:
        try:
            threads = await asyncio.to_thread(self._save_texts, notebook_id, gone, back)
        except Exception:
            log.exception("recording orphaned threads of %s failed", notebook_id)
            return
        kinds: tuple[tuple[type[ThreadsOrphaned | ThreadsRestored], set[str]], ...] = (
            (ThreadsOrphaned, set(gone)),
            (ThreadsRestored, back),
        )
        for kind, cell_ids in kinds:
            ids = [t for t, cell_id in threads if cell_id in cell_ids]
            if ids:
                self._bus.publish(
                    kind(notebook_id=notebook_id, thread_ids=ids, cell_ids=sorted(cell_ids))
                )

    def _save_texts(
        self, notebook_id: str, gone: dict[str, str], back: set[str]
    ) -> list[tuple[str, str]]:
        with Session(self._engine) as db:
            rows = db.exec(
                select(CommentThread).where(CommentThread.notebook_id == notebook_id)
            ).all()
            for thread in rows:
                text = gone.get(thread.cell_id)
                if text:
                    thread.cell_text = text[:200_000]
                    db.add(thread)
            db.commit()
            return [(t.id, t.cell_id) for t in rows if t.cell_id in gone or t.cell_id in back]

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
