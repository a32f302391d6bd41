"""Two `tandem serve` replicas on one real PostgreSQL database and one real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import Api, Person, ServerProcess, make_people
from tests.support_pg import PostgresServer
from tests.support_redis import RedisServer, running_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@dataclass
class Replicas:
    """Replica `a` and replica `b` of one deployment, and its people."""

    a: ServerProcess
    b: ServerProcess
    database_url: str
    people: dict[str, Person]
    _apis: dict[tuple[int, str], Api] = field(default_factory=dict)

    def api(self, server: ServerProcess, name: str) -> Api:
        key = (server.port, name)
        if key not in self._apis:
            self._apis[key] = Api(server, self.people[name])
        return self._apis[key]

    def admin(self) -> Person:
        """An admin of the deployment (made on first use)."""
        if "root" not in self.people:
            root = make_people(
                self.a.data_dir, ["root"], admin=True, database_url=self.database_url
            )
            self.people.update(root)
        return self.people["root"]

    def worker_token(self, name: str) -> str:
        """A new worker token, made by the admin at replica a."""
        self.admin()
        made = self.api(self.a, "root").client.post("/api/workers/tokens", json={"name": name})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])

    def stop(self) -> None:
        for api in self._apis.values():
            api.client.close()
        for server in (self.a, self.b):
            server.stop()

    def check_logs(self) -> None:
        for server in (self.a, self.b):
            log = server.log()
            assert "Traceback" not in log, log[-3000:]
            assert "compaction of" not in log, log[-3000:]  # a compaction that failed


def start_replicas(postgres: PostgresServer, redis_url: str, root: Path, **env: str) -> Replicas:
    """Two replicas on a new database; alice, bob and carol exist."""
    url = postgres.create_database("replicas")
    settings = {"TANDEM_DATABASE_URL": url, "TANDEM_REDIS_URL": redis_url, **env}
    a = ServerProcess(root / "a", env=dict(settings))
    b = ServerProcess(root / "b", env=dict(settings))
    # Together, as a deployment starts them (one migrates, the other waits its turn).
    with ThreadPoolExecutor(2) as pool:
        for started in [pool.submit(a.start), pool.submit(b.start)]:
            started.result()
    people = make_people(root, ["alice", "bob", "carol"], database_url=url)
    return Replicas(a, b, url, people)


@pytest.fixture(scope="session")
def replicas(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    """One pair for every test here (starting one costs seconds on a 2-core machine). It
    compacts every 20 updates, so every test runs with compaction going on. A test that
    kills something starts it again before it ends."""
    root = tmp_path_factory.mktemp("replicas")
    pair = start_replicas(postgres, redis_server.url, root, TANDEM_COMPACT_AFTER_UPDATES="20")
    yield pair
    pair.stop()
    pair.check_logs()
