"""Notebook records and memberships. The content itself lives in the collab update log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow
from server.vocabulary import Role


class MemberRole(StrEnum):
    """The roles an owner can grant (ownership itself is not granted this way)."""

    VIEWER = "viewer"
    COMMENTER = "commenter"
    EDITOR = "editor"


class NotebookBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)


class Notebook(NotebookBase, table=True):
    __tablename__ = "notebooks"
    id: str = Field(primary_key=True, max_length=32)
    owner_id: int = Field(foreign_key="users.id", index=True)
    # None: the server's default runtime type (the first one configured).
    runtime_type: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    notebook_id: str = Field(
        primary_key=True, foreign_key="notebooks.id", max_length=32, ondelete="CASCADE"
    )
    user_id: int = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    role: str = Field(max_length=16)


class NotebookCreate(NotebookBase):
    pass


class NotebookUpdate(NotebookBase):
    pass


class NotebookPublic(NotebookBase):
    id: str
    owner: str
    role: Role
    created_at: datetime
    updated_at: datetime


class MemberPublic(BaseModel):
    username: str
    role: Role


class MemberUpdate(BaseModel):
    role: MemberRole
