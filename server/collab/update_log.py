"""The durable update log: every accepted document update, appended before anyone sees it.

`UpdateLog` states the contract; `SqlUpdateLog` keeps it in the database with group commit:
appends that arrive while a transaction is being written wait and go together in the next
one, so many typists cost one commit per batch, not one per keystroke. The writer inserts
through the driver itself on SQLite and psycopg (a prepared statement, no SQLAlchemy
compile and result machinery per batch), through SQLAlchemy Core on anything else.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Set
from dataclasses import dataclass
from typing import Any

from pycrdt import get_update, merge_updates
from sqlalchemy import Connection, Engine, delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.collab.batched_reads import BatchedReads
from server.collab.fences import fenced_out
from server.collab.models import Snapshot, UpdateRecord
from server.errors import FencedOut
from server.timeutil import utcnow

log = logging.getLogger(__name__)

Durable = Callable[[int], None]

# The PostgreSQL advisory lock a notebook's compaction holds: its first key is fixed
# (0x54434D50, "TCMP"), the second hashes the notebook id.
_LOCK_COMPACTION = text(
    "SELECT pg_advisory_xact_lock(CAST(x'54434D50' AS integer), hashtext(:notebook))"
)


@dataclass(frozen=True)
class StoredDocument:
    snapshot: bytes | None
    upto_seq: int
    updates: list[tuple[int, bytes]]


class UpdateLog(ABC):
    """Where a notebook's updates live. Contract:

    - `append` calls `on_durable(seq)` once the update is committed, on the event loop, in
      commit order (seq increases), before the returned future resolves. Callers apply and
      broadcast inside `on_durable`, so nothing is seen that is not stored.
    - `compact(notebook_id, state, state_vector, upto_seq, seqs)` replaces the snapshot and
      drops the updates numbered in `seqs` (those `state` holds; all with seq <= upto_seq
      when `seqs` is None), atomically; other updates are untouched. The new snapshot is
      `state` plus whatever the old snapshot or the dropped updates hold that
      `state_vector` does not cover: a Doc keeps updates that wait for a missing
      predecessor aside and leaves them out of `get_update()`, and they must not vanish;
      and another replica's compaction may have folded into the old snapshot updates this
      one never saw. Returns the new snapshot's `upto_seq`.
    - `load` returns the snapshot and every update not folded into it, in seq order.
    - `load_missing` returns what a replica holding the snapshot numbered `snapshot_seq`
      and the updates `seen` lacks: the snapshot if it is another one now, and the updates
      not in `seen`.
    - `append(..., fence=epoch)`, a runtime's write, is stored only while the notebook's
      runtime fence (see `fences`) is not above `epoch`, checked in the transaction that
      stores it; refused, it is not stored, `on_durable` is not called and the future
      fails with `FencedOut`. Writes without a fence are never checked.

    With several writers (replicas on one PostgreSQL) seq order is not commit order: a row
    numbered 100 may commit after row 101 is read. So nothing here reads "seq > the last
    one seen"; loads read every row not folded, and compaction drops only rows it folded.
    """

    async def start(self) -> None:  # noqa: B027  (optional hook)
        pass

    async def stop(self) -> None:  # noqa: B027  (optional hook)
        pass

    @abstractmethod
    def append(
        self, notebook_id: str, update: bytes, on_durable: Durable, *, fence: int | None = None
    ) -> asyncio.Future[int]: ...

    @abstractmethod
    async def load(self, notebook_id: str) -> StoredDocument: ...

    @abstractmethod
    async def compact(
        self,
        notebook_id: str,
        state: bytes,
        state_vector: bytes,
        upto_seq: int,
        seqs: Collection[int] | None = None,
    ) -> int: ...

    async def load_missing(
        self, notebook_id: str, snapshot_seq: int, seen: Set[int]
    ) -> StoredDocument:
        stored = await self.load(notebook_id)
        return StoredDocument(
            stored.snapshot if stored.upto_seq != snapshot_seq else None,
            stored.upto_seq,
            [(seq, update) for seq, update in stored.updates if seq not in seen],
        )


@dataclass
class _Pending:
    notebook_id: str
    update: bytes
    on_durable: Durable
    future: asyncio.Future[int]
    fence: int | None = None  # a runtime's lease epoch (see `fences`)


_STOP = object()


class SqlUpdateLog(UpdateLog):
    """Appends go to one writer thread that owns one connection: it takes whatever has
    queued up while the previous transaction was committing and writes it as the next one,
    then hands the results back to the event loop in commit order."""

    def __init__(self, engine: Engine, max_batch: int = 1024) -> None:
        self._engine = engine
        self._reads = BatchedReads(self._load_many)
        # The writer's driver-level insert, chosen once (None: SQLAlchemy Core).
        self._insert_rows = _DRIVER_INSERTS.get((engine.dialect.name, engine.dialect.driver))
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._closing = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._write_loop, name="update-log", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Commit everything already appended, then stop."""
        if self._closing or self._stopped is None:
            return
        self._closing = True
        self._queue.put(_STOP)
        await self._stopped.wait()

    def append(
        self, notebook_id: str, update: bytes, on_durable: Durable, *, fence: int | None = None
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._closing or self._thread is None:
            future.set_exception(RuntimeError("the update log is not accepting writes"))
            return future
        self._queue.put(_Pending(notebook_id, update, on_durable, future, fence))
        return future

    def _write_loop(self) -> None:
        assert self._loop is not None and self._stopped is not None
        connection: Connection | None = None
        stopping = False
        try:
            while not stopping:
                batch, stopping = self._next_batch()
                if not batch:
                    continue
                try:
                    if connection is None:
                        connection = self._engine.connect()
                    stored, seqs, refused = self._store(connection, batch)
                except Exception as error:
                    # Drop the connection (it may be broken); the next batch opens another.
                    if connection is not None:
                        connection.close()
                        connection = None
                    self._loop.call_soon_threadsafe(self._failed, batch, error)
                else:
                    self._loop.call_soon_threadsafe(self._committed, stored, seqs)
                    if refused:
                        self._loop.call_soon_threadsafe(self._fenced, refused)
        finally:
            if connection is not None:
                connection.close()
            self._loop.call_soon_threadsafe(self._stopped.set)

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Block for one append, then take whatever else is already waiting."""
        batch: list[_Pending] = []
        item = self._queue.get()
        while True:
            if item is _STOP:
                return batch, True
            assert isinstance(item, _Pending)
            batch.append(item)
            if len(batch) >= self._max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _store(
        self, connection: Connection, batch: list[_Pending]
    ) -> tuple[list[_Pending], list[int], list[_Pending]]:
        """Store the batch; returns the stored appends, their seqs, and the refused ones.
        A batch holding a runtime's writes (rare: outputs flush every 50 ms) checks their
        fences and inserts the others in one SQLAlchemy transaction; any other batch (all
        of the clients') takes `_insert`, without a fence query."""
        if all(pending.fence is None for pending in batch):
            return batch, self._insert(connection, batch), []
        with connection.begin():
            refused = fenced_out(connection, batch)
            kept = [p for i, p in enumerate(batch) if i not in refused]
            seqs = _insert_rows_core(connection, kept) if kept else []
        return kept, seqs, [batch[i] for i in sorted(refused)]

    def _insert(self, connection: Connection, batch: list[_Pending]) -> list[int]:
        """Insert the batch in one transaction; its seqs, in the batch's order."""
        insert_rows = self._insert_rows
        if insert_rows is None:
            return _insert_core(connection, batch)
        driver: Any = connection.connection.driver_connection
        try:
            seqs = insert_rows(driver, batch)
            driver.commit()
        except BaseException:
            # Closed, not rolled back: the connection may be gone (a rollback would fail and
            # the pool log it); closing it drops the transaction, the next batch opens another.
            connection.invalidate()
            raise
        return seqs

    @staticmethod
    def _committed(batch: list[_Pending], seqs: list[int]) -> None:
        for pending, seq in zip(batch, seqs, strict=True):
            try:
                pending.on_durable(seq)
            except Exception:
                log.exception("applying a committed update failed (seq %d)", seq)
            if not pending.future.done():
                pending.future.set_result(seq)

    @staticmethod
    def _fenced(refused: list[_Pending]) -> None:
        for pending in refused:
            if not pending.future.done():
                pending.future.set_exception(
                    FencedOut("another replica runs this notebook's kernel now")
                )

    @staticmethod
    def _failed(batch: list[_Pending], error: Exception) -> None:
        log.error("could not commit %d updates: %s", len(batch), type(error).__name__)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    async def load(self, notebook_id: str) -> StoredDocument:
        # Rooms opening together are read together: one hop, two queries for up to 64.
        return await self._reads.get(notebook_id)

    def _load_many(self, notebook_ids: list[str]) -> dict[str, StoredDocument]:
        snapshots = Snapshot.__table__  # type: ignore[attr-defined]
        updates = UpdateRecord.__table__  # type: ignore[attr-defined]
        found: dict[str, tuple[bytes | None, int]] = dict.fromkeys(notebook_ids, (None, 0))
        tails: dict[str, list[tuple[int, bytes]]] = {notebook_id: [] for notebook_id in found}
        with self._engine.connect() as connection:
            for notebook_id, data, upto in connection.execute(
                select(snapshots.c.notebook_id, snapshots.c.data, snapshots.c.upto_seq).where(
                    snapshots.c.notebook_id.in_(notebook_ids)
                )
            ):
                found[notebook_id] = (bytes(data), int(upto))
            # Every row left, not only those above `upto`: a row numbered below it that
            # committed after the compaction read the log was not folded (see the class).
            for notebook_id, seq, data in connection.execute(
                select(updates.c.notebook_id, updates.c.seq, updates.c.data)
                .where(updates.c.notebook_id.in_(notebook_ids))
                .order_by(updates.c.seq)
            ):
                tails[notebook_id].append((int(seq), bytes(data)))
        return {key: StoredDocument(*found[key], tails[key]) for key in notebook_ids}

    async def load_missing(
        self, notebook_id: str, snapshot_seq: int, seen: Set[int]
    ) -> StoredDocument:
        return await asyncio.to_thread(self._load_missing, notebook_id, snapshot_seq, seen)

    def _load_missing(self, notebook_id: str, snapshot_seq: int, seen: Set[int]) -> StoredDocument:
        snapshots = Snapshot.__table__  # type: ignore[attr-defined]
        updates = UpdateRecord.__table__  # type: ignore[attr-defined]
        with self._engine.connect() as connection:
            upto = connection.execute(
                select(snapshots.c.upto_seq).where(snapshots.c.notebook_id == notebook_id)
            ).scalar()
            upto = int(upto) if upto is not None else 0
            snapshot = None
            if upto != snapshot_seq:
                snapshot = connection.execute(
                    select(snapshots.c.data).where(snapshots.c.notebook_id == notebook_id)
                ).scalar()
            # The numbers first (cheap), then the data of the rows this replica lacks.
            present = connection.execute(
                select(updates.c.seq).where(updates.c.notebook_id == notebook_id)
            ).scalars()
            missing = sorted(seq for seq in map(int, present) if seq not in seen)
            rows: list[tuple[int, bytes]] = []
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                rows += [
                    (int(seq), bytes(data))
                    for seq, data in connection.execute(
                        select(updates.c.seq, updates.c.data)
                        .where(updates.c.notebook_id == notebook_id, updates.c.seq.in_(chunk))
                        .order_by(updates.c.seq)
                    ).all()
                ]
        return StoredDocument(bytes(snapshot) if snapshot is not None else None, upto, rows)

    async def compact(
        self,
        notebook_id: str,
        state: bytes,
        state_vector: bytes,
        upto_seq: int,
        seqs: Collection[int] | None = None,
    ) -> int:
        return await asyncio.to_thread(
            self._compact, notebook_id, state, state_vector, upto_seq, seqs
        )

    def _compact(
        self,
        notebook_id: str,
        state: bytes,
        state_vector: bytes,
        upto_seq: int,
        seqs: Collection[int] | None,
    ) -> int:
        snapshots = Snapshot.__table__  # type: ignore[attr-defined]
        updates = UpdateRecord.__table__  # type: ignore[attr-defined]
        postgres = self._engine.dialect.name == "postgresql"
        with self._engine.begin() as connection:
            if postgres:
                # One compaction of a notebook at a time, whichever process runs it: the
                # next one reads the snapshot this one writes, not the one before.
                connection.execute(_LOCK_COMPACTION, {"notebook": notebook_id})
            old = connection.execute(
                select(snapshots.c.data, snapshots.c.upto_seq).where(
                    snapshots.c.notebook_id == notebook_id
                )
            ).first()
            # Exactly the rows deleted are folded, even if another writer commits one with
            # a lower seq between two statements here. On PostgreSQL another replica's rows
            # up to `upto_seq` may not be in `state` yet, so only the rows it holds go
            # (SQLite has one writer, whose rows up to `upto_seq` are all in `state`).
            chosen = (
                updates.c.seq <= upto_seq
                if seqs is None or not postgres
                else updates.c.seq.in_(sorted(seq for seq in seqs if seq <= upto_seq))
            )
            drop = (
                delete(updates)
                .where(updates.c.notebook_id == notebook_id, chosen)
                .returning(updates.c.data)
            )
            folded = connection.execute(drop).scalars().all()
            waiting = [
                rest
                for data in folded
                if (rest := not_integrated(bytes(data), state_vector)) is not None
            ]
            if old is not None:
                # Another replica's snapshot may hold updates (deletions too) this state
                # never saw: merged whole, since merging what the state has is a no-op.
                waiting.append(get_update(bytes(old[0]), state_vector))
                upto_seq = max(upto_seq, int(old[1]))
            values = {
                "notebook_id": notebook_id,
                "upto_seq": upto_seq,
                "data": merge_updates(state, *waiting) if waiting else state,
                "updated_at": utcnow(),
            }
            upsert = (pg_insert if postgres else sqlite_insert)(snapshots).values(**values)
            upsert = upsert.on_conflict_do_update(
                index_elements=[snapshots.c.notebook_id],
                set_={k: v for k, v in values.items() if k != "notebook_id"},
            )
            connection.execute(upsert)
        return upto_seq


# The writer's statements, straight to the driver (`SqlUpdateLog._insert` commits on the
# driver connection, or drops it; the SQLAlchemy Connection around it never begins one).
_SQLITE_INSERT = "INSERT INTO update_log (notebook_id, data) VALUES (?, ?)"
_PSYCOPG_INSERT = "INSERT INTO update_log (notebook_id, data) VALUES (%s, %s) RETURNING seq"


def _insert_sqlite(driver: Any, batch: list[_Pending]) -> list[int]:
    """One transaction for the batch; each row's seq is its rowid (`seq` is the INTEGER
    PRIMARY KEY), read without another statement."""
    cursor = driver.cursor()
    try:
        if not driver.in_transaction:
            # sqlite3 would open one at the first INSERT too, but not in autocommit mode.
            cursor.execute("BEGIN")
        seqs = []
        for pending in batch:
            cursor.execute(_SQLITE_INSERT, (pending.notebook_id, pending.update))
            seqs.append(int(cursor.lastrowid))
    finally:
        cursor.close()
    return seqs


def _insert_psycopg(driver: Any, batch: list[_Pending]) -> list[int]:
    """One round trip for the batch: psycopg pipelines `executemany` and keeps one result
    set per row, in the rows' order (a round trip per row costs 10x on PostgreSQL)."""
    with driver.cursor() as cursor:
        if len(batch) == 1:
            cursor.execute(_PSYCOPG_INSERT, (batch[0].notebook_id, batch[0].update))
            seqs = [int(cursor.fetchone()[0])]
        else:
            rows = [(pending.notebook_id, pending.update) for pending in batch]
            cursor.executemany(_PSYCOPG_INSERT, rows, returning=True)
            seqs = [int(cursor.fetchone()[0])]
            while cursor.nextset():
                seqs.append(int(cursor.fetchone()[0]))
    return seqs


_DRIVER_INSERTS: dict[tuple[str, str], Callable[[Any, list[_Pending]], list[int]]] = {
    ("sqlite", "pysqlite"): _insert_sqlite,
    ("postgresql", "psycopg"): _insert_psycopg,
}


def _insert_core(connection: Connection, batch: list[_Pending]) -> list[int]:
    """Any other database: one statement for the batch, its seqs in the batch's order."""
    with connection.begin():
        return _insert_rows_core(connection, batch)


def _insert_rows_core(connection: Connection, batch: list[_Pending]) -> list[int]:
    """The batch in one statement, in the caller's transaction; its seqs, in order."""
    table = UpdateRecord.__table__  # type: ignore[attr-defined]
    statement = insert(table).returning(table.c.seq, sort_by_parameter_order=True)
    rows = [{"notebook_id": p.notebook_id, "data": p.update} for p in batch]
    return [int(seq) for seq in connection.execute(statement, rows).scalars()]


def not_integrated(update: bytes, state_vector: bytes) -> bytes | None:
    """The structs of `update` that a document at `state_vector` does not have, or None.

    An update's encoding starts with the number of clients that have structs, so a diff
    starting with 0 holds none. (Deletes of items not yet known are not detected.)
    """
    rest = get_update(update, state_vector)
    return None if rest[0] == 0 else rest
