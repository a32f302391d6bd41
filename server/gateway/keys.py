"""Secrets every replica of one deployment shares, kept in the database: the key kernel ids
are signed with, so a worker's kernel made by one replica can be adopted by another."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

KERNEL_IDS = "kernel-ids"


class ServerSecret(SQLModel, table=True):
    __tablename__ = "server_secrets"
    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=128)  # hex


def shared_key(engine: Engine, name: str = KERNEL_IDS) -> bytes:
    """The deployment's 32-byte key called `name`: made by the first replica to ask (the
    others, racing it, read the one it stored)."""
    with Session(engine) as db:
        found = db.get(ServerSecret, name)
        if found is None:
            db.add(ServerSecret(name=name, value=secrets.token_hex(32)))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
            found = db.get(ServerSecret, name)
        assert found is not None
        return bytes.fromhex(found.value)
