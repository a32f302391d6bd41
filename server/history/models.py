"""A version is the whole document at one moment, as one Yjs update."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import LargeBinary
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow


class VersionKind(StrEnum):
    CHECKPOINT = "checkpoint"  # automatic, every so often while people edit
    NAMED = "named"  # made by an editor
    BEFORE_RESTORE = "before-restore"  # the state a restore replaced
    BEFORE_MASS_DELETE = "before-mass-delete"  # most cells vanished in one update


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    id: str = Field(primary_key=True, max_length=32)
    notebook_id: str = Field(
        foreign_key="notebooks.id", index=True, max_length=32, ondelete="CASCADE"
    )
    kind: str = Field(max_length=32)
    name: str = Field(default="", max_length=100)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    cells: int = 0
    state: bytes = Field(sa_type=LargeBinary)
    # Whether the notebook's file list was kept with it (versions from before files were
    # kept restore the cells only).
    files_recorded: bool = False


class VersionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class VersionPublic(BaseModel):
    id: str
    kind: VersionKind
    name: str
    created_by: str
    created_at: datetime
    cells: int
    files: int | None = None  # how many files and folders it kept; None: none recorded


class CellChange(BaseModel):
    id: str
    cell_type: str
    source: str = ""
    diff: str = ""  # unified diff of the source, for changed cells
    outputs_changed: bool = False


class Comparison(BaseModel):
    base: str
    other: str
    added: list[CellChange]
    removed: list[CellChange]
    changed: list[CellChange]
    moved: list[str]
    metadata_changed: bool


class Restored(BaseModel):
    restored: str  # the version brought back
    saved_as: str  # the version holding what the notebook was just before
