"""Share links and the grants they gave: a link is a role on one notebook for its bearer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from server.notebooks.models import MemberRole
from server.timeutil import utcnow
from server.vocabulary import Role


class ShareLink(SQLModel, table=True):
    __tablename__ = "share_links"
    id: str = Field(primary_key=True, max_length=32)  # public: names the link, opens nothing
    notebook_id: str = Field(
        foreign_key="notebooks.id", index=True, max_length=32, ondelete="CASCADE"
    )
    role: str = Field(max_length=16)
    label: str = Field(default="", max_length=100)
    # SHA-256 of the link's secret (256 random bits); the secret itself is shown once.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    allow_guests: bool = False
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class LinkGrant(SQLModel, table=True):
    """Someone opened a link: they hold its role for as long as the link lives."""

    __tablename__ = "link_grants"
    link_id: str = Field(
        primary_key=True, foreign_key="share_links.id", max_length=32, ondelete="CASCADE"
    )
    user_id: int = Field(primary_key=True, foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)


class LinkCreate(BaseModel):
    role: MemberRole
    label: str = Field(default="", max_length=100)
    expires_at: datetime | None = None
    # "Anyone with the link": people without an account may join as named guests.
    allow_guests: bool = False


class LinkPublic(BaseModel):
    id: str
    role: Role
    label: str
    allow_guests: bool
    created_at: datetime
    expires_at: datetime | None
    active: bool
    holders: list[str] = Field(default_factory=list)  # usernames of who opened it


class LinkCreated(LinkPublic):
    token: str  # shown once


class LinkRedeem(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    guest_name: str | None = Field(default=None, min_length=1, max_length=40)


class LinkRedeemed(BaseModel):
    notebook_id: str
    role: Role
    username: str
    guest: bool
    # For a guest: an API token for websockets and REST (also set as the session cookie).
    token: str | None = None
