"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster in a temp
dir (socket and log inside it), `trust` auth on 127.0.0.1, a fresh database per test.

PostgreSQL refuses to run as root, so as root its commands run as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support import free_port

USER = "postgres"

# The back ends a suite runs on when it overrides the `backend` fixture with these params.
SQLITE, POSTGRESQL = "sqlite", "postgresql"
BACKENDS = [SQLITE, POSTGRESQL]


def binaries() -> Path | None:
    """The newest installed Debian PostgreSQL's bin dir, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """`postgres` on 127.0.0.1:`port`, its cluster in a temp dir of its own."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tandem-pg-"))
        self.data = self.root / "data"
        self._names = itertools.count(1)

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", USER, "--", *command]
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{output}{self.log()}")

    def init(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, USER, USER)
        self.root.chmod(0o700)
        self._run(
            *("initdb", "-D", str(self.data), "-U", USER),
            *("--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
        )
        return self

    def start(self) -> None:
        # A throwaway server: no fsync (nothing here survives the machine anyway), and room
        # for several `tandem serve` pools at once.
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=300",
                "-c fsync=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            *("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path)),
            *("-w", "-t", "60", "-o", options),
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one of this server's databases."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "tandem") -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


class DatabaseUrls:
    """New databases on a test's back end: "" (the data dir's SQLite file) or a fresh
    PostgreSQL database (the server is started on first use)."""

    def __init__(self, backend: str, postgres: Callable[[], PostgresServer]) -> None:
        self.backend = backend
        self._postgres = postgres

    def new(self, prefix: str = "tandem") -> str:
        return "" if self.backend == SQLITE else self._postgres().create_database(prefix)

    def env(self, prefix: str = "tandem") -> dict[str, str]:
        """A server's settings for a new database."""
        url = self.new(prefix)
        return {"TANDEM_DATABASE_URL": url} if url else {}


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL server, stopped and removed afterwards."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir).init()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def count_rows(url: str, table: str) -> int:
    """How many rows one table of this database holds."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        row = connection.execute(query).fetchone()
    assert row is not None
    return int(row[0])
