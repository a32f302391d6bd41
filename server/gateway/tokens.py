"""Worker tokens: made by an admin, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import secrets

from sqlmodel import Session, col, select

from server.auth.models import User
from server.auth.service import hash_secret
from server.errors import InvalidInput, NotAuthenticated, NotFound
from server.gateway.models import WorkerToken

WORKER_TOKEN_PREFIX = "tdw_"  # noqa: S105  (a visible prefix, not a secret)


def new_secret() -> str:
    return WORKER_TOKEN_PREFIX + secrets.token_urlsafe(32)


def create(db: Session, name: str, creator: User | None) -> tuple[WorkerToken, str]:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise InvalidInput("a worker token name is 1 to 100 printable characters")
    raw = new_secret()
    record = WorkerToken(
        name=name, token_hash=hash_secret(raw), created_by=creator.id if creator else None
    )
    db.add(record)
    db.flush()
    return record, raw


def all_tokens(db: Session) -> list[WorkerToken]:
    return list(db.exec(select(WorkerToken).order_by(col(WorkerToken.id))))


def revoke(db: Session, token_id: int) -> None:
    record = db.get(WorkerToken, token_id)
    if record is None:
        raise NotFound("no such worker token")
    db.delete(record)
    db.flush()


def check(db: Session, raw: str) -> int:
    """The id of the worker token `raw` is; NotAuthenticated when it is none."""
    record = db.exec(select(WorkerToken).where(WorkerToken.token_hash == hash_secret(raw))).first()
    if record is None or record.id is None:
        raise NotAuthenticated("invalid worker token")
    # The tokens an admin made stop with their account (a disabled admin's rogue worker
    # would be handed others' code and files); tokens made with the CLI have no creator.
    creator = db.get(User, record.created_by) if record.created_by is not None else None
    if creator is not None and creator.disabled:
        raise NotAuthenticated("invalid worker token")
    return record.id


def made_by(db: Session, user: User) -> list[int]:
    """The ids of the worker tokens `user` made."""
    query = select(WorkerToken.id).where(WorkerToken.created_by == user.id)
    return [token_id for token_id in db.exec(query) if token_id is not None]
