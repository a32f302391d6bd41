"""Does one person's big operation stall everyone else? A probe asks `GET /api/health` every
10 ms (from a process of its own, so the bench's own work cannot delay it) while one big
operation runs, and the table shows how long the slowest health answer took meanwhile.

    python bench/stalls.py [--quick]

Operations: importing a ~50 MB .ipynb (few cells, big outputs) and a 20,000-cell one;
opening the 20,000-cell notebook's sync socket (y-websocket handshake to sync step 2) cold
(room loaded from the database) and warm (someone has it open); exporting it and saving a
version of it, each cold and warm. An event loop that never blocks answers health in a few
ms whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import nbformat
import psutil
import websockets
from pycrdt import YSyncMessageType
from servers import Target, start_tandem

from server import protocol

PROBE_EVERY = 0.010
PROBE_LIMIT_S = 900.0  # the probe stops by itself whatever happens to the bench
GRACE = 1.0  # seconds a room stays loaded after its last user leaves


@dataclass(frozen=True)
class Sample:
    sent: float  # time.monotonic(), the same clock in every process on Linux
    latency: float
    rss: int


def probe(url: str, pid: int, stop: Event, out: Connection) -> None:
    """Ask for health every PROBE_EVERY s until told to stop; send back every sample."""
    samples: list[Sample] = []
    server = psutil.Process(pid)
    deadline = time.monotonic() + PROBE_LIMIT_S
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            sent = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                client.get("/api/health").raise_for_status()
            latency = time.monotonic() - sent
            samples.append(Sample(sent, latency, server.memory_info().rss))
            time.sleep(max(0.0, PROBE_EVERY - latency))
    out.send(samples)
    out.close()


@dataclass
class Run:
    operation: str
    started: float
    ended: float


def big_outputs_notebook(target_mb: int) -> bytes:
    """Cells whose outputs are big: a 60 KB stream and a 60 KB PNG (base64) each."""
    text = ("loss=0.1234 step=1000 " * 3000)[:60_000]
    png = base64.b64encode(bytes(range(256)) * 176).decode()[:60_000]
    cells = []
    for i in range(target_mb * 1_000_000 // 120_000):
        cell = nbformat.v4.new_code_cell(f"plot({i})", execution_count=i + 1)
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=text),
            nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Fig>"}),
        ]
        cells.append(cell)
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()


def many_cells_notebook(count: int) -> bytes:
    cells = [
        nbformat.v4.new_code_cell(f"x{i} = {i}\nprint(x{i} * 2)  # cell {i}") for i in range(count)
    ]
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()


async def open_sync(url: str) -> int:
    """A y-websocket handshake: send step 1, answer the server's step 1, wait for step 2.
    Returns the size of the server's step 2."""
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP1, b"\x00"))
        while True:
            frame = await asyncio.wait_for(ws.recv(), 120)
            assert isinstance(frame, bytes)
            if frame[:2] == b"\x00\x00":
                await ws.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP2, b"\x00\x00"))
            elif frame[:2] == b"\x00\x01":
                return len(frame)


class Holder:
    """Keeps a notebook's room open (a person with it open in a browser) on its own loop."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._loop = asyncio.new_event_loop()
        self._ws: websockets.ClientConnection | None = None

    def __enter__(self) -> Holder:
        self._loop.run_until_complete(self._open())
        return self

    async def _open(self) -> None:
        self._ws = await websockets.connect(self._url, max_size=None, compression=None)
        await self._ws.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP1, b"\x00"))
        while (await asyncio.wait_for(self._ws.recv(), 120))[:2] != b"\x00\x01":
            pass

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._loop.run_until_complete(self._ws.close())
        self._loop.close()


class Bench:
    def __init__(self, target: Target, repeats: int) -> None:
        assert target.api is not None and target.tandem is not None
        self.target = target
        self.server = target.tandem
        self.client = httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {target.token}"},
            timeout=600,
        )
        self.repeats = repeats
        self.runs: list[Run] = []

    @contextlib.contextmanager
    def timed(self, operation: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.runs.append(Run(operation, started, time.monotonic()))

    def repeat(self, operation: str, action: Callable[[], object]) -> None:
        for _ in range(self.repeats):
            with self.timed(operation):
                action()
            time.sleep(0.3)

    def upload(self, name: str, raw: bytes) -> str:
        response = self.client.post("/api/notebooks", files={"file": (name, raw)})
        response.raise_for_status()
        return str(response.json()["id"])

    def sync_url(self, notebook_id: str) -> str:
        return f"{self.server.ws_url}/api/notebooks/{notebook_id}/sync?token={self.target.token}"

    def export(self, notebook_id: str) -> None:
        response = self.client.get(f"/api/notebooks/{notebook_id}/export")
        response.raise_for_status()
        assert len(response.json()["cells"]) > 0

    def save_version(self, notebook_id: str) -> None:
        response = self.client.post(f"/api/notebooks/{notebook_id}/versions", json={"name": "b"})
        response.raise_for_status()

    def until_unloaded(self) -> None:
        time.sleep(GRACE + 1.5)

    def run(self, big_mb: int, cell_count: int) -> None:
        time.sleep(1)
        with self.timed("(idle: nothing else running)"):
            time.sleep(2)
        big = big_outputs_notebook(big_mb)
        self.repeat(
            f"import {len(big) / 1e6:.0f} MB .ipynb (big outputs)",
            lambda: self.upload("big.ipynb", big),
        )
        many = many_cells_notebook(cell_count)
        label = f"{cell_count:,}-cell"
        with self.timed(f"import {label} .ipynb ({len(many) / 1e6:.1f} MB)"):
            notebook = self.upload("many.ipynb", many)
        url = self.sync_url(notebook)
        for _ in range(self.repeats):
            self.until_unloaded()
            with self.timed(f"open {label} cold (sync step 2)"):
                asyncio.run(open_sync(url))
            self.until_unloaded()
            with self.timed(f"export {label} cold"):
                self.export(notebook)
            with self.timed(f"save version of {label} cold"):
                self.save_version(notebook)
        with Holder(url):
            time.sleep(1)  # the holder's own (cold) open is over before the warm ones start
            self.repeat(f"open {label} warm (sync step 2)", lambda: asyncio.run(open_sync(url)))
            self.repeat(f"export {label} warm", lambda: self.export(notebook))
            self.repeat(f"save version of {label} warm", lambda: self.save_version(notebook))
        time.sleep(0.5)


def report(runs: list[Run], samples: list[Sample]) -> None:
    print("\n### /api/health while one big operation runs (probe every 10 ms)\n")
    columns = ["operation", "runs", "duration s (median)", "worst health ms", "p99 health ms"]
    print("| " + " | ".join([*columns, "peak RSS MB"]) + " |")
    print("|---|---|---|---|---|---|")
    by_operation: dict[str, list[Run]] = {}
    for run in runs:
        by_operation.setdefault(run.operation, []).append(run)
    for operation, its_runs in by_operation.items():
        during = [
            s
            for s in samples
            if any(s.sent < r.ended and s.sent + s.latency > r.started for r in its_runs)
        ]
        latencies = sorted(s.latency * 1000 for s in during) or [0.0]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        rss = max((s.rss for s in during), default=0) / 2**20
        duration = statistics.median(r.ended - r.started for r in its_runs)
        print(
            f"| {operation} | {len(its_runs)} | {duration:.2f} | {latencies[-1]:.0f} | "
            f"{p99:.0f} | {rss:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run of each, smaller imports")
    args = parser.parse_args()
    repeats, big_mb, cells = (1, 20, 20_000) if args.quick else (3, 50, 20_000)
    with tempfile.TemporaryDirectory() as tmp:
        target = start_tandem(
            Path(tmp) / "tandem",
            {"TANDEM_ROOM_GRACE_SECONDS": str(GRACE), "TANDEM_MAX_UPLOAD_MB": "256"},
        )
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        receiving, sending = context.Pipe(duplex=False)
        assert target.tandem is not None
        prober = context.Process(
            target=probe, args=(target.tandem.url, target.pid, stop, sending), daemon=True
        )
        prober.start()
        bench = Bench(target, repeats)
        try:
            bench.run(big_mb, cells)
        finally:
            stop.set()
            samples: list[Sample] = receiving.recv() if receiving.poll(30) else []
            prober.join(10)
            if prober.is_alive():
                prober.kill()
            bench.client.close()
            target.stop()
        report(bench.runs, samples)


if __name__ == "__main__":
    main()
