"""A Room is one open notebook: its pycrdt Doc, the people connected to it and their presence.

Every incoming update goes: role check -> decode check -> schema guard (tried on a shadow
Doc; see `guard`) -> update log (durable) -> apply to the Doc -> broadcast to every
connection, the sender's echo included. Nothing reaches a client before it is stored, so
anything anyone has seen survives a crash, and nothing is stored that breaks the notebook.

The server edits the document itself too (kernel outputs, execution state) with `edit`:
the change is made in the Doc, stored, and only then sent; while such a change is not yet
stored, answers to sync requests wait, so no client is handed it early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Snapshot, YSyncMessageType, get_state, get_update, merge_updates

from server import protocol
from server.collab.guard import Accepted, Refused, SchemaGuard
from server.collab.transport import Disconnected, TextFrame, Transport
from server.collab.update_log import UpdateLog
from server.errors import CloseCode, FrameTooLarge, InvalidUpdate, ProtocolError, TandemError
from server.vocabulary import Role

log = logging.getLogger(__name__)


# One y-websocket connection carries one Y.Doc, hence one awareness client id; a few more
# allow for a client that recreates its document without reconnecting.
MAX_CLIENT_IDS_PER_CONNECTION = 8


@dataclass(frozen=True)
class RoomLimits:
    max_frame_bytes: int = 16 * 1024 * 1024
    max_awareness_bytes: int = 64 * 1024
    compact_after_updates: int = 2000
    compact_after_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True)
class _Update:
    """A document update waiting to go out; consecutive ones are merged into one frame."""

    update: bytes
    message: bytes


class Connection:
    """One client's websocket in a room: who it is, what it may do, what waits to be sent.

    Sending never blocks the room: messages wait in the connection's outbox. When a client
    falls behind, the document updates waiting for it are merged into one (Yjs updates
    merge losslessly), so a busy room sends fewer, larger frames instead of a backlog.
    """

    def __init__(
        self,
        transport: Transport,
        username: str,
        role: Role,
        queue_size: int,
        *,
        guest: bool = False,
    ) -> None:
        self.transport = transport
        self.username = username
        self.role = role
        self.guest = guest
        self.client_ids: set[int] = set()
        self._outbox: deque[bytes | _Update | _Close] = deque()
        self._limit = queue_size
        self._ready = asyncio.Event()
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    def send(self, message: bytes | _Update) -> None:
        if self._closing:
            return
        if len(self._outbox) >= self._limit:
            # A client this far behind resyncs faster from scratch than from a backlog.
            self.close(CloseCode.TOO_FAR_BEHIND, "too far behind; reconnect to resync")
            return
        self._outbox.append(message)
        self._ready.set()

    def send_update(self, update: bytes, message: bytes) -> None:
        self.send(_Update(update, message))

    def close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        # The close jumps the queue: whatever is still waiting is dropped.
        self._outbox.clear()
        self._outbox.append(_Close(code, reason))
        self._ready.set()

    async def run_sender(self) -> None:
        while True:
            if not self._outbox:
                self._ready.clear()
                await self._ready.wait()
                continue
            item = self._outbox.popleft()
            if isinstance(item, _Close):
                await self.transport.close(item.code, item.reason)
                return
            if isinstance(item, _Update):
                item = self._merge_waiting(item)
            await self.transport.send(item)

    def _merge_waiting(self, first: _Update) -> bytes:
        if not self._outbox or not isinstance(self._outbox[0], _Update):
            return first.message
        updates = [first.update]
        while self._outbox and isinstance(self._outbox[0], _Update):
            waiting = self._outbox.popleft()
            assert isinstance(waiting, _Update)
            updates.append(waiting.update)
        return protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, merge_updates(*updates))


@dataclass
class _Presence:
    clock: int
    state: str
    owner: Connection


@dataclass
class Room:
    notebook_id: str
    doc: Doc[Any]
    update_log: UpdateLog
    limits: RoomLimits
    last_seq: int = 0
    connections: set[Connection] = field(default_factory=set)
    presence: dict[int, _Presence] = field(default_factory=dict)
    _since_snapshot_count: int = 0
    _since_snapshot_bytes: int = 0
    _compaction: asyncio.Task[None] | None = None
    _unsaved_edits: int = 0
    _edits_saved: asyncio.Event = field(default_factory=asyncio.Event)
    # Told when an update left fewer cells than before: (room, seq, before, after).
    on_cells_removed: Callable[[Room, int, int, int], None] | None = None
    _cells: Array[Any] = field(init=False)
    guard: SchemaGuard = field(init=False)
    # Callers waiting for the Doc to hold a state vector (see `holds`).
    _state_waiters: list[tuple[dict[int, int], asyncio.Future[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cells = self.doc.get("cells", type=Array)  # a root: the same for the Doc's life
        self.guard = SchemaGuard(self.notebook_id, self.doc, self.update_log)

    # --- connections -------------------------------------------------------------------

    async def serve(self, connection: Connection) -> None:
        """Run one client's connection until it ends, whatever the reason."""
        self.connections.add(connection)
        sender = asyncio.create_task(connection.run_sender())
        reader = asyncio.create_task(self._read(connection))
        try:
            connection.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP1, self.doc.get_state()))
            if self.presence:
                connection.send(self._presence_message(list(self.presence)))
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connections.discard(connection)
            self._forget_presence(connection)
            if not sender.done():
                # Give a requested close (or the last messages) a moment to go out.
                connection.close(CloseCode.NORMAL, "")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), 1.0)
            for task in (reader, sender):
                task.cancel()
            results = await asyncio.gather(reader, sender, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, Disconnected):
                    log.error("connection to %s failed", self.notebook_id, exc_info=result)

    async def _read(self, connection: Connection) -> None:
        while True:
            try:
                frame = await connection.transport.recv()
            except Disconnected:
                return
            except TextFrame:
                connection.close(
                    CloseCode.UNKNOWN_TYPE, "binary frames only (y-websocket protocol)"
                )
                return
            try:
                await self.handle(connection, frame)
            except TandemError as error:
                log.info("closing a connection to %s: %s", self.notebook_id, error.message)
                connection.close(error.close_code, error.message)
                return

    def set_role(self, username: str, role: Role | None) -> None:
        """Apply a membership change to the open connections of `username`, at once."""
        for connection in list(self.connections):
            if connection.username != username:
                continue
            if role is None:
                connection.close(
                    CloseCode.ACCESS_REMOVED, "your access to this notebook was removed"
                )
            else:
                connection.role = role

    def reconnect(self, username: str) -> None:
        """Close the connections of `username` (1012): each reconnects with the credential
        it holds, so one whose session ended is refused and the others carry on."""
        for connection in list(self.connections):
            if connection.username == username:
                connection.close(CloseCode.RESTARTING, "your sign-ins changed; reconnect")

    def people(self) -> list[dict[str, Any]]:
        """Who is here now, by the server's own view of the sockets: one entry a person."""
        here: dict[str, dict[str, Any]] = {}
        for connection in self.connections:
            if connection.closing:
                continue
            entry = here.setdefault(
                connection.username,
                {
                    "username": connection.username,
                    "role": connection.role.value,
                    "guest": connection.guest,
                    "connections": 0,
                },
            )
            entry["connections"] += 1
        return sorted(here.values(), key=lambda entry: str(entry["username"]))

    def close_all(self, code: int, reason: str) -> None:
        for connection in list(self.connections):
            connection.close(code, reason)

    # --- messages ------------------------------------------------------------------------

    async def handle(self, connection: Connection, frame: bytes) -> None:
        if len(frame) > self.limits.max_frame_bytes:
            raise FrameTooLarge("frame larger than the server accepts")
        message = protocol.parse_message(frame)
        if isinstance(message, protocol.SyncStep1):
            if self._unsaved_edits:
                await self._edits_saved.wait()
            connection.send(
                protocol.encode_sync(
                    YSyncMessageType.SYNC_STEP2, self._diff_for(message.state_vector)
                )
            )
        elif isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
            await self._write(connection, message.update)
        elif isinstance(message, protocol.AwarenessUpdate):
            self._update_presence(connection, message.payload)
        elif isinstance(message, protocol.QueryAwareness) and self.presence:
            connection.send(self._presence_message(list(self.presence)))
        # Auth messages from a client carry nothing the server acts on.

    def _diff_for(self, state_vector: bytes) -> bytes:
        try:
            return self.doc.get_update(state_vector)
        except Exception:
            raise ProtocolError("malformed state vector") from None

    async def _write(self, connection: Connection, update: bytes) -> None:
        if update == protocol.EMPTY_UPDATE:
            return
        if not connection.role.can_edit:
            if changes_nothing(update, self.doc):
                # A reader's client re-sending what the server already has (its sync step 2
                # after a reconnect carries the whole delete set): nothing to refuse.
                return
            connection.send(
                protocol.encode_permission_denied(
                    f"{connection.role.value}s cannot edit this notebook"
                )
            )
            return
        try:
            get_state(update)
        except Exception:
            raise InvalidUpdate("the update could not be decoded") from None
        verdict = await self.guard.check(update)
        if isinstance(verdict, Refused):
            # Like a reader's write: dropped, said why, nothing stored. The client keeps the
            # change (and what builds on it) until it reloads.
            connection.send(protocol.encode_permission_denied(verdict.reason))
            return
        message = protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update)
        try:
            await self.update_log.append(
                self.notebook_id, update, lambda seq: self._apply(update, message, seq, verdict)
            )
        except Exception:
            # Not stored, so not applied: the client still has the edit and resends it
            # when it reconnects and syncs.
            self.guard.lost(verdict)
            raise TandemError("could not save the change; reconnect to retry") from None

    def _apply(self, update: bytes, message: bytes, seq: int, accepted: Accepted) -> None:
        watch = self.on_cells_removed
        cells = self._cells if watch is not None else None
        before = len(cells) if cells is not None else 0
        try:
            self.doc.apply_update(update)
        except Exception:
            # The shadow applied it; the room's Doc should too. Stored, so the log replays it.
            log.warning("notebook %s: update %d could not be applied", self.notebook_id, seq)
            self.guard.lost(accepted)
            return
        self.guard.landed(accepted)
        self.last_seq = seq
        if watch is not None and cells is not None and len(cells) < before:
            watch(self, seq, before, len(cells))
        if self._state_waiters:
            self._wake_state_waiters()
        for connection in self.connections:
            connection.send_update(update, message)
        self._count_for_compaction(update)

    def _count_for_compaction(self, update: bytes) -> None:
        self._since_snapshot_count += 1
        self._since_snapshot_bytes += len(update)
        if (
            self._since_snapshot_count >= self.limits.compact_after_updates
            or self._since_snapshot_bytes >= self.limits.compact_after_bytes
        ):
            self.start_compaction()

    async def holds(self, wanted: dict[int, int]) -> None:
        """Return once the Doc holds everything a replica at state vector `wanted` holds
        (say, a browser asking to run what it sees). Callers bound the wait."""
        if protocol.state_vector_covers(protocol.read_state_vector(self.doc.get_state()), wanted):
            return
        waiter = (wanted, asyncio.get_running_loop().create_future())
        self._state_waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            self._state_waiters.remove(waiter)

    def _wake_state_waiters(self) -> None:
        have = protocol.read_state_vector(self.doc.get_state())
        for wanted, future in self._state_waiters:
            if not future.done() and protocol.state_vector_covers(have, wanted):
                future.set_result(None)

    # --- the server's own edits ---------------------------------------------------------

    async def edit(self, change: Callable[[Doc[Any]], None]) -> None:
        """Change the document on the server's behalf, in one transaction, and return once
        the change is stored and on its way to everyone."""
        await self.start_edit(change)

    def start_edit(self, change: Callable[[Doc[Any]], None]) -> asyncio.Future[None]:
        """Make the change in the Doc now and start storing it; the future resolves when it
        is stored and sent. Edits are stored and sent in the order they were started."""
        captured: list[bytes] = []
        subscription = self.doc.observe(lambda event: captured.append(event.update))
        try:
            with self.doc.transaction(origin="tandem-server"):
                change(self.doc)
        finally:
            self.doc.unobserve(subscription)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        update = merge_updates(*captured) if len(captured) > 1 else b"".join(captured)
        if not update or update == protocol.EMPTY_UPDATE:
            done.set_result(None)
            return done
        self.guard.server_edit(update)
        message = protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update)
        self._unsaved_edits += 1
        self._edits_saved.clear()
        stored = self.update_log.append(
            self.notebook_id, update, lambda seq: self._edit_saved(update, message, seq)
        )
        stored.add_done_callback(lambda future: self._edit_stored(future, done))
        return done

    def _edit_stored(self, stored: asyncio.Future[int], done: asyncio.Future[None]) -> None:
        error = stored.exception() if not stored.cancelled() else None
        if stored.cancelled() or error is not None:
            # The Doc has the change but the log does not: the next snapshot stores it, and
            # clients get it when they next sync.
            log.error("notebook %s: a server edit could not be stored", self.notebook_id)
            self._since_snapshot_count += 1
            self._edit_done()
        if not done.done():
            if error is not None:
                done.set_exception(TandemError("could not save the change"))
            else:
                done.set_result(None)

    def _edit_saved(self, update: bytes, message: bytes, seq: int) -> None:
        self.last_seq = seq
        for connection in self.connections:
            connection.send_update(update, message)
        self._count_for_compaction(update)
        self._edit_done()

    def _edit_done(self) -> None:
        self._unsaved_edits -= 1
        if self._unsaved_edits == 0:
            self._edits_saved.set()

    # --- presence (awareness) ----------------------------------------------------------

    def _update_presence(self, connection: Connection, payload: bytes) -> None:
        accepted = []
        user = {"name": connection.username}
        for entry in protocol.parse_awareness_update(payload):
            current = self.presence.get(entry.client_id)
            if current is not None and current.owner.username != connection.username:
                continue  # nobody speaks for someone else's client
            if (
                entry.client_id not in connection.client_ids
                and len(connection.client_ids) >= MAX_CLIENT_IDS_PER_CONNECTION
            ):
                continue  # a socket is one editor; it cannot fill the room with phantoms
            if entry.is_removal:
                self.presence.pop(entry.client_id, None)
                connection.client_ids.discard(entry.client_id)
                accepted.append(entry)
                continue
            if len(entry.state) > self.limits.max_awareness_bytes:
                continue
            stamped = protocol.stamp_user(entry.state, user)
            if stamped is None:
                continue
            if current is not None and current.owner is not connection:
                current.owner.client_ids.discard(entry.client_id)
            self.presence[entry.client_id] = _Presence(entry.clock, stamped, connection)
            connection.client_ids.add(entry.client_id)
            accepted.append(protocol.AwarenessEntry(entry.client_id, entry.clock, stamped))
        if accepted:
            self._broadcast(protocol.encode_awareness_message(accepted))

    def _presence_message(self, client_ids: list[int]) -> bytes:
        entries = [
            protocol.AwarenessEntry(cid, self.presence[cid].clock, self.presence[cid].state)
            for cid in client_ids
        ]
        return protocol.encode_awareness_message(entries)

    def _forget_presence(self, connection: Connection) -> None:
        gone = []
        for client_id in connection.client_ids:
            current = self.presence.get(client_id)
            if current is not None and current.owner is connection:
                del self.presence[client_id]
                gone.append(protocol.AwarenessEntry(client_id, current.clock + 1, "null"))
        connection.client_ids.clear()
        if gone:
            self._broadcast(protocol.encode_awareness_message(gone))

    def _broadcast(self, message: bytes) -> None:
        for connection in self.connections:
            connection.send(message)

    # --- compaction ----------------------------------------------------------------------

    @property
    def has_uncompacted_updates(self) -> bool:
        return self._since_snapshot_count > 0

    def start_compaction(self) -> asyncio.Task[None] | None:
        if self._compaction is not None and not self._compaction.done():
            return self._compaction
        if not self.has_uncompacted_updates:
            return None
        # State and seq are read together, with no await between: the snapshot holds
        # exactly the updates up to `upto`; later ones stay in the log. (Updates the Doc
        # holds back are recovered by the log from what it folds; see UpdateLog.compact.)
        state, state_vector, upto = self.doc.get_update(), self.doc.get_state(), self.last_seq
        count, size = self._since_snapshot_count, self._since_snapshot_bytes
        self._compaction = asyncio.create_task(
            self._compact(state, state_vector, upto, count, size)
        )
        return self._compaction

    async def _compact(
        self, state: bytes, state_vector: bytes, upto: int, count: int, size: int
    ) -> None:
        try:
            await self.update_log.compact(self.notebook_id, state, state_vector, upto)
        except Exception as error:
            log.error("compaction of %s failed: %s", self.notebook_id, type(error).__name__)
            return
        self._since_snapshot_count -= count
        self._since_snapshot_bytes -= size


def changes_nothing(update: bytes, doc: Doc[Any]) -> bool:
    """Whether applying `update` to `doc` would change nothing: no struct the doc lacks and
    no deletion it has not made already."""
    try:
        rest = get_update(update, doc.get_state())
        if rest[0] != 0:
            return False
        deletes, _ = protocol.read_delete_set(rest, 1)
        known, _ = protocol.read_delete_set(Snapshot.from_doc(doc).encode(), 0)
    except Exception:
        raise InvalidUpdate("the update could not be decoded") from None
    return protocol.delete_set_within(deletes, known)
