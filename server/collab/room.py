"""A Room is one open notebook: its pycrdt Doc, the people connected to it and their presence.

Every incoming update goes: role check -> decode check -> schema guard (tried on a shadow
Doc; see `guard`) -> update log (durable) -> apply to the Doc -> broadcast to every
connection, the sender's echo included. Nothing reaches a client before it is stored, so
anything anyone has seen survives a crash, and nothing is stored that breaks the notebook.

With several replicas (see `fanout`), each stored update is also published to the other
replicas holding the notebook, which apply and broadcast it (`apply_remote`); `heal` reads
from the log whatever a replica may have missed. `seen` holds the seqs of the updates the
Doc holds since its snapshot, so a heal reads only the others and a compaction folds
only these (with several writers a lower seq may commit later; see `update_log`).

The server edits the document itself too (kernel outputs, execution state) with `edit`:
the change is made in the Doc, stored, and only then sent; while such a change is not yet
stored, answers to sync requests wait, so no client is handed it early. A runtime's edit
carries its lease epoch (`fence`); one the log refuses (another replica owns the runtime
now) must not survive in the Doc, so the room is discarded (`discard`): its clients
reconnect and the next use reads the notebook from the log again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Snapshot, YSyncMessageType, get_state, get_update, merge_updates

from server import protocol
from server.collab.fanout import Fanout
from server.collab.guard import Accepted, Refused, SchemaGuard
from server.collab.transport import Disconnected, TextFrame, Transport
from server.collab.update_log import UpdateLog
from server.errors import (
    CloseCode,
    FencedOut,
    FrameTooLarge,
    InvalidUpdate,
    ProtocolError,
    TandemError,
)
from server.sockets import Outbox
from server.vocabulary import Role

log = logging.getLogger(__name__)


# One y-websocket connection carries one Y.Doc, hence one awareness client id; a few more
# allow for a client that recreates its document without reconnecting.
MAX_CLIENT_IDS_PER_CONNECTION = 8
# y-protocols' clients drop a peer's state they have not heard of for 30 s (they renew
# theirs every 15 s); presence from other replicas is forgotten after as long.
REMOTE_PRESENCE_SECONDS = 30.0


@dataclass(frozen=True)
class RoomLimits:
    max_frame_bytes: int = 16 * 1024 * 1024
    max_awareness_bytes: int = 64 * 1024
    compact_after_updates: int = 2000
    compact_after_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class _Update:
    """A document update waiting to go out; consecutive ones are merged into one frame."""

    update: bytes
    message: bytes


class Connection:
    """One client's websocket in a room: who it is, what it may do, what waits to be sent.

    Sending never blocks the room: messages wait in the connection's `Outbox`. When a client
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
        self.outbox: Outbox[bytes | _Update] = Outbox(
            self._write, transport.close, queue_size, take=_take_merged
        )

    @property
    def closing(self) -> bool:
        return self.outbox.closing

    def send(self, message: bytes) -> None:
        self.outbox.send(message)

    def close(self, code: int, reason: str) -> None:
        self.outbox.close(code, reason)

    async def _write(self, item: bytes | _Update) -> None:
        await self.transport.send(item.message if isinstance(item, _Update) else item)


def _take_merged(waiting: deque[bytes | _Update]) -> bytes | _Update:
    """The next message; a run of document updates waiting together becomes one."""
    first = waiting.popleft()
    if not isinstance(first, _Update) or not waiting or not isinstance(waiting[0], _Update):
        return first
    updates = [first.update]
    while waiting and isinstance(waiting[0], _Update):
        following = waiting.popleft()
        assert isinstance(following, _Update)
        updates.append(following.update)
    return protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, merge_updates(*updates))


@dataclass
class _Presence:
    clock: int
    state: str
    owner: Connection


@dataclass
class _RemotePresence:
    clock: int
    state: str
    heard: float


@dataclass
class Room:
    notebook_id: str
    doc: Doc[Any]
    update_log: UpdateLog
    limits: RoomLimits
    last_seq: int = 0
    connections: set[Connection] = field(default_factory=set)
    presence: dict[int, _Presence] = field(default_factory=dict)
    fanout: Fanout = field(default_factory=Fanout)
    # The seqs of the stored updates the Doc holds, besides its snapshot (see the module).
    seen: set[int] = field(default_factory=set)
    # The `upto_seq` of the stored snapshot the Doc holds (or wrote).
    snapshot_seq: int = 0
    # Awareness states of clients connected to other replicas.
    remote_presence: dict[int, _RemotePresence] = field(default_factory=dict)
    _since_snapshot_count: int = 0
    _since_snapshot_bytes: int = 0
    _compaction: asyncio.Task[None] | None = None
    _unsaved_edits: int = 0
    _edits_saved: asyncio.Event = field(default_factory=asyncio.Event)
    # Told when an update left fewer cells than before: (room, seq, before, after).
    on_cells_removed: Callable[[Room, int, int, int], None] | None = None
    # Told once when the room must be dropped (see `discard`).
    on_discard: Callable[[Room], None] | None = None
    discarded: bool = False
    # Fenced edits (a runtime's) applied to the Doc and not yet stored or refused: no
    # snapshot is taken meanwhile, since it would store them whatever the log decides.
    _fenced_unsaved: int = 0
    _compact_when_settled: bool = False
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
        sender = connection.outbox.start()
        reader = asyncio.create_task(self._read(connection))
        try:
            connection.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP1, self.doc.get_state()))
            if self.presence or self.remote_presence:
                connection.send(self._presence_message())
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connections.discard(connection)
            self._forget_presence(connection)
            # Give a requested close (or the last messages) a moment to go out.
            stopping = connection.outbox.stop(1.0, CloseCode.NORMAL, "")
            stopped = await asyncio.gather(stopping, return_exceptions=True)
            reader.cancel()
            results = [*await asyncio.gather(reader, return_exceptions=True), *stopped]
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
        elif isinstance(message, protocol.QueryAwareness) and (
            self.presence or self.remote_presence
        ):
            connection.send(self._presence_message())
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
        self._stored(seq)
        if watch is not None and cells is not None and len(cells) < before:
            watch(self, seq, before, len(cells))
        if self._state_waiters:
            self._wake_state_waiters()
        self._broadcast_update(update, message)
        self.fanout.updated(self.notebook_id, seq, update)
        self._count_for_compaction(update)

    def _stored(self, seq: int) -> None:
        self.seen.add(seq)
        self.last_seq = max(self.last_seq, seq)

    # --- from other replicas ------------------------------------------------------------

    def apply_remote(self, seq: int, update: bytes) -> None:
        """An update another replica stored (published, or read back by `heal`): apply and
        broadcast it unless the Doc has it already. Its own replica ran the checks and the
        hooks (comment threads on deleted cells) when it was written."""
        if seq in self.seen:
            return
        self._stored(seq)
        self.guard.server_edit(update)
        try:
            self.doc.apply_update(update)
        except Exception:
            log.warning("notebook %s: stored update %d could not be applied", self.notebook_id, seq)
            return
        self._send_stored(update, protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))

    def _send_stored(self, update: bytes, message: bytes) -> None:
        if self._state_waiters:
            self._wake_state_waiters()
        self._broadcast_update(update, message)
        self._count_for_compaction(update)

    def _apply_snapshot(self, update: bytes) -> None:
        """Another replica's snapshot: what it adds goes out (not the whole document)."""
        self.guard.server_edit(update)
        captured: list[bytes] = []
        subscription = self.doc.observe(lambda event: captured.append(event.update))
        try:
            self.doc.apply_update(update)
        except Exception:
            log.warning("notebook %s: a stored update could not be applied", self.notebook_id)
            return
        finally:
            self.doc.unobserve(subscription)
        if not captured:
            return  # the Doc had it all, or keeps it aside for a missing predecessor
        change = merge_updates(*captured) if len(captured) > 1 else captured[0]
        self._send_stored(change, protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, change))

    async def heal(self) -> None:
        """Read from the log what this replica may have missed (the fan-out was away, or a
        message lost) and apply it: Yjs merges are idempotent, so whatever the Doc holds
        already changes nothing."""
        stored = await self.update_log.load_missing(
            self.notebook_id, self.snapshot_seq, frozenset(self.seen)
        )
        if stored.snapshot is not None:
            # Another replica compacted: its snapshot holds updates whose rows are gone.
            self._apply_snapshot(stored.snapshot)
            self.snapshot_seq = stored.upto_seq
        for seq, update in stored.updates:
            self.apply_remote(seq, update)

    def remote_presence_message(self, frame: bytes) -> None:
        """An awareness message another replica accepted from its clients."""
        message = protocol.parse_message(frame)
        if not isinstance(message, protocol.AwarenessUpdate):
            return
        now = time.monotonic()
        for entry in protocol.parse_awareness_update(message.payload):
            if entry.client_id in self.presence:
                continue  # a client of ours: its own socket speaks for it
            if entry.is_removal:
                self.remote_presence.pop(entry.client_id, None)
            else:
                self.remote_presence[entry.client_id] = _RemotePresence(
                    entry.clock, entry.state, now
                )
        self._broadcast(frame)

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

    def start_edit(
        self, change: Callable[[Doc[Any]], None], *, fence: int | None = None
    ) -> asyncio.Future[None]:
        """Make the change in the Doc now and start storing it; the future resolves when it
        is stored and sent. Edits are stored and sent in the order they were started. A
        runtime's edit names its lease epoch (`fence`): if the log refuses it, the future
        fails with `FencedOut` and the room is discarded."""
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
        if fence is not None:
            self._fenced_unsaved += 1
        stored = self.update_log.append(
            self.notebook_id,
            update,
            lambda seq: self._edit_saved(update, message, seq),
            fence=fence,
        )
        stored.add_done_callback(lambda future: self._edit_stored(future, done, fence))
        return done

    def _edit_stored(
        self, stored: asyncio.Future[int], done: asyncio.Future[None], fence: int | None
    ) -> None:
        error = stored.exception() if not stored.cancelled() else None
        if fence is not None:
            self._fenced_unsaved -= 1
        if isinstance(error, FencedOut):
            # Refused for good: the Doc must not keep it (nor the next snapshot store it).
            log.warning("notebook %s: a runtime edit was fenced out", self.notebook_id)
            self._edit_done()
            self.discard()
            if not done.done():
                done.set_exception(error)
            return
        if fence is not None and not self._fenced_unsaved and self._compact_when_settled:
            self._compact_when_settled = False
            self.start_compaction()
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
        self._stored(seq)
        self._broadcast_update(update, message)
        self.fanout.updated(self.notebook_id, seq, update)
        self._count_for_compaction(update)
        self._edit_done()

    def _edit_done(self) -> None:
        self._unsaved_edits -= 1
        if self._unsaved_edits == 0:
            self._edits_saved.set()

    @property
    def settled(self) -> bool:
        """Whether every runtime edit in the Doc is stored: what it holds may be kept
        (a snapshot, a checkpoint) without keeping one the log may yet refuse."""
        return not self._fenced_unsaved and not self.discarded

    def discard(self) -> None:
        """This Doc holds an edit the log refused: it must not be served, snapshotted or
        kept. Its clients reconnect (1012) and resync from a room read from the log anew;
        the runtime that made the edit is told by the edit's future."""
        if self.discarded:
            return
        self.discarded = True
        self.close_all(CloseCode.RESTARTING, "the notebook was reloaded on the server; reconnect")
        if self.on_discard is not None:
            self.on_discard(self)

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
            self._share_presence(protocol.encode_awareness_message(accepted))

    def _share_presence(self, message: bytes) -> None:
        self._broadcast(message)
        self.fanout.presence(self.notebook_id, message)

    def local_presence_message(self) -> bytes | None:
        """Every state this replica's clients published (for a replica that asks)."""
        if not self.presence:
            return None
        entries = [
            protocol.AwarenessEntry(cid, presence.clock, presence.state)
            for cid, presence in self.presence.items()
        ]
        return protocol.encode_awareness_message(entries)

    def _presence_message(self) -> bytes:
        entries = [
            protocol.AwarenessEntry(cid, presence.clock, presence.state)
            for cid, presence in self.presence.items()
        ]
        horizon = time.monotonic() - REMOTE_PRESENCE_SECONDS
        for cid, remote in list(self.remote_presence.items()):
            if remote.heard < horizon:
                del self.remote_presence[cid]
            elif cid not in self.presence:
                entries.append(protocol.AwarenessEntry(cid, remote.clock, remote.state))
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
            self._share_presence(protocol.encode_awareness_message(gone))

    def _broadcast(self, message: bytes) -> None:
        for connection in self.connections:
            connection.send(message)

    def _broadcast_update(self, update: bytes, message: bytes) -> None:
        # One frame for everyone: the same bytes go to every socket, encoded once.
        waiting = _Update(update, message)
        for connection in self.connections:
            connection.outbox.send(waiting)

    # --- compaction ----------------------------------------------------------------------

    @property
    def has_uncompacted_updates(self) -> bool:
        return self._since_snapshot_count > 0

    def start_compaction(self) -> asyncio.Task[None] | None:
        if self._compaction is not None and not self._compaction.done():
            return self._compaction
        if not self.has_uncompacted_updates or self.discarded:
            return None
        if not self.settled:
            # The Doc holds runtime edits the log may yet refuse (see `_fenced_unsaved`).
            self._compact_when_settled = True
            return None
        # State and seq are read together, with no await between: the snapshot holds
        # exactly the updates up to `upto`; later ones stay in the log. (Updates the Doc
        # holds back are recovered by the log from what it folds; see UpdateLog.compact.)
        state, state_vector, upto = self.doc.get_update(), self.doc.get_state(), self.last_seq
        seqs = frozenset(self.seen)
        count, size = self._since_snapshot_count, self._since_snapshot_bytes
        self._compaction = asyncio.create_task(
            self._compact(state, state_vector, upto, seqs, count, size)
        )
        return self._compaction

    async def _compact(
        self,
        state: bytes,
        state_vector: bytes,
        upto: int,
        seqs: frozenset[int],
        count: int,
        size: int,
    ) -> None:
        try:
            written = await self.update_log.compact(
                self.notebook_id, state, state_vector, upto, seqs
            )
        except Exception as error:
            log.error("compaction of %s failed: %s", self.notebook_id, type(error).__name__)
            return
        self.seen -= seqs
        self.snapshot_seq = written
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
