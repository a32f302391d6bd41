"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import server.models  # noqa: F401
from server.config import Settings
from server.db import make_engine, migrate


def test_migrations_match_the_models(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    migrate(engine)
    migrate(engine)  # idempotent: a second start changes nothing
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_a_database_in_use_upgrades_and_downgrades(tmp_path: Path) -> None:
    """Every revision applies to a database holding people and their notebooks (SQLite
    enforces foreign keys, and a migration that copies a referenced table must not trip
    them), and the newest ones step back down and up again."""
    engine = make_engine(Settings(data_dir=tmp_path))
    migrate(engine, "0001")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'owner', 1, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
            "VALUES ('nb', 'kept', 1, '2026-01-01', '2026-01-01')"
        )
    migrate(engine)
    migrate(engine, "0006", down=True)
    migrate(engine)
    with engine.connect() as connection:
        rows = list(connection.exec_driver_sql("SELECT title, owner_id FROM notebooks"))
        users = list(connection.exec_driver_sql("SELECT username, disabled FROM users"))
        enforced = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    engine.dispose()
    assert rows == [("kept", 1)]
    assert users == [("owner", 0)]
    assert enforced == 1  # back on for the server's own connections
