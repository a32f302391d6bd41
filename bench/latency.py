"""One edit at a time through each server: the bare path latency of a single update, from one
client sending it to another receiving it, with nothing else going on.

    npm ci --prefix bench/node && python bench/latency.py
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import websockets
from pycrdt import Doc, Text, YSyncMessageType
from servers import Target, start_node_reference, start_relay, start_tandem

from server import protocol

EDITS = 500


async def drain(ws: websockets.ClientConnection) -> None:
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(ws.recv(), 0.2)


async def measure(url: str) -> list[float]:
    async with (
        websockets.connect(url, compression=None) as sender,
        websockets.connect(url, compression=None) as receiver,
    ):
        await asyncio.gather(drain(sender), drain(receiver))
        doc: Doc = Doc()
        text = doc.get("t", type=Text)
        latencies = []
        for _ in range(EDITS):
            before = doc.get_state()
            text.insert(0, "x")
            update = doc.get_update(before)
            started = time.perf_counter()
            await sender.send(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))
            while True:
                message = await receiver.recv()
                if isinstance(message, bytes) and message.endswith(update):
                    break
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)
        return latencies


def main() -> None:
    starters: list[tuple[str, Callable[[], Target]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        starters = [
            ("tandem", lambda: start_tandem(Path(tmp) / "tandem")),
            ("node y-websocket", start_node_reference),
            ("byte relay", start_relay),
        ]
        print(f"\n### One edit at a time, {EDITS} edits, sender to receiver\n")
        print("| server | p50 ms | p99 ms |")
        print("|---|---|---|")
        for name, start in starters:
            target = start()
            try:
                room = target.room("latency")
                url = f"{target.ws_base}/{room}" + (
                    f"?token={target.token}" if target.token else ""
                )
                latencies = sorted(asyncio.run(measure(url)))
                p99 = latencies[int(len(latencies) * 0.99)]
                print(f"| {name} | {statistics.median(latencies):.2f} | {p99:.2f} |")
            finally:
                target.stop()


if __name__ == "__main__":
    main()
