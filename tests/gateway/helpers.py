"""Reading a notebook's cells from a live Yjs replica, and waiting for runs to finish."""

from __future__ import annotations

import time
from typing import Any

from pycrdt import Map

from tests.support import Api, YClient, eventually


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
