"""Accounts and credentials: create users and tokens, log in, resolve a credential to a user."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select

from server.auth.models import ApiToken, User, WebSession
from server.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from server.timeutil import utcnow

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a login takes the same time either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "tdm_"  # noqa: S105  (a visible prefix, not a secret)
# Every token's and session's secret is secrets.token_urlsafe(32): 43 URL-safe characters.
SECRET_SHAPE = r"[A-Za-z0-9_-]{43}"  # noqa: S105  (a pattern, not a secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_password(password: str) -> str:
    """The CLI's rules, for every way a password is set: 1 to 1024 characters."""
    if not password or len(password) > 1024:
        raise InvalidInput("a password is 1 to 1024 characters")
    return password


def add_user(
    db: Session, username: str, password: str | None = None, *, is_admin: bool = False
) -> User:
    """A new account in the caller's transaction (the caller commits, with its audit row)."""
    username = username.strip()
    if not username or len(username) > 64 or not username.isprintable():
        raise InvalidInput("a username is 1 to 64 printable characters")
    if "/" in username:  # it is a path segment of the members API
        raise InvalidInput("a username cannot contain '/'")
    # "Alice" beside "alice" would pass for her in comments, presence and the members list.
    taken = select(User).where(func.lower(User.username) == username.lower())
    if db.exec(taken).first() is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        is_admin=is_admin,
        password_hash=_hasher.hash(check_password(password)) if password else None,
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError:  # the same name made at the same moment (an invite, an admin)
        db.rollback()
        raise Conflict(f"user {username!r} already exists") from None
    return user


def create_user(
    db: Session, username: str, password: str | None = None, *, is_admin: bool = False
) -> User:
    user = add_user(db, username, password, is_admin=is_admin)
    db.refresh(user)
    return user


def create_guest(db: Session, name: str) -> tuple[User, str]:
    """A guest account for someone who opened a link without one; returns it and an API
    token for it. The name shows in presence as "NAME (guest)"."""
    name = " ".join(name.split())
    if not name or len(name) > 40 or not name.isprintable():
        raise InvalidInput("a guest name is 1 to 40 printable characters")
    username = f"{name} (guest {secrets.token_hex(3)})"
    user = User(username=username, is_guest=True)
    db.add(user)
    db.flush()
    assert user.id is not None
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(user_id=user.id, label="guest", token_hash=hash_secret(raw)))
    return user, raw


def get_user(db: Session, username: str) -> User:
    user = db.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def create_token(db: Session, user: User, label: str = "") -> str:
    """Make an API token for `user`; the raw token is returned once and only its hash kept."""
    if len(label) > 100:
        raise InvalidInput("a token label is at most 100 characters")
    assert user.id is not None
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(user_id=user.id, label=label, token_hash=hash_secret(raw)))
    db.flush()
    return raw


def user_for_token(db: Session, raw: str) -> User:
    # One query for the token and its owner: every socket and request asks, nothing caches.
    user = db.exec(
        select(User)
        .join(ApiToken, col(ApiToken.user_id) == col(User.id))
        .where(ApiToken.token_hash == hash_secret(raw))
    ).first()
    if user is None or user.disabled:
        raise NotAuthenticated("invalid token")
    return user


def login(db: Session, username: str, password: str, session_days: int) -> tuple[User, str]:
    """Check a password and open a browser session; returns the user and the raw cookie."""
    user = db.exec(select(User).where(User.username == username)).first()
    stored = user.password_hash if user is not None else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise NotAuthenticated("wrong username or password") from None
    if user is None or stored is None:
        raise NotAuthenticated("wrong username or password")
    if user.disabled:
        raise NotAuthenticated("this account is disabled; ask an admin")
    raw = open_session(db, user, session_days)
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
        db.add(user)
    db.flush()
    return user, raw


def open_session(db: Session, user: User, session_days: int) -> str:
    """Start a browser session for `user` (in the caller's transaction); the raw cookie."""
    assert user.id is not None
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    db.exec(
        delete(WebSession).where(
            col(WebSession.user_id) == user.id, col(WebSession.expires_at) <= now
        )
    )
    expires = now + timedelta(days=session_days)
    db.add(WebSession(token_hash=hash_secret(raw), user_id=user.id, expires_at=expires))
    return raw


def user_for_session(db: Session, raw: str) -> User:
    user = db.exec(
        select(User)
        .join(WebSession, col(WebSession.user_id) == col(User.id))
        .where(WebSession.token_hash == hash_secret(raw), col(WebSession.expires_at) > utcnow())
    ).first()
    if user is None or user.disabled:
        raise NotAuthenticated("session expired; log in again")
    return user


def end_session(db: Session, raw: str) -> None:
    """End the browser session of this raw cookie, in the caller's transaction."""
    record = db.get(WebSession, hash_secret(raw))
    if record is not None:
        db.delete(record)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash or _DUMMY_HASH, password) and bool(
            user.password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


def set_password(db: Session, user: User, password: str) -> None:
    """A new password, in the caller's transaction."""
    user.password_hash = _hasher.hash(check_password(password))
    db.add(user)


def revoke_sessions(db: Session, user: User, keep: str | None = None) -> int:
    """End the person's browser sessions (all, or all but the raw cookie `keep`), in the
    caller's transaction; how many ended. API tokens are separate credentials and stay."""
    query = select(WebSession).where(WebSession.user_id == user.id)
    if keep is not None:
        query = query.where(WebSession.token_hash != hash_secret(keep))
    sessions = db.exec(query).all()
    for record in sessions:
        db.delete(record)
    return len(sessions)


def list_users(db: Session) -> list[User]:
    return list(db.exec(select(User).order_by(col(User.username))))
