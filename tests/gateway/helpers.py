"""Reading a notebook's cells from a live Yjs replica, and waiting for runs to finish."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import websockets
from pycrdt import Map

from tests.support import Api, ServerProcess, YClient, eventually


def cell(client: YClient, cell_id: str) -> dict[str, Any]:
    for item in client.cells:
        if isinstance(item, Map) and item.get("id") == cell_id:
            return dict(item.to_py())
    raise AssertionError(f"no cell {cell_id}")


def text_of(client: YClient, cell_id: str) -> str:
    """What the cell's outputs show as text: streams, text/plain data, errors."""
    parts = []
    for output in cell(client, cell_id).get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(str(output["text"]))
        elif output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def finished_since(client: YClient, cell_id: str, since_ms: int) -> bool:
    view = cell(client, cell_id)
    info = view.get("metadata", {}).get("executionInfo") or {}
    return view.get("execution_state") == "idle" and info.get("timestamp", 0) >= since_ms


async def run(
    api: Api, notebook_id: str, cell_ids: list[str], client: YClient, timeout: float = 60
) -> None:
    """Run cells and wait until every one of them has finished (seen in `client`)."""
    since = int(time.time() * 1000) - 5
    response = api.client.post(f"/api/notebooks/{notebook_id}/execute", json={"cell_ids": cell_ids})
    assert response.status_code == 202, response.text
    await eventually(lambda: all(finished_since(client, c, since) for c in cell_ids), timeout)


def status(api: Api, notebook_id: str) -> dict[str, Any]:
    response = api.client.get(f"/api/notebooks/{notebook_id}/runtime")
    assert response.status_code == 200, response.text
    return dict(response.json())


class Events:
    """The events websocket of a notebook, collecting what arrives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[dict[str, Any]] = []
        self._ws: websockets.ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Events:
        self._ws = await websockets.connect(self.url)
        self._task = asyncio.create_task(self._read(self._ws))
        await eventually(lambda: any(e["type"] == "hello" for e in self.received))
        return self

    async def _read(self, ws: websockets.ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                self.received.append(json.loads(raw))

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == kind]

    async def wait(self, kind: str, check: Any = None, timeout: float = 30) -> dict[str, Any]:
        def match() -> dict[str, Any] | None:
            return next((e for e in self.of(kind) if check is None or check(e)), None)

        await eventually(lambda: match() is not None, timeout)
        found = match()
        assert found is not None
        return found


def events_url(server: ServerProcess, notebook_id: str, token: str) -> str:
    return f"{server.ws_url}/api/notebooks/{notebook_id}/events?token={token}"
