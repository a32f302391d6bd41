"""Threads, comments and mentions. Text is stored as the person typed it (plain text or
markdown source); the browser renders it sanitised."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import LargeBinary
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow

MAX_BODY = 10_000


class CommentThread(SQLModel, table=True):
    __tablename__ = "comment_threads"
    id: str = Field(primary_key=True, max_length=32)
    notebook_id: str = Field(
        foreign_key="notebooks.id", index=True, max_length=32, ondelete="CASCADE"
    )
    cell_id: str = Field(max_length=100)
    # Sticky indexes (Yjs relative positions) into the cell's source: they follow edits.
    anchor_start: bytes | None = Field(default=None, sa_type=LargeBinary)
    anchor_end: bytes | None = Field(default=None, sa_type=LargeBinary)
    quote: str = Field(default="", max_length=2000)  # the range's text when anchored
    # The cell's text as last seen, quoted when the cell is deleted.
    cell_text: str = Field(default="", max_length=200_000)
    resolved: bool = False
    resolved_by: str | None = Field(default=None, max_length=100)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Comment(SQLModel, table=True):
    __tablename__ = "comments"
    id: str = Field(primary_key=True, max_length=32)
    thread_id: str = Field(
        foreign_key="comment_threads.id", index=True, max_length=32, ondelete="CASCADE"
    )
    author_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    author: str = Field(max_length=100)
    body: str = Field(max_length=MAX_BODY)
    deleted: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    edited_at: datetime | None = None


class Mention(SQLModel, table=True):
    __tablename__ = "mentions"
    comment_id: str = Field(
        primary_key=True, foreign_key="comments.id", max_length=32, ondelete="CASCADE"
    )
    user_id: int = Field(primary_key=True, foreign_key="users.id", index=True, ondelete="CASCADE")
    thread_id: str = Field(
        foreign_key="comment_threads.id", index=True, max_length=32, ondelete="CASCADE"
    )
    read_at: datetime | None = None


class ThreadCreate(BaseModel):
    cell_id: str = Field(min_length=1, max_length=100)
    # A range of the cell's source in characters (code points); none: the whole cell.
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    body: str = Field(min_length=1, max_length=MAX_BODY)


class CommentWrite(BaseModel):
    body: str = Field(min_length=1, max_length=MAX_BODY)


class CommentPublic(BaseModel):
    id: str
    author: str
    body: str
    deleted: bool
    created_at: datetime
    edited_at: datetime | None
    mentions: list[str]


class Anchor(BaseModel):
    start: int
    end: int
    text: str  # what the range holds now


class ThreadPublic(BaseModel):
    id: str
    cell_id: str
    anchor: Anchor | None  # None: the whole cell, or the range could not be resolved
    quote: str
    orphaned: bool  # the cell is gone; `cell_text` quotes it as it was
    cell_text: str
    resolved: bool
    resolved_by: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    comments: list[CommentPublic]


class MentionPublic(BaseModel):
    notebook_id: str
    thread_id: str
    comment_id: str
    author: str
    excerpt: str
    unread: bool
    created_at: datetime
