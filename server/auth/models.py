"""Accounts and the credentials that stand for them. Secrets are only ever stored hashed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow


class UserBase(SQLModel):
    username: str = Field(min_length=1, max_length=64, unique=True, index=True)
    is_admin: bool = False
    # Joined through a share link without an account: sees only what links give it.
    is_guest: bool = False
    # Turned off by an admin: no login, no session, no token works until turned on again.
    disabled: bool = False


class User(UserBase, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)


class UserPublic(UserBase):
    id: int


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    label: str = Field(default="", max_length=100)
    # SHA-256 of the token: tokens carry 256 random bits, so a fast hash is enough.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class WebSession(SQLModel, table=True):
    __tablename__ = "web_sessions"
    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Invite(SQLModel, table=True):
    """A one-time link that lets a new person pick a username and password, and optionally
    join a notebook with a role."""

    __tablename__ = "invites"
    id: str = Field(primary_key=True, max_length=32)
    # SHA-256 of the token, as for API tokens: the raw token is shown once.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    label: str = Field(default="", max_length=100)
    created_by: str = Field(max_length=100)
    # Not a foreign key: a deleted notebook leaves an invite that still makes an account.
    notebook_id: str | None = Field(default=None, max_length=32)
    role: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = Field(default=None, max_length=64)


# The rules the CLI has always had: any text of 1 to 1024 characters.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: Password


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    # None: the server makes one and shows it once.
    password: Password | None = None
    is_admin: bool = False


class UserUpdate(BaseModel):
    disabled: bool | None = None


class PasswordReset(BaseModel):
    password: Password | None = None


class PasswordResetDone(BaseModel):
    username: str
    password: str | None  # the generated one, shown once; None when the admin chose it
    sessions_revoked: int  # every browser session of the person; API tokens are kept


class UserCreated(BaseModel):
    user: UserPublic
    password: str | None  # the generated one, shown once


class InviteCreate(BaseModel):
    label: str = Field(default="", max_length=100)
    days: float = Field(default=7, gt=0, le=90)
    notebook_id: str | None = Field(default=None, max_length=32)
    role: str | None = Field(default=None, max_length=16)


class InvitePublic(BaseModel):
    id: str
    label: str
    created_by: str
    notebook_id: str | None
    role: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by: str | None
    active: bool


class InviteCreated(InvitePublic):
    token: str  # shown once


class InviteInfo(BaseModel):
    """What the invite page shows before the account is made."""

    notebook_title: str | None
    role: str | None
    expires_at: datetime


class InviteToken(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class InviteAccept(InviteToken):
    username: str = Field(min_length=1, max_length=64)
    password: Password


class InviteAccepted(BaseModel):
    user: UserPublic
    notebook_id: str | None
