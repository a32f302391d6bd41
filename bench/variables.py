"""Variable inspector latency: `POST /api/notebooks/{id}/variables` -> server -> worker ->
a silent execute_request whose probe describes every user variable -> back, timed at the
HTTP client on a warm kernel (the server and its local worker on this machine), for
namespaces of a few sizes.

    python bench/variables.py [--trials 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.complete import pct, table
from tests.gateway.helpers import finished_since
from tests.support import (
    Api,
    ServerProcess,
    YClient,
    eventually,
    make_people,
    notebook_with_code,
    sync_url,
)

SIZES = [10, 100, 500]


def namespace(count: int) -> str:
    """`count` variables of everyday kinds: numbers, strings, lists, dicts."""
    return (
        f"for i in range({count}):\n"
        "    kind = i % 4\n"
        "    globals()[f'v{i:04d}'] = (i, 'text ' * i, list(range(i)), {'k': i})[kind]\n"
        "del i, kind"
    )


def ask(api: Api, nb: str) -> tuple[float, int]:
    while True:
        started = time.perf_counter()
        response = api.client.post(f"/api/notebooks/{nb}/variables")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        if response.json()["status"] == "ok":
            return elapsed, len(response.json()["variables"])
        time.sleep(0.2)


async def main(trials: int) -> None:
    rows: list[tuple[str, ...]] = [("variables", "listed", "p50 ms", "p95 ms", "max ms")]
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "tandem", env={"TANDEM_LOCAL_WORKER": "true"})
        server.start()
        try:
            person = make_people(server.data_dir, ["bench"])["bench"]
            api = Api(server, person)
            for size in SIZES:
                nb, (setup,) = notebook_with_code(api, [namespace(size)])
                async with YClient(sync_url(server, nb, person.token)) as watcher:
                    since = int(time.time() * 1000) - 5
                    response = api.client.post(
                        f"/api/notebooks/{nb}/execute", json={"cell_ids": [setup]}
                    )
                    assert response.status_code == 202, response.text
                    await eventually(lambda c=setup, s=since: finished_since(watcher, c, s), 120)
                ask(api, nb)  # warm
                times, listed = [], 0
                for _ in range(trials):
                    elapsed, listed = ask(api, nb)
                    times.append(elapsed)
                rows.append(
                    (
                        str(size),
                        str(listed),
                        f"{statistics.median(times):.1f}",
                        f"{pct(times, 0.95):.1f}",
                        f"{max(times):.1f}",
                    )
                )
        finally:
            server.stop()
    print(f"\nVariable inspector latency, {trials} requests per size, warm kernel")
    table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    asyncio.run(main(parser.parse_args().trials))
