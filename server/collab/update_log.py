"""The durable update log: every accepted document update, appended before anyone sees it.

`UpdateLog` states the contract; `SqlUpdateLog` keeps it in the database with group commit:
appends that arrive while a transaction is being written wait and go together in the next
one, so many typists cost one commit per batch, not one per keystroke.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.collab.models import Snapshot, UpdateRecord
from server.timeutil import utcnow

log = logging.getLogger(__name__)

Durable = Callable[[int], None]


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
    - `compact(notebook_id, state, upto_seq)` stores `state` as the snapshot and drops the
      updates with seq <= upto_seq, atomically; later updates are untouched.
    - `load` returns the snapshot and every update after it, in order.
    """

    async def start(self) -> None:  # noqa: B027  (optional hook)
        pass

    async def stop(self) -> None:  # noqa: B027  (optional hook)
        pass

    @abstractmethod
    def append(
        self, notebook_id: str, update: bytes, on_durable: Durable
    ) -> asyncio.Future[int]: ...

    @abstractmethod
    async def load(self, notebook_id: str) -> StoredDocument: ...

    @abstractmethod
    async def compact(self, notebook_id: str, state: bytes, upto_seq: int) -> None: ...


@dataclass
class _Pending:
    notebook_id: str
    update: bytes
    on_durable: Durable
    future: asyncio.Future[int]


class SqlUpdateLog(UpdateLog):
    def __init__(self, engine: Engine, max_batch: int = 1024) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="update-log-writer")

    async def stop(self) -> None:
        """Commit everything already appended, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer

    def append(self, notebook_id: str, update: bytes, on_durable: Durable) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._closing or self._writer is None:
            future.set_exception(RuntimeError("the update log is not accepting writes"))
            return future
        self._pending.append(_Pending(notebook_id, update, on_durable, future))
        self._wakeup.set()
        return future

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
            if self._closing:
                return

    async def _commit(self, batch: list[_Pending]) -> None:
        rows = [(p.notebook_id, p.update) for p in batch]
        try:
            seqs = await asyncio.to_thread(self._insert, rows)
        except Exception as error:
            log.error("could not commit %d updates: %s", len(batch), type(error).__name__)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        for pending, seq in zip(batch, seqs, strict=True):
            try:
                pending.on_durable(seq)
            except Exception:
                log.exception("applying a committed update failed (seq %d)", seq)
            if not pending.future.done():
                pending.future.set_result(seq)

    def _insert(self, rows: list[tuple[str, bytes]]) -> list[int]:
        table = UpdateRecord.__table__  # type: ignore[attr-defined]
        statement = insert(table).returning(table.c.seq)
        seqs = []
        with self._engine.begin() as connection:
            for notebook_id, update in rows:
                result = connection.execute(statement, {"notebook_id": notebook_id, "data": update})
                seqs.append(int(result.scalar_one()))
        return seqs

    async def load(self, notebook_id: str) -> StoredDocument:
        return await asyncio.to_thread(self._load, notebook_id)

    def _load(self, notebook_id: str) -> StoredDocument:
        snapshots = Snapshot.__table__  # type: ignore[attr-defined]
        updates = UpdateRecord.__table__  # type: ignore[attr-defined]
        with self._engine.connect() as connection:
            row = connection.execute(
                select(snapshots.c.data, snapshots.c.upto_seq).where(
                    snapshots.c.notebook_id == notebook_id
                )
            ).first()
            snapshot, upto = (bytes(row[0]), int(row[1])) if row is not None else (None, 0)
            tail = connection.execute(
                select(updates.c.seq, updates.c.data)
                .where(updates.c.notebook_id == notebook_id, updates.c.seq > upto)
                .order_by(updates.c.seq)
            ).all()
        return StoredDocument(snapshot, upto, [(int(seq), bytes(data)) for seq, data in tail])

    async def compact(self, notebook_id: str, state: bytes, upto_seq: int) -> None:
        await asyncio.to_thread(self._compact, notebook_id, state, upto_seq)

    def _compact(self, notebook_id: str, state: bytes, upto_seq: int) -> None:
        snapshots = Snapshot.__table__  # type: ignore[attr-defined]
        updates = UpdateRecord.__table__  # type: ignore[attr-defined]
        values = {
            "notebook_id": notebook_id,
            "upto_seq": upto_seq,
            "data": state,
            "updated_at": utcnow(),
        }
        dialect = self._engine.dialect.name
        upsert_factory = pg_insert if dialect == "postgresql" else sqlite_insert
        upsert = upsert_factory(snapshots).values(**values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[snapshots.c.notebook_id],
            set_={k: v for k, v in values.items() if k != "notebook_id"},
        )
        with self._engine.begin() as connection:
            connection.execute(upsert)
            connection.execute(
                delete(updates).where(
                    updates.c.notebook_id == notebook_id, updates.c.seq <= upto_seq
                )
            )
