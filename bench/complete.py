"""Completion (Tab) and inspection (Shift+Tab) latency through Tandem, against bare
jupyter_client.

Tandem: `POST /api/notebooks/{id}/complete` -> server -> worker socket -> sandboxed
ipykernel's shell channel -> back, timed at the HTTP client, on a warm kernel (the server
and its local worker on this machine). Bare: the same `complete_request` sent by
jupyter_client straight to an ipykernel on the same machine. Trials alternate between the
two over a few everyday prefixes. The budget is results on screen within 150 ms p95.

    python bench/complete.py [--trials 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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

SETUP = "import os, json, collections\nvalue_of_interest = 42"
PREFIXES = ["os.pa", "json.lo", "collections.Or", "value_of_", "pri", "os.path.jo"]
INSPECT = ["len", "os.path.join", "json.loads", "print"]


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


def ask(api: Api, nb: str, kind: str, code: str, *, warm: bool = False) -> float:
    """Milliseconds to an "ok" answer; warming up, a "busy" one (a cold jedi) is asked again."""
    while True:
        started = time.perf_counter()
        response = api.client.post(
            f"/api/notebooks/{nb}/{kind}", json={"code": code, "cursor_pos": len(code)}
        )
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        if response.json()["status"] == "ok":
            return elapsed
        assert warm, response.text
        time.sleep(0.5)


async def bare_complete(client: Any, code: str) -> float:
    started = time.perf_counter()
    msg_id = client.complete(code, len(code))
    while True:
        msg = await client.get_shell_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id:
            return (time.perf_counter() - started) * 1000


async def main(trials: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "tandem", env={"TANDEM_LOCAL_WORKER": "true"})
        server.start()
        manager = AsyncKernelManager(kernel_name="python3")
        bare = None
        try:
            person = make_people(server.data_dir, ["bench"])["bench"]
            api = Api(server, person)
            nb, (setup,) = notebook_with_code(api, [SETUP])
            async with YClient(sync_url(server, nb, person.token)) as watcher:
                since = int(time.time() * 1000) - 5
                response = api.client.post(
                    f"/api/notebooks/{nb}/execute", json={"cell_ids": [setup]}
                )
                assert response.status_code == 202, response.text
                await eventually(lambda: finished_since(watcher, setup, since), 120)
            await manager.start_kernel()
            bare = manager.client()
            bare.start_channels()
            await bare.wait_for_ready(timeout=60)
            bare.execute(SETUP)
            # Warm both (a kernel's first completion loads jedi's caches: seconds).
            for code in PREFIXES:
                ask(api, nb, "complete", code, warm=True)
                await bare_complete(bare, code)
            ours, theirs = [], []
            for trial in range(trials):
                code = PREFIXES[trial % len(PREFIXES)]
                ours.append(ask(api, nb, "complete", code))
                theirs.append(await bare_complete(bare, code))
            for code in INSPECT:
                ask(api, nb, "inspect", code, warm=True)
            looks = [ask(api, nb, "inspect", INSPECT[i % len(INSPECT)]) for i in range(trials)]
        finally:
            if bare is not None:
                bare.stop_channels()
            if manager.has_kernel:
                await manager.shutdown_kernel(now=True)
            server.stop()

    print(f"\nCompletion and inspection latency, {trials} requests each, warm kernel (ms)")
    rows: list[tuple[str, ...]] = [("path", "p50", "p95", "max")]
    for name, values in (
        ("tandem complete: REST -> worker -> kernel", ours),
        ("bare jupyter_client complete_request", theirs),
        ("tandem inspect: REST -> worker -> kernel", looks),
    ):
        rows.append(
            (
                name,
                f"{statistics.median(values):.1f}",
                f"{pct(values, 0.95):.1f}",
                f"{max(values):.1f}",
            )
        )
    table(rows)
    verdict = "within" if pct(ours, 0.95) <= 150 else "OVER"
    print(f"completion p95 {pct(ours, 0.95):.1f} ms: {verdict} the 150 ms budget")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    asyncio.run(main(parser.parse_args().trials))
