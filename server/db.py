"""The database engine: SQLite in WAL mode by default, any SQLAlchemy URL otherwise.

The schema is owned by Alembic (server/migrations); `migrate` brings any older database up
to date before the server touches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

from server.config import Settings

_MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        private_data_dir(settings.data_dir, own_database=not settings.database_url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql"):
        # Up to 40 connections a replica, as many as the server's thread pool has threads;
        # the update log's writer and background jobs share them. A dead server is noticed
        # (pre-ping) and a refused connection fails in seconds, not at the TCP timeout.
        return create_engine(
            url,
            pool_size=10,
            max_overflow=30,
            pool_timeout=30,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10},
        )
    return create_engine(url, pool_pre_ping=True)


def private_data_dir(data_dir: Path, *, own_database: bool) -> None:
    """The data dir is the server's alone (0700) and its database 0600 (SQLite gives the
    -wal and -shm files the database's mode)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    database = data_dir / "tandem.db"
    if own_database:
        database.touch(mode=0o600, exist_ok=True)
    for path in (database, data_dir / "tandem.db-wal", data_dir / "tandem.db-shm"):
        if path.exists():
            path.chmod(0o600)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Any fixed 64-bit number: the key of the PostgreSQL advisory lock replicas migrate under.
_MIGRATION_LOCK = 0x54414E44454D  # "TANDEM"


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Create or upgrade the schema to the newest revision (or move it to `revision`).

    On PostgreSQL, replicas starting together take turns: each waits for a transaction-level
    advisory lock, so one migrates and the others then find the schema at head. (DDL is
    transactional there, so a replica that dies half way leaves the schema as it was.)
    On SQLite, a migration that changes a table copies it and drops the old one, which its
    foreign keys forbid as soon as a row points at it: they are off while migrating, and
    checked once done.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside any transaction
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))"),
                        {"key": _MIGRATION_LOCK},
                    )
                config = alembic_config(str(engine.url))
                config.attributes["connection"] = connection
                (command.downgrade if down else command.upgrade)(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migrating left rows pointing nowhere: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def sessions(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
