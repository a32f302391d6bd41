"""Two replicas on one PostgreSQL and one Redis (Debian's, started here): how much later an
edit reaches a client on the other replica than one on the sender's, and how many updates
a second go through when rooms are spread over both replicas.

    python bench/replicas.py [--quick]

Latency: one edit at a time, a sender on replica a, one receiver on a and one on b.
Throughput: R rooms, each with a writer (on a or b, alternately) sending as fast as the
server takes them and a reader on each replica; deliveries per second until every reader
has every update. The same load with everyone on one replica is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import websockets
from pycrdt import Doc, Text, YSyncMessageType
from servers import ROOT

from server import protocol
from tests.support import Api, ServerProcess, make_people
from tests.support_pg import running_postgres
from tests.support_redis import running_redis

assert ROOT.is_dir()  # importing `servers` put the repository on sys.path


def sync(server: ServerProcess, notebook: str, token: str) -> str:
    return f"{server.ws_url}/api/notebooks/{notebook}/sync?token={token}"


async def drain(ws: websockets.ClientConnection) -> None:
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(ws.recv(), 0.2)


async def received(ws: websockets.ClientConnection, update: bytes, started: float) -> float:
    while True:
        message = await ws.recv()
        if isinstance(message, bytes) and message.endswith(update):
            return (time.perf_counter() - started) * 1000


async def latency(a: ServerProcess, b: ServerProcess, api: Api, token: str, edits: int) -> None:
    notebook = api.create("latency")
    async with (
        websockets.connect(sync(a, notebook, token), compression=None) as sender,
        websockets.connect(sync(a, notebook, token), compression=None) as same,
        websockets.connect(sync(b, notebook, token), compression=None) as cross,
    ):
        await asyncio.gather(drain(sender), drain(same), drain(cross))
        doc: Doc = Doc()
        text = doc.get("t", type=Text)
        same_ms: list[float] = []
        cross_ms: list[float] = []
        for _ in range(edits):
            before = doc.get_state()
            text.insert(0, "x")
            update = doc.get_update(before)
            started = time.perf_counter()
            await sender.send(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))
            here, there = await asyncio.gather(
                received(same, update, started), received(cross, update, started)
            )
            same_ms.append(here)
            cross_ms.append(there)
            await asyncio.sleep(0.005)
    print(f"\n### One edit at a time, {edits} edits, sender on replica a\n")
    print("| receiver | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, values in (("same replica (a)", same_ms), ("other replica (b)", cross_ms)):
        values.sort()
        p95, p99 = values[int(len(values) * 0.95)], values[int(len(values) * 0.99)]
        print(f"| {name} | {statistics.median(values):.2f} | {p95:.2f} | {p99:.2f} |")
    gap = statistics.median(cross_ms) - statistics.median(same_ms)
    print(f"\ncross-replica p50 - same-replica p50: {gap:.2f} ms")


async def room_load(
    servers: tuple[ServerProcess, ServerProcess],
    writer_on: ServerProcess,
    notebook: str,
    token: str,
    updates: int,
) -> int:
    """One writer, one reader per server; returns deliveries once all readers have all."""
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    frames, last = [], b""
    for n in range(updates):
        before = doc.get_state()
        text.insert(len(text), f"{n},")
        last = doc.get_update(before)
        frames.append(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, last))
    async with contextlib.AsyncExitStack() as stack:
        writer = await stack.enter_async_context(
            websockets.connect(sync(writer_on, notebook, token), compression=None)
        )
        readers = [
            await stack.enter_async_context(
                websockets.connect(sync(server, notebook, token), compression=None)
            )
            for server in servers
        ]
        await asyncio.gather(drain(writer), *map(drain, readers))
        sending = asyncio.gather(*(writer.send(frame) for frame in frames))
        await asyncio.gather(sending, *(received(r, last, 0.0) for r in readers))
    return updates * len(readers)


async def throughput(
    servers: tuple[ServerProcess, ServerProcess], api: Api, token: str, rooms: int, updates: int
) -> tuple[float, float]:
    notebooks = [api.create(f"room {i}") for i in range(rooms)]
    started = time.perf_counter()
    delivered = sum(
        await asyncio.gather(
            *(
                room_load(servers, servers[i % 2], notebook, token, updates)
                for i, notebook in enumerate(notebooks)
            )
        )
    )
    elapsed = time.perf_counter() - started
    return delivered / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", choices=["latency", "throughput", "all"], default="all")
    args = parser.parse_args()
    edits, rooms, updates = (200, 10, 100) if args.quick else (500, 20, 200)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_postgres() as postgres,
        running_redis() as redis_server,
    ):
        url = postgres.create_database("bench")
        env = {
            "TANDEM_DATABASE_URL": url,
            "TANDEM_REDIS_URL": redis_server.url,
            "TANDEM_ROOM_GRACE_SECONDS": "30",
        }
        a = ServerProcess(Path(tmp) / "a", env=dict(env))
        a.start()
        b = ServerProcess(Path(tmp) / "b", env=dict(env))
        b.start()
        person = make_people(Path(tmp), ["bench"], database_url=url)["bench"]
        api = Api(a, person)
        try:
            if args.part in ("latency", "all"):
                asyncio.run(latency(a, b, api, person.token, edits))
            if args.part == "latency":
                return
            print(f"\n### Throughput: {rooms} rooms, a writer sending {updates} updates in each")
            print("\n| rooms on | readers | delivered/s | seconds |")
            print("|---|---|---|---|")
            for label, servers in (("one replica", (a, a)), ("both replicas", (a, b))):
                rate, elapsed = asyncio.run(throughput(servers, api, person.token, rooms, updates))
                print(f"| {label} | 2 per room | {rate:,.0f} | {elapsed:.2f} |")
        finally:
            api.client.close()
            a.stop()
            b.stop()


if __name__ == "__main__":
    main()
