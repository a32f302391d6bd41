"""The open rooms of this server: load on first join, keep while used, unload after a grace.

Loading is snapshot + tail of the update log, read and applied in a worker thread; two
people opening a cold notebook at the same moment share one load. An unloaded room is
compacted first, so the next open reads one snapshot. With several replicas a room joins
the notebook's fan-out (`Fanout`) before it is read, so it misses nothing published after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from server.collab.fanout import Fanout
from server.collab.room import Connection, Room, RoomLimits
from server.collab.update_log import StoredDocument, UpdateLog
from server.errors import CloseCode
from server.events.bus import EventBus
from server.events.types import MembersChanged, NotebookDeleted, NotebookEvent, SessionsEnded
from server.vocabulary import Role

log = logging.getLogger(__name__)

# A document this small is built in well under a millisecond: on the loop, not in a thread
# (the hop costs more than the build when hundreds of rooms open at once).
BUILD_INLINE_BYTES = 64 * 1024


@dataclass
class _Entry:
    room: Room
    users: int = 0
    unload: asyncio.TimerHandle | None = None


class RoomManager:
    def __init__(
        self,
        update_log: UpdateLog,
        bus: EventBus,
        limits: RoomLimits,
        grace_seconds: float,
        fanout: Fanout | None = None,
    ) -> None:
        self._log = update_log
        self._fanout = fanout or Fanout()
        self._limits = limits
        self._grace = grace_seconds
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._unloading: set[asyncio.Task[None]] = set()
        self._load_hooks: list[Callable[[Room], None]] = []
        self._unload_hooks: list[Callable[[Room], Awaitable[None]]] = []
        # Fan-outs of discarded rooms being left: the notebook's next load waits for them.
        self._leaving: dict[str, asyncio.Task[None]] = {}
        bus.subscribe_all(self._on_event)
        self.on_load(self._watch_discard)

    def on_load(self, hook: Callable[[Room], None]) -> None:
        """Call `hook(room)` each time a room is loaded from the database."""
        self._load_hooks.append(hook)

    def on_unload(self, hook: Callable[[Room], Awaitable[None]]) -> None:
        """Await `hook(room)` when a room has been unloaded (and for each room at shutdown).
        Hooks must let go of the room: observers on its Doc keep it alive otherwise."""
        self._unload_hooks.append(hook)

    def open_rooms(self) -> list[Room]:
        return [entry.room for entry in self._entries.values()]

    async def _run_unload_hooks(self, room: Room) -> None:
        for hook in self._unload_hooks:
            try:
                await hook(room)
            except Exception:
                log.exception("a room unload hook failed for %s", room.notebook_id)

    def get(self, notebook_id: str) -> Room | None:
        entry = self._entries.get(notebook_id)
        return entry.room if entry is not None else None

    async def serve(self, notebook_id: str, connection: Connection) -> None:
        room = await self._acquire(notebook_id)
        try:
            await room.serve(connection)
        finally:
            self._release(notebook_id, room)

    @contextlib.asynccontextmanager
    async def hold(self, notebook_id: str) -> AsyncIterator[Room]:
        """Keep the room open for the server's own use (a kernel writing outputs while no
        browser is connected), as a connection would."""
        room = await self._acquire(notebook_id)
        try:
            yield room
        finally:
            self._release(notebook_id, room)

    async def document(self, notebook_id: str) -> Doc[Any]:
        """The open room's Doc, or a copy read from the database (to read, not to edit)."""
        room = self.get(notebook_id)
        if room is not None:
            return room.doc
        doc, _ = build_doc(notebook_id, await self._log.load(notebook_id))
        return doc

    async def snapshot(self, notebook_id: str) -> bytes:
        """The document's integrated content as one update (what an export shows): from the
        open room, else read from the database without opening a room."""
        room = self.get(notebook_id)
        if room is not None:
            return room.doc.get_update()
        stored = await self._log.load(notebook_id)
        return await asyncio.to_thread(_integrated_state, notebook_id, stored)

    async def _acquire(self, notebook_id: str) -> Room:
        entry = self._entries.get(notebook_id)
        if entry is None:
            loading = self._loading.get(notebook_id)
            if loading is None:
                loading = asyncio.ensure_future(self._load_once_left(notebook_id))
                self._loading[notebook_id] = loading
            # Shielded: one person giving up does not cancel the load the others wait on.
            await asyncio.shield(loading)
            entry = self._entries[notebook_id]
        if entry.unload is not None:
            entry.unload.cancel()
            entry.unload = None
        entry.users += 1
        return entry.room

    def _release(self, notebook_id: str, room: Room) -> None:
        entry = self._entries.get(notebook_id)
        if entry is None or entry.room is not room:
            return  # that room was discarded (a later one may be open)
        entry.users -= 1
        if entry.users == 0:
            loop = asyncio.get_running_loop()
            entry.unload = loop.call_later(self._grace, self._start_unload, notebook_id)

    def _start_unload(self, notebook_id: str) -> None:
        task = asyncio.create_task(self._unload(notebook_id))
        self._unloading.add(task)
        task.add_done_callback(self._unloading.discard)

    async def _unload(self, notebook_id: str) -> None:
        entry = self._entries.get(notebook_id)
        if entry is None or entry.users > 0:
            return
        compaction = entry.room.start_compaction()
        if compaction is not None:
            await compaction
        # Someone may have joined while the snapshot was written; then the room stays.
        if entry.users == 0 and self._entries.get(notebook_id) is entry:
            del self._entries[notebook_id]
            await self._fanout.leave(notebook_id)
            await self._run_unload_hooks(entry.room)

    def _watch_discard(self, room: Room) -> None:
        room.on_discard = self._evict

    def _evict(self, room: Room) -> None:
        """Forget a discarded room at once (see `Room.discard`): the next use reads the
        notebook from the log. Nothing of it is kept: no snapshot, and no unload hooks
        (a checkpoint would keep its Doc); the next load's hooks start afresh."""
        entry = self._entries.get(room.notebook_id)
        if entry is None or entry.room is not room:
            return
        del self._entries[room.notebook_id]
        if entry.unload is not None:
            entry.unload.cancel()
        leaving = asyncio.create_task(self._fanout.leave(room.notebook_id))
        self._leaving[room.notebook_id] = leaving
        leaving.add_done_callback(lambda _: self._left(room.notebook_id, leaving))

    def _left(self, notebook_id: str, leaving: asyncio.Task[None]) -> None:
        if self._leaving.get(notebook_id) is leaving:
            del self._leaving[notebook_id]
        if not leaving.cancelled() and leaving.exception() is not None:
            log.error("leaving the fan-out of %s failed", notebook_id)

    async def _load_once_left(self, notebook_id: str) -> Room:
        leaving = self._leaving.get(notebook_id)
        if leaving is not None:
            await asyncio.wait({leaving})  # its unsubscribe must not undo the next subscribe
        return await self._load(notebook_id)

    async def _load(self, notebook_id: str) -> Room:
        try:
            await self._fanout.join(notebook_id)
            try:
                stored = await self._log.load(notebook_id)
                if _stored_bytes(stored) <= BUILD_INLINE_BYTES:  # quicker than a thread hop
                    doc, last_seq = build_doc(notebook_id, stored)
                else:
                    doc, last_seq = await asyncio.to_thread(build_doc, notebook_id, stored)
            except BaseException:
                await self._fanout.leave(notebook_id)
                raise
        finally:
            self._loading.pop(notebook_id, None)
        room = Room(
            notebook_id,
            doc,
            self._log,
            self._limits,
            last_seq=last_seq,
            fanout=self._fanout,
            seen={seq for seq, _ in stored.updates},
            snapshot_seq=stored.upto_seq,
        )
        self._entries[notebook_id] = _Entry(room)
        self._fanout.attach(room)
        for hook in self._load_hooks:
            try:
                hook(room)
            except Exception:
                log.exception("a room load hook failed for %s", notebook_id)
        return room

    def _on_event(self, event: NotebookEvent) -> None:
        room = self.get(event.notebook_id)
        if room is None:
            return
        if isinstance(event, MembersChanged):
            role = event.changed.role
            room.set_role(event.changed.username, Role(role) if role else None)
        elif isinstance(event, SessionsEnded):
            room.reconnect(event.username)
        elif isinstance(event, NotebookDeleted):
            room.close_all(CloseCode.DELETED, "this notebook was deleted")
            entry = self._entries.pop(event.notebook_id, None)
            if entry is not None and entry.unload is not None:
                entry.unload.cancel()
            task = asyncio.create_task(self._fanout.leave(event.notebook_id))
            self._unloading.add(task)
            task.add_done_callback(self._unloading.discard)

    async def shutdown(self) -> None:
        """Snapshot every open room (the log already holds everything; this makes reopening
        fast)."""
        for entry in list(self._entries.values()):
            entry.room.close_all(CloseCode.RESTARTING, "server restarting")
            if entry.unload is not None:
                entry.unload.cancel()
            await self._run_unload_hooks(entry.room)
            compaction = entry.room.start_compaction()
            if compaction is not None:
                await compaction
        if self._unloading:
            await asyncio.gather(*self._unloading, return_exceptions=True)


def build_doc(notebook_id: str, stored: StoredDocument) -> tuple[Doc[Any], int]:
    """The Doc that `stored` describes, and the seq of the last update in it.

    Run in a worker thread when big (see `BUILD_INLINE_BYTES`): a big notebook's snapshot
    takes a while to apply. pycrdt's Doc
    may move between threads (its Rust core is built `Send`), and nothing else holds this
    one until it is returned. Each `apply_update` keeps the GIL while it runs, so the event
    loop gets its turns between updates, not inside one.
    """
    doc: Doc[Any] = Doc()
    updates = [(stored.upto_seq, stored.snapshot)] if stored.snapshot is not None else []
    updates += stored.updates
    last_seq = stored.upto_seq
    for seq, update in updates:
        try:
            doc.apply_update(update)
        except Exception:
            log.warning("notebook %s: skipping stored update %d", notebook_id, seq)
        last_seq = max(last_seq, seq)
    return doc, last_seq


def _stored_bytes(stored: StoredDocument) -> int:
    return len(stored.snapshot or b"") + sum(len(update) for _, update in stored.updates)


def _integrated_state(notebook_id: str, stored: StoredDocument) -> bytes:
    doc, _ = build_doc(notebook_id, stored)
    return doc.get_update()
