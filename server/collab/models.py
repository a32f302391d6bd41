"""The update log and its snapshots: a notebook's content is snapshot + every later update."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow


class UpdateRecord(SQLModel, table=True):
    __tablename__ = "update_log"
    # A seq is never handed out twice: a plain rowid would reuse the numbers of the rows a
    # compaction deleted, and an update numbered at or below its snapshot's `upto_seq` is
    # skipped on the next load (PostgreSQL's sequence never reuses one anyway).
    __table_args__ = {"sqlite_autoincrement": True}
    # INTEGER (not BIGINT) so SQLite makes it the rowid and autoincrements it.
    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    notebook_id: str = Field(
        foreign_key="notebooks.id", index=True, max_length=32, ondelete="CASCADE"
    )
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Snapshot(SQLModel, table=True):
    __tablename__ = "snapshots"
    notebook_id: str = Field(
        primary_key=True, foreign_key="notebooks.id", max_length=32, ondelete="CASCADE"
    )
    # Every update with seq <= upto_seq is contained in `data`.
    upto_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class RuntimeFence(SQLModel, table=True):
    """The highest lease epoch under which a notebook's runtime was taken (several replicas):
    a runtime's write under a lower one is refused in the transaction that would store it."""

    __tablename__ = "runtime_fences"
    notebook_id: str = Field(
        primary_key=True, foreign_key="notebooks.id", max_length=32, ondelete="CASCADE"
    )
    epoch: int = Field(sa_column=Column(BigInteger, nullable=False))
