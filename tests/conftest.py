from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Api, Person, ServerProcess, make_people

NAMES = ["alice", "bob", "carol", "dave", "erin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-seed", type=int, default=None, help="seed for tests/fuzz")
    parser.addoption("--long", action="store_true", help="run tests/fuzz for hours")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that do not restart it."""
    process = ServerProcess(tmp_path_factory.mktemp("server"))
    process.start()
    yield process
    process.stop()
    # Whatever every test sent it, the server never logged a traceback or a secret.
    log = process.log()
    assert "Traceback" not in log, log[-3000:]
    for person in _people.values():
        assert person.token not in log
        assert person.password not in log


_people: dict[str, Person] = {}


@pytest.fixture(scope="session")
def people(server: ServerProcess) -> dict[str, Person]:
    _people.update(make_people(server.data_dir, NAMES))
    return _people


@pytest.fixture
def alice(server: ServerProcess, people: dict[str, Person]) -> Iterator[Api]:
    api = Api(server, people["alice"])
    yield api
    api.client.close()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or reconfigure it."""
    process = ServerProcess(tmp_path / "data")
    yield process
    process.stop()
