"""The same server on a real PostgreSQL (Debian's, started by the fixture): migrations (two
replicas starting at once), two update logs compacting, files, versions, and PostgreSQL
restarted under an open session. Sync, roles, durability through a SIGKILL, compaction and
running cells are tests/collab's and tests/gateway/test_execute.py's, run on both back ends."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pycrdt import Array, Doc, Map, Text
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel

import server.files.models  # server/models.py does not list the files tables (yet)
import server.models  # noqa: F401
from server.auth import service as auth
from server.collab.update_log import SqlUpdateLog
from server.config import Settings
from server.db import alembic_config, make_engine, migrate
from server.notebooks.models import Notebook
from tests.support import (
    Api,
    Person,
    ServerProcess,
    YClient,
    eventually,
    make_people,
    notebook_with_code,
    start_with_alice,
    sync_url,
)
from tests.support_pg import PostgresServer, running_postgres


@pytest.fixture(scope="module")
def pg_server(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, dict[str, Person]]]:
    """One `tandem serve` on its own PostgreSQL database, for the tests that do not kill it."""
    url = postgres.create_database("shared")
    server = ServerProcess(tmp_path_factory.mktemp("pg"), env={"TANDEM_DATABASE_URL": url})
    server.start()
    people = make_people(server.data_dir, ["alice", "bob"], database_url=url)
    yield server, people
    server.stop()
    log = server.log()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def pg_alice(pg_server: tuple[ServerProcess, dict[str, Person]]) -> Iterator[Api]:
    api = Api(pg_server[0], pg_server[1]["alice"])
    yield api
    api.client.close()


@pytest.fixture
def pg_fresh(postgres: PostgresServer, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own on a new database; the test starts it."""
    url = postgres.create_database()
    server = ServerProcess(tmp_path / "data", env={"TANDEM_DATABASE_URL": url})
    yield server
    server.stop()


def new_cell(cell_id: str, source: str = "") -> Map[object]:
    return Map(
        {
            "id": cell_id,
            "cell_type": "code",
            "source": Text(source),
            "metadata": Map(),
            "outputs": Array(),
            "execution_count": None,
        }
    )


def test_migrations_match_the_models(postgres: PostgresServer) -> None:
    engine = make_engine(Settings(database_url=postgres.create_database()))
    migrate(engine)
    migrate(engine)  # idempotent: a second start changes nothing
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_replicas_starting_together_migrate_one_at_a_time(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Two servers started at once on one empty database both come up, on one schema."""
    url = postgres.create_database()
    servers = [
        ServerProcess(tmp_path / name, env={"TANDEM_DATABASE_URL": url}) for name in ("a", "b")
    ]
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        engine = create_engine(url)
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        engine.dispose()
        assert [tuple(row) for row in versions] == [(head,)]
        # Both serve: a notebook made through one is read through the other.
        alice = make_people(tmp_path, ["alice"], database_url=url)["alice"]
        one, two = Api(servers[0], alice), Api(servers[1], alice)
        notebook = one.create("made on a")
        assert two.export(notebook)["cells"][0]["cell_type"] == "code"
        one.client.close()
        two.client.close()
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log(), server.log()[-3000:]


async def test_two_update_logs_appending_and_compacting_lose_nothing(
    postgres: PostgresServer,
) -> None:
    """Two processes' logs (as two replicas will) append to one notebook and compact it at
    the same time, each knowing only its own edits: the stored document keeps them all."""
    url = postgres.create_database()
    engines = [make_engine(Settings(database_url=url)) for _ in range(2)]
    migrate(engines[0])
    with Session(engines[0]) as db:
        owner = auth.create_user(db, "owner", "owner-password")
        db.add(Notebook(id="nb", title="shared", owner_id=owner.id))
        db.commit()
    logs = [SqlUpdateLog(engine) for engine in engines]
    docs: list[Doc[Any]] = [Doc(), Doc()]
    last_seq = [0, 0]
    for log in logs:
        await log.start()

    async def type_into(i: int, words: range) -> None:
        for n in words:
            before = docs[i].get_state()
            docs[i].get("t", type=Text).insert(0, f"<{i}-{n}>")
            last_seq[i] = await logs[i].append("nb", docs[i].get_update(before), lambda _: None)

    async def compact(i: int) -> None:
        await logs[i].compact("nb", docs[i].get_update(), docs[i].get_state(), last_seq[i])

    try:
        for words in (range(0, 30), range(30, 60)):
            await asyncio.gather(type_into(0, words), type_into(1, words))
            await asyncio.gather(compact(0), compact(1), type_into(0, range(100, 103)))
        stored = await logs[0].load("nb")
    finally:
        for log in logs:
            await log.stop()
        for engine in engines:
            engine.dispose()
    loaded: Doc[Any] = Doc()
    for update in [stored.snapshot or b"", *(data for _, data in stored.updates)]:
        if update:
            loaded.apply_update(update)
    words = set(re.findall(r"<\d-\d+>", str(loaded.get("t", type=Text))))
    expected = {f"<{i}-{n}>" for i in (0, 1) for n in range(60)} | {
        f"<0-{n}>" for n in range(100, 103)
    }
    assert words == expected, f"lost: {sorted(expected - words)[:10]}"


def test_files_round_trip(pg_alice: Api) -> None:
    alice = pg_alice
    notebook = alice.create("files on postgres")
    files = f"/api/notebooks/{notebook}/files"
    body = bytes(range(256)) * 40
    for path, content in [("a_b/in.bin", body), ("axb/keep.txt", b"kept")]:
        put = alice.client.put(f"{files}/{path}", content=content)
        assert put.status_code in (200, 201), put.text
    assert alice.client.get(f"{files}/a_b/in.bin").content == body
    listing = alice.client.get(files)
    assert listing.status_code == 200, listing.text
    assert {f["path"] for f in listing.json()["files"]} >= {"a_b/in.bin", "axb/keep.txt"}
    # Moving folder a_b moves what is under it and not axb's (LIKE's _ is escaped).
    moved = alice.client.patch(f"{files}/a_b", json={"path": "moved"})
    assert moved.status_code == 200, moved.text
    assert alice.client.get(f"{files}/moved/in.bin").content == body
    assert alice.client.get(f"{files}/axb/keep.txt").content == b"kept"
    assert alice.client.delete(f"{files}/moved/in.bin").status_code == 204
    assert alice.client.get(f"{files}/moved/in.bin").status_code == 404


async def test_versions_save_and_restore(
    pg_server: tuple[ServerProcess, dict[str, Person]], pg_alice: Api
) -> None:
    server, people = pg_server
    alice = pg_alice
    notebook, ids = notebook_with_code(alice, ["a = 1", "b = 2"])
    versions = f"/api/notebooks/{notebook}/versions"
    saved = alice.client.post(versions, json={"name": "good"})
    assert saved.status_code == 201, saved.text
    async with YClient(sync_url(server, notebook, people["alice"].token)) as client:
        client.cells[0]["source"].insert(5, "00")
        del client.cells[1]
        await eventually(lambda: len(alice.export(notebook)["cells"]) == 1)
        restored = alice.client.post(f"{versions}/{saved.json()['id']}/restore")
        assert restored.status_code == 200, restored.text
        await eventually(lambda: [str(c["source"]) for c in client.cells] == ["a = 1", "b = 2"])
    listed = alice.client.get(versions).json()
    assert {v["kind"] for v in listed} >= {"named", "before-restore"}
    assert [c["id"] for c in alice.export(notebook)["cells"]] == ids


async def test_postgres_restarted_under_an_open_session(tmp_path: Path) -> None:
    """While PostgreSQL is down an edit cannot be stored: its client is closed with 1011 and
    nobody sees the edit; once PostgreSQL is back the client reconnects and nothing is lost.
    (A PostgreSQL of its own: the other tests' servers are not to see it go.)"""
    with running_postgres() as postgres:
        server = ServerProcess(tmp_path, env={"TANDEM_DATABASE_URL": postgres.create_database()})
        try:
            await _edit_through_a_restart(postgres, server)
        finally:
            server.stop()


async def _edit_through_a_restart(postgres: PostgresServer, server: ServerProcess) -> None:
    alice, api = start_with_alice(server)
    notebook = api.create("through a database restart")
    url = sync_url(server, notebook, alice.token)
    writer, reader = await YClient(url).connect(), await YClient(url).connect()
    writer.cells[0]["source"].insert(0, "before ")
    await eventually(lambda: str(reader.cells[0]["source"]) == "before ")

    postgres.stop()
    writer.cells[0]["source"].insert(len("before "), "during ")
    assert await writer.wait_closed(timeout=30) == 1011
    await writer.close()
    assert str(reader.cells[0]["source"]) == "before "  # nothing unstored was broadcast
    # REST meanwhile: a clear 503 to retry, never a 500 with a traceback in the log.
    away = api.client.get("/api/notebooks")
    assert away.status_code == 503, away.text
    assert away.headers["retry-after"] == "2"
    postgres.start()

    await writer.connect()  # its copy still holds the unsaved edit, sent again on sync
    writer.cells[0]["source"].insert(len("before during "), "after")
    await eventually(lambda: str(reader.cells[0]["source"]) == "before during after")
    assert api.export(notebook)["cells"][0]["source"] == "before during after"
    await writer.close()
    await reader.close()
    api.client.close()
    assert "Traceback" not in server.log()
