"""Execution overhead and output throughput through Tandem, against bare jupyter_client.

Overhead: from `POST /execute` to the cell's output being in a *second* client's document
(server -> worker -> ipykernel -> worker -> server -> update log -> websocket), against the
same code sent by a bare jupyter_client to an ipykernel of the same kernel spec on the same
machine, timed to its IOPub stream message. Trials alternate between the two.

Throughput: lines/s of a print loop that reach the remote client's document, against the
lines/s the bare client reads off IOPub for the same loop.

Sandbox: the worker's own kernel start (sandbox, cgroup, ipykernel up, `print` sent, first
output back) and a warm execute -> output, bubblewrap against --unsafe-no-sandbox, trials
alternating, same environment.

    python bench/execute.py [--trials 40] [--lines 200000] [--starts 10]
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
from pycrdt import Array, Map

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels import cgroups
from kernels import messages as m
from kernels.environments import EnvironmentStore
from kernels.kernel import RunningKernel
from kernels.sandbox import Sandboxer
from tests.support import (
    ENVS_DIR,
    Api,
    ServerProcess,
    YClient,
    make_people,
    notebook_with_code,
    sync_url,
)


def output_text(client: YClient, cell_id: str) -> str:
    for cell in client.cells:
        if isinstance(cell, Map) and cell.get("id") == cell_id:
            outputs = cell.get("outputs")
            if not isinstance(outputs, Array):
                return ""
            return "".join(str(o.get("text", "")) for o in outputs if isinstance(o, Map))
    return ""


class Watch:
    """Wakes on every change of the watched client's document; `wait` returns once a cell's
    output ends with the expected text (checked outside the transaction)."""

    def __init__(self, client: YClient) -> None:
        self.client = client
        self.changed = asyncio.Event()
        client.doc.observe(lambda _event: self.changed.set())

    async def wait(self, cell_id: str, expected: str) -> None:
        while not output_text(self.client, cell_id).endswith(expected):
            self.changed.clear()
            await self.changed.wait()


async def tandem_overhead(api: Api, nb: str, cell_id: str, watch: Watch, marker: str) -> float:
    started = time.perf_counter()
    response = api.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [cell_id]})
    assert response.status_code == 202, response.text
    await asyncio.wait_for(watch.wait(cell_id, f"{marker}\n"), 60)
    return (time.perf_counter() - started) * 1000


async def bare_run(client: Any, code: str, until: str) -> tuple[float, int]:
    """Run `code`; time until a stream message ending with `until`; count stream lines."""
    started = time.perf_counter()
    msg_id = client.execute(code)
    lines = 0
    while True:
        msg = await client.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text = msg["content"]["text"]
            lines += text.count("\n")
            if text.endswith(until):
                elapsed = (time.perf_counter() - started) * 1000
                break
    while True:  # let the kernel go idle before the next trial
        msg = await client.get_iopub_msg(timeout=60)
        idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        if idle and msg["parent_header"].get("msg_id") == msg_id:
            return elapsed, lines


def table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


async def main(trials: int, lines: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(
            Path(tmp) / "tandem",
            env={"TANDEM_LOCAL_WORKER": "true", "TANDEM_ROOM_GRACE_SECONDS": "30"},
        )
        server.start()
        manager = AsyncKernelManager(kernel_name="python3")
        try:
            person = make_people(server.data_dir, ["bench"])["bench"]
            api = Api(server, person)
            flood = f"for i in range({lines}):\n    print(i)"
            nb, (probe, flood_cell) = notebook_with_code(api, ["print(MARK)", flood])
            await manager.start_kernel()
            bare = manager.client()
            bare.start_channels()
            await bare.wait_for_ready(timeout=60)
            async with YClient(sync_url(server, nb, person.token)) as watcher:
                watch = Watch(watcher)
                # Warm both: the first run starts the Tandem kernel.
                for marker in ("warm-1", "warm-2"):
                    source = next(c for c in watcher.cells if c["id"] == probe)["source"]
                    source.clear()
                    source += f"print({marker!r})"
                    await asyncio.sleep(0.05)
                    await tandem_overhead(api, nb, probe, watch, marker)
                    await bare_run(bare, f"print({marker!r})", f"{marker}\n")
                ours, theirs = [], []
                for trial in range(trials):
                    marker = f"m{trial}"
                    source = next(c for c in watcher.cells if c["id"] == probe)["source"]
                    source.clear()
                    source += f"print({marker!r})"
                    await asyncio.sleep(0.05)  # the edit reaches the server first
                    ours.append(await tandem_overhead(api, nb, probe, watch, marker))
                    theirs.append((await bare_run(bare, f"print({marker!r})", f"{marker}\n"))[0])

                last = f"{lines - 1}\n"
                tandem_ms = await tandem_overhead(api, nb, flood_cell, watch, str(lines - 1))
                shown = output_text(watcher, flood_cell).count("\n")
                bare_ms, bare_lines = await bare_run(bare, flood, last)
        finally:
            with_client = locals().get("bare")
            if with_client is not None:
                with_client.stop_channels()
            await manager.shutdown_kernel(now=True)
            server.stop()

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    print(f"\nExecution overhead, {trials} alternating trials (ms, execute -> output seen)")
    table(
        [
            ("path", "median", "p90", "ratio (median)"),
            (
                "tandem: REST -> worker -> remote doc",
                f"{statistics.median(ours):.2f}",
                f"{pct(ours, 0.9):.2f}",
                f"{statistics.median(ours) / statistics.median(theirs):.2f}x",
            ),
            (
                "bare jupyter_client -> IOPub",
                f"{statistics.median(theirs):.2f}",
                f"{pct(theirs, 0.9):.2f}",
                "1.00x",
            ),
        ]
    )
    ours_rate = shown / (tandem_ms / 1000)
    theirs_rate = bare_lines / (bare_ms / 1000)
    print(f"\nOutput throughput, print loop of {lines:,} lines")
    table(
        [
            ("path", "lines seen", "seconds", "lines/s"),
            ("tandem (remote doc)", f"{shown:,}", f"{tandem_ms / 1000:.2f}", f"{ours_rate:,.0f}"),
            (
                "bare jupyter_client",
                f"{bare_lines:,}",
                f"{bare_ms / 1000:.2f}",
                f"{theirs_rate:,.0f}",
            ),
        ]
    )
    print(f"throughput ratio tandem/bare: {ours_rate / theirs_rate:.2f}")


async def boxed_kernel(
    sandboxer: Sandboxer, store: EnvironmentStore, outputs: asyncio.Queue[m.FromWorker]
) -> tuple[RunningKernel, float]:
    """Start a kernel the way the worker does; return it and ms until its first output."""
    started = time.perf_counter()
    environment = await store.get(m.Environment(name="default"))
    kernel_id = f"bench{time.monotonic_ns()}"
    launch = sandboxer.prepare(kernel_id, environment, "bench", [], m.Limits())
    kernel = RunningKernel(kernel_id, [], outputs.put, launch=launch, max_output_bytes=1 << 20)
    await kernel.start()
    await run_boxed(kernel, outputs, "first")
    return kernel, (time.perf_counter() - started) * 1000


async def run_boxed(kernel: RunningKernel, outputs: asyncio.Queue[m.FromWorker], mark: str) -> None:
    kernel.execute(mark, f"print({mark!r})")
    while True:
        message = await asyncio.wait_for(outputs.get(), 60)
        if isinstance(message, m.Output) and message.execution_id == mark:
            return


async def sandbox_costs(starts: int, trials: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        limits, _ = cgroups.detect()
        store = EnvironmentStore(ENVS_DIR)
        kinds = {
            kind: Sandboxer(kind, limits, state_dir=Path(tmp) / kind)
            for kind in ("bubblewrap", "none")
        }
        for sandboxer in kinds.values():
            sandboxer.probe()
        cold: dict[str, list[float]] = {kind: [] for kind in kinds}
        warm: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(starts):
            for kind, sandboxer in kinds.items():
                outputs: asyncio.Queue[m.FromWorker] = asyncio.Queue()
                kernel, ms = await boxed_kernel(sandboxer, store, outputs)
                cold[kind].append(ms)
                for trial in range(trials // starts):
                    began = time.perf_counter()
                    await run_boxed(kernel, outputs, f"w{trial}")
                    warm[kind].append((time.perf_counter() - began) * 1000)
                await kernel.shutdown()
        limits.close()
    base_cold = statistics.median(cold["none"])
    base_warm = statistics.median(warm["none"])
    print(f"\nSandbox cost, {starts} cold starts and {len(warm['none'])} warm runs each (ms)")
    table(
        [
            ("kernel", "cold start median", "warm run median", "cold diff / warm ratio"),
            *(
                (
                    kind,
                    f"{statistics.median(cold[kind]):.0f}",
                    f"{statistics.median(warm[kind]):.2f}",
                    f"{statistics.median(cold[kind]) - base_cold:+.0f} ms / "
                    f"{statistics.median(warm[kind]) / base_warm:.2f}x",
                )
                for kind in kinds
            ),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--starts", type=int, default=10, help="cold starts per sandbox kind")
    args = parser.parse_args()

    async def both() -> None:  # one event loop: jupyter_client's ZMQ context is per loop
        await sandbox_costs(args.starts, args.trials)
        await main(args.trials, args.lines)

    asyncio.run(both())
