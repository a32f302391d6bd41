"""A 20,000-cell notebook opens, cold after a fresh server start and warm while someone has
it open, and the server keeps answering everyone else meanwhile. How long anything takes is
bench/stalls.py's business; this checks that it works."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pycrdt import Array, Doc, Map, Text, merge_updates
from sqlalchemy import text

from tests.support import ServerProcess, YClient, start_with_alice, stored, sync_url
from tests.support_pg import SQLITE

CELLS = 20_000


@pytest.fixture(scope="module")
def backend() -> str:
    """One back end is enough to see the loop stay free (bench/stalls.py times it)."""
    return SQLITE


@dataclass
class HealthProbe:
    """Asks `GET /api/health` every 10 ms in a thread; keeps (sent, answered, status)."""

    url: str
    answers: list[tuple[float, float, int]] = field(default_factory=list)

    def during(self, started: float, ended: float) -> list[int]:
        """The statuses of the probes that were in flight at some point of [started, ended]."""
        return [status for sent, done, status in self.answers if sent < ended and done > started]

    @contextmanager
    def running(self) -> Iterator[HealthProbe]:
        stop = threading.Event()

        def probe() -> None:
            deadline = time.monotonic() + 120
            with httpx.Client(base_url=self.url, timeout=60) as client:
                while not stop.is_set() and time.monotonic() < deadline:
                    sent = time.monotonic()
                    try:
                        status = client.get("/api/health").status_code
                    except httpx.HTTPError:
                        status = 0
                    self.answers.append((sent, time.monotonic(), status))
                    stop.wait(0.01)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(70)


def with_cells(state: bytes, count: int) -> bytes:
    """`state` with `count` more code cells (the YNotebook schema) in front. Inserted at the
    front, last first: appending walks the whole array each time."""
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    cells = doc.get("cells", type=Array)
    with doc.transaction():
        for i in reversed(range(count)):
            cell = {
                "id": f"big-{i}",
                "cell_type": "code",
                "source": Text(f"x{i} = {i}\nprint(x{i} * 2)"),
                "metadata": Map(),
                "outputs": Array(),
                "execution_count": None,
                "execution_state": "idle",
            }
            cells.insert(0, Map(cell))
    return doc.get_update()


def store_cells(server: ServerProcess, notebook_id: str, count: int) -> None:
    """Give a stopped server's notebook `count` more cells, in its stored snapshot (as if
    they had been typed long ago; sending them through the schema guard is not this test's
    subject)."""
    key = {"id": notebook_id}
    with stored(server) as database:
        state = database.execute(
            text("SELECT data FROM snapshots WHERE notebook_id = :id"), key
        ).scalar_one()
        tail = database.execute(
            text("SELECT data FROM update_log WHERE notebook_id = :id ORDER BY seq"), key
        ).scalars()
        merged = merge_updates(bytes(state), *(bytes(data) for data in tail))
        database.execute(
            text("UPDATE snapshots SET data = :data WHERE notebook_id = :id"),
            {**key, "data": with_cells(merged, count)},
        )
        database.execute(text("DELETE FROM update_log WHERE notebook_id = :id"), key)


async def timed_open(url: str) -> tuple[YClient, float, float]:
    started = time.monotonic()
    client = await YClient(url).connect()
    return client, started, time.monotonic()


async def test_a_20000_cell_notebook_opens_cold_and_warm_while_health_answers(
    fresh_server: ServerProcess,
) -> None:
    alice, api = start_with_alice(fresh_server)
    notebook = api.create("twenty thousand cells")
    url = sync_url(fresh_server, notebook, alice.token)
    api.client.close()
    fresh_server.stop()
    store_cells(fresh_server, notebook, CELLS)
    fresh_server.start()

    with HealthProbe(fresh_server.url).running() as health:
        cold, cold_started, cold_ended = await timed_open(url)
        try:
            assert len(cold.cells) == CELLS + 1
            assert cold.cells[CELLS - 1]["id"] == f"big-{CELLS - 1}"
            warm, warm_started, warm_ended = await timed_open(url)
            try:
                assert len(warm.cells) == CELLS + 1
                assert str(warm.cells[0]["source"]) == "x0 = 0\nprint(x0 * 2)"
            finally:
                await warm.close()
        finally:
            await cold.close()
        await asyncio.sleep(0.05)  # a probe or two after the opens

    for started, ended in ((cold_started, cold_ended), (warm_started, warm_ended)):
        during = health.during(started, ended)
        assert during, "no health probe ran while the notebook opened"
        assert set(during) == {200}, during
    assert "Traceback" not in fresh_server.log()
    # Not this test's subject, and slow with this room open: stopping it takes seconds.
    fresh_server.kill()
