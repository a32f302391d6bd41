"""Accounts and the credentials that stand for them. Secrets are only ever stored hashed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from server.timeutil import utcnow


class UserBase(SQLModel):
    username: str = Field(min_length=1, max_length=64, unique=True, index=True)
    is_admin: bool = False
    # Joined through a share link without an account: sees only what links give it.
    is_guest: bool = False


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


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
