from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernels.environments import SCIENTIFIC_STACK, EnvironmentStore
from kernels.messages import Environment
from tests.support import ENVS_DIR, Api, Person, ServerProcess, make_people
from tests.support_pg import SQLITE, DatabaseUrls, PostgresServer, running_postgres

NAMES = ["alice", "bob", "carol", "dave", "erin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-seed", type=int, default=None, help="seed for tests/fuzz")
    parser.addoption("--long", action="store_true", help="run tests/fuzz for hours")


# A first build of the scientific stack downloads and installs a dozen packages: minutes on
# a fresh machine, then nothing. Only the test that sets a module up may wait for it.
BUILD_TIMEOUT_SECONDS = 900


@pytest.hookimpl(trylast=True)  # after `-k` and `-m` have deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test of each module that needs the scientific stack gets the time to build
    it; the others keep the usual timeout (with `--dist loadfile` a module runs in order on
    one process, so its first test is the one that sets the module's fixtures up)."""
    modules = set()
    for item in items:
        module = item.nodeid.split("::")[0]
        if "scientific_stack" in getattr(item, "fixturenames", ()) and module not in modules:
            modules.add(module)
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def scientific_stack() -> list[str]:
    """The `default` environment with the scientific stack, built (once per machine, under
    the store's file lock) before a worker is asked for a kernel in it: a run then waits
    for a kernel, never for a build. Returns the package list for `TANDEM_ENVIRONMENTS`."""
    spec = Environment(name="default", packages=SCIENTIFIC_STACK)
    asyncio.run(EnvironmentStore(ENVS_DIR).get(spec))
    return SCIENTIFIC_STACK


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's), started once per test session when asked for."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def backend() -> str:
    """Where `server`, `fresh_server` and the gateway's `cluster` store: the embedded
    default, SQLite in the data dir. The suites that must hold on both back ends (sync,
    roles, durability, execution) override it, module-scoped, with `params=BACKENDS`.
    (Module scope, so that what depends on it is rebuilt with each module's choice.)"""
    return SQLITE


@pytest.fixture(scope="module")
def database_urls(request: pytest.FixtureRequest, backend: str) -> DatabaseUrls:
    return DatabaseUrls(backend, lambda: request.getfixturevalue("postgres"))


class SharedServers:
    """One server per back end for the tests that do not restart it, started when first
    asked for, with people in its database."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: dict[str, tuple[ServerProcess, dict[str, Person]]] = {}

    def get(self, urls: DatabaseUrls) -> tuple[ServerProcess, dict[str, Person]]:
        if urls.backend not in self._started:
            env = urls.env("shared")
            process = ServerProcess(self._tmp.mktemp(f"server-{urls.backend}"), env=env)
            process.start()
            url = env.get("TANDEM_DATABASE_URL", "")
            self._started[urls.backend] = (
                process,
                make_people(process.data_dir, NAMES, database_url=url),
            )
        return self._started[urls.backend]

    def stop(self) -> None:
        for process, people in self._started.values():
            process.stop()
            # Whatever every test sent it, the server never logged a traceback or a secret.
            log = process.log()
            assert "Traceback" not in log, log[-3000:]
            for person in people.values():
                assert person.token not in log
                assert person.password not in log


@pytest.fixture(scope="session")
def shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServers]:
    servers = SharedServers(tmp_path_factory)
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def server(shared_servers: SharedServers, database_urls: DatabaseUrls) -> ServerProcess:
    """The shared server of the module's back end."""
    return shared_servers.get(database_urls)[0]


@pytest.fixture(scope="module")
def people(shared_servers: SharedServers, database_urls: DatabaseUrls) -> dict[str, Person]:
    return shared_servers.get(database_urls)[1]


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
