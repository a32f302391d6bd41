"""The fuzzers' settings: a seed (printed; `--fuzz-seed N` replays it) and a budget (seconds
of fuzzing per fuzzer: short in CI, hours with `--long`)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Api, Person, ServerProcess, make_people

CI_SECONDS = 12.0
LONG_SECONDS = 4 * 3600.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        for item in items:
            if Path(str(item.fspath)).parent == Path(__file__).parent:
                item.add_marker(pytest.mark.timeout(LONG_SECONDS + 600))


@pytest.fixture
def fuzz_seed(request: pytest.FixtureRequest) -> int:
    given = request.config.getoption("--fuzz-seed")
    seed = int(given) if given is not None else random.randrange(2**32)
    print(f"\nfuzz seed: {seed} (replay with --fuzz-seed {seed})")
    return seed


@pytest.fixture
def fuzz_seconds(request: pytest.FixtureRequest) -> float:
    return LONG_SECONDS if request.config.getoption("--long") else CI_SECONDS


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("fuzz"))
    server.start()
    yield server
    server.stop()
    log = server.log()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def fuzz_people(fuzz_server: ServerProcess) -> dict[str, Person]:
    return make_people(fuzz_server.data_dir, ["owner", "editor"])


@pytest.fixture
def owner(fuzz_server: ServerProcess, fuzz_people: dict[str, Person]) -> Iterator[Api]:
    api = Api(fuzz_server, fuzz_people["owner"])
    yield api
    api.client.close()
