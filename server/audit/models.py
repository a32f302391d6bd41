"""One row per sharing or permission change, and per account change an admin (or the
person) makes: who, what, when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    notebook_id: str = Field(
        foreign_key="notebooks.id", index=True, max_length=32, ondelete="CASCADE"
    )
    actor: str = Field(max_length=100)  # a username, or "system" for expiry
    action: str = Field(max_length=32)
    detail: str = Field(default="{}", max_length=2000)  # JSON
    created_at: datetime = Field(default_factory=utcnow)


class AuditEventPublic(BaseModel):
    actor: str
    action: str
    detail: dict[str, Any]
    created_at: datetime


class AccountEvent(SQLModel, table=True):
    """An account change: made by an admin, by the person, or by an invite's redemption."""

    __tablename__ = "account_events"
    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=32)
    target: str = Field(default="", max_length=100, index=True)  # the account concerned
    detail: str = Field(default="{}", max_length=2000)  # JSON; never a password or token
    created_at: datetime = Field(default_factory=utcnow)


class AccountEventPublic(BaseModel):
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    created_at: datetime
