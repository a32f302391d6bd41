from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Api, Person, ServerProcess, make_people
from tests.support_pg import SQLITE, DatabaseUrls, PostgresServer, running_postgres

NAMES = ["alice", "bob", "carol", "dave", "erin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-seed", type=int, default=None, help="seed for tests/fuzz")
    parser.addoption("--long", action="store_true", help="run tests/fuzz for hours")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's), started once per test session when asked for."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def backend() -> str:
    """Where the servers of `server`, `fresh_server` and the gateway's `cluster` store: the
    embedded default, SQLite in the data dir. The suites that must hold on both back ends
    (sync, roles, durability, execution) override it with `params=BACKENDS`."""
    return SQLITE


@pytest.fixture(scope="session")
def database_urls(request: pytest.FixtureRequest, backend: str) -> DatabaseUrls:
    return DatabaseUrls(backend, lambda: request.getfixturevalue("postgres"))


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_urls: DatabaseUrls
) -> Iterator[ServerProcess]:
    """One server for the tests that do not restart it."""
    process = ServerProcess(tmp_path_factory.mktemp("server"), env=database_urls.env("shared"))
    process.start()
    yield process
    process.stop()
    # Whatever every test sent it, the server never logged a traceback or a secret.
    log = process.log()
    assert "Traceback" not in log, log[-3000:]
    for person in _people.get(process.port, {}).values():
        assert person.token not in log
        assert person.password not in log


_people: dict[int, dict[str, Person]] = {}


@pytest.fixture(scope="session")
def people(server: ServerProcess) -> dict[str, Person]:
    url = server.env.get("TANDEM_DATABASE_URL", "")
    made = make_people(server.data_dir, NAMES, database_url=url)
    _people[server.port] = made
    return made


@pytest.fixture
def alice(server: ServerProcess, people: dict[str, Person]) -> Iterator[Api]:
    api = Api(server, people["alice"])
    yield api
    api.client.close()


@pytest.fixture
def fresh_server(tmp_path: Path, database_urls: DatabaseUrls) -> Iterator[ServerProcess]:
    """A server of the test's own (on a new database), for tests that kill or reconfigure it."""
    process = ServerProcess(tmp_path / "data", env=database_urls.env())
    yield process
    process.stop()
