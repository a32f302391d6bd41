from __future__ import annotations

import asyncio
import concurrent.futures
import threading
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


# Kernel environments some modules need beyond ipykernel (the fixture of that name gives
# the package list for `TANDEM_ENVIRONMENTS`). A first build downloads and installs the
# packages: a minute or more on a fresh machine, then nothing (.test-envs keeps them).
PREBUILT = {
    "scientific_stack": SCIENTIFIC_STACK,
    # The chart renderers' tests: plotly's fig.show() needs nbformat, as in the default.
    "charts_stack": ["pandas", "plotly", "nbformat", "altair"],
}
BUILD_TIMEOUT_SECONDS = 900
_builds: dict[str, concurrent.futures.Future[None]] = {}


def _build(fixture: str) -> concurrent.futures.Future[None]:
    """Build (or find) one environment in a thread of its own, once per test process; the
    store's file lock has a second process wait for the first's build."""
    if fixture not in _builds:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        spec = Environment(name="default", packages=PREBUILT[fixture])

        def build() -> None:
            try:
                asyncio.run(EnvironmentStore(ENVS_DIR).get(spec))
            except BaseException as error:  # the fixture raises it in the test
                done.set_exception(error)
            else:
                done.set_result(None)

        # A daemon thread, not an executor's: a run stopped early does not wait for pip.
        threading.Thread(target=build, name=f"build {fixture}", daemon=True).start()
        _builds[fixture] = done
    return _builds[fixture]


@pytest.hookimpl(trylast=True)  # after `-k` and `-m` have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start building the environments the selected tests need while the others run, and
    give the first test of each module that needs one the time a first build takes (with
    `--dist loadfile` a module runs in order on one process, so its first test is the one
    that sets the module's fixtures up); the others keep the usual timeout."""
    modules = set()
    for item in items:
        needed = PREBUILT.keys() & set(getattr(item, "fixturenames", ()))
        for fixture in needed if not config.option.collectonly else ():
            _build(fixture)
        module = item.nodeid.split("::")[0]
        if needed and module not in modules:
            modules.add(module)
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT_SECONDS))


def _built(fixture: str) -> list[str]:
    _build(fixture).result()
    return PREBUILT[fixture]


@pytest.fixture(scope="session")
def scientific_stack() -> list[str]:
    """The scientific stack's packages, their environment built before a worker is asked
    for a kernel in it: a run then waits for a kernel, never for a build."""
    return _built("scientific_stack")


@pytest.fixture(scope="session")
def charts_stack() -> list[str]:
    """The charting libraries' packages, their environment built (as `scientific_stack`)."""
    return _built("charts_stack")


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
