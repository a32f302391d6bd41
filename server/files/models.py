"""The list of a notebook's files (its manifest) and what each version recorded of it.

File contents are blobs named by their SHA-256 in the blob store (`store.py`); a row here
says which blob a path holds now. Versions keep their own rows, so a restored version brings
back the files as they were, and a blob lives while any row names it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow


class FileKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"  # a folder made on purpose; folders holding files need no row


class NotebookFile(SQLModel, table=True):
    __tablename__ = "notebook_files"
    notebook_id: str = Field(
        primary_key=True, foreign_key="notebooks.id", max_length=32, ondelete="CASCADE"
    )
    path: str = Field(primary_key=True, max_length=1024)
    kind: str = Field(default=FileKind.FILE.value, max_length=16)
    sha256: str = Field(default="", max_length=64, index=True)
    size: int = Field(default=0, sa_type=BigInteger)
    # Scripts a `%pip install` put in .local/bin stay runnable in the next kernel.
    executable: bool = False
    modified: datetime = Field(default_factory=utcnow)
    modified_by: str = Field(default="", max_length=100)


class VersionFile(SQLModel, table=True):
    __tablename__ = "version_files"
    version_id: str = Field(
        primary_key=True, foreign_key="versions.id", max_length=32, ondelete="CASCADE"
    )
    path: str = Field(primary_key=True, max_length=1024)
    notebook_id: str = Field(max_length=32, index=True)
    kind: str = Field(default=FileKind.FILE.value, max_length=16)
    sha256: str = Field(default="", max_length=64)
    size: int = Field(default=0, sa_type=BigInteger)
    executable: bool = False


class FilePublic(BaseModel):
    path: str
    kind: FileKind
    size: int
    modified: datetime
    modified_by: str
    sha256: str  # also the download's ETag


class FileList(BaseModel):
    files: list[FilePublic]
    total_bytes: int
    quota_bytes: int


class FolderCreate(BaseModel):
    type: FileKind = FileKind.DIRECTORY


class FileMove(BaseModel):
    path: str = Field(min_length=1, max_length=1024)  # the new path


class WorkerFile(BaseModel):
    """One entry of the manifest a worker mirrors into /content."""

    path: str
    kind: FileKind
    sha256: str
    size: int
    executable: bool = False


class WorkerManifest(BaseModel):
    files: list[WorkerFile]
    total_bytes: int
    quota_bytes: int


class WorkerRefusal(BaseModel):
    """A file a worker did not send, so the people can be told."""

    path: str = Field(max_length=4096)  # as the kernel named it (escaped if not UTF-8)
    size: int = Field(ge=0)
    reason: Literal["quota", "name"]
