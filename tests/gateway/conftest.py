from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Api, Person, ServerProcess, WorkerProcess, make_people
from tests.support_pg import DatabaseUrls


class Cluster:
    """A server, its admin, and the workers a test starts."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        url = server.env.get("TANDEM_DATABASE_URL", "")
        self.admin = make_people(server.data_dir, ["root"], admin=True, database_url=url)["root"]
        self.people = make_people(server.data_dir, ["ann", "ben"], database_url=url)
        self.admin_api = Api(server, self.admin)
        self.workers: list[WorkerProcess] = []
        self._apis: list[Api] = []

    def api(self, name: str) -> Api:
        api = Api(self.server, self.people[name])
        self._apis.append(api)
        return api

    def close_apis(self) -> None:
        """Close the clients a test made, even when it failed half way."""
        for api in self._apis:
            api.client.close()
        self._apis.clear()

    def person(self, name: str) -> Person:
        return self.people[name]

    def worker_token(self, name: str) -> str:
        response = self.admin_api.client.post("/api/workers/tokens", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def start_worker(self, name: str, **kwargs: object) -> WorkerProcess:
        worker = WorkerProcess(self.server, self.worker_token(name), name, **kwargs)  # type: ignore[arg-type]
        self.workers.append(worker.start())
        return worker

    def workers_online(self) -> list[dict[str, object]]:
        response = self.admin_api.client.get("/api/workers")
        assert response.status_code == 200, response.text
        return list(response.json())

    def close(self) -> None:
        self.close_apis()
        for worker in self.workers:
            worker.stop()
        self.admin_api.client.close()


def start_cluster(data_dir: Path, **env: str) -> tuple[Cluster, ServerProcess]:
    server = ServerProcess(data_dir, env={"TANDEM_WORKER_HEARTBEAT_SECONDS": "1", **env})
    server.start()
    return Cluster(server), server


@contextlib.contextmanager
def running_cluster(
    data_dir: Path, workers: dict[str, list[str]] | None = None, **env: str
) -> Iterator[Cluster]:
    """A server with these workers (name: extra arguments); stopped afterwards, and its log
    checked: no traceback, no token."""
    cluster, server = start_cluster(data_dir, **env)
    try:
        for name, args in (workers or {}).items():
            cluster.start_worker(name, args=args)
        if workers:
            wait_for_workers(cluster, len(workers))
        yield cluster
    finally:
        cluster.close()
        server.stop()
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    for person in [cluster.admin, *cluster.people.values()]:
        assert person.token not in log


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, database_urls: DatabaseUrls
) -> Iterator[Cluster]:
    """One server with one CPU worker, shared by the tests of a module (on the back end of
    the `backend` fixture)."""
    with running_cluster(
        tmp_path_factory.mktemp("gateway"),
        {"cpu-1": ["--max-kernels", "64"]},
        TANDEM_EXECUTE_SYNC_TIMEOUT_SECONDS="2",
        **database_urls.env("gateway"),
    ) as shared:
        yield shared


@pytest.fixture(autouse=True)
def _close_test_clients(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    # Module-scoped clusters outlive the test; a test's own cluster closes its clients itself.
    for name in ("cluster", "web"):
        if name in request.fixturenames:
            request.getfixturevalue(name).close_apis()


def wait_for_workers(cluster: Cluster, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(cluster.workers_online()) < count:
        if time.monotonic() > deadline:
            raise AssertionError("workers did not connect")
        time.sleep(0.1)
