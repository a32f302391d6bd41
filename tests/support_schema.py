"""Helpers for the schema guard's tests and fuzzers: crafted editor updates sent over a real
sync socket, and the checks that a notebook is still whole afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

import nbformat
import websockets
from pycrdt import Array, Doc, Map, Text, YSyncMessageType

from server import protocol
from tests.support import Api, ServerProcess

DENIED = b"\x02\x00"


def cell_at(doc: Doc[Any], index: int = 0) -> Map[Any]:
    cell: Map[Any] = doc.get("cells", type=Array)[index]
    return cell


def meta_of(doc: Doc[Any]) -> Map[Any]:
    meta: Map[Any] = doc.get("meta", type=Map)
    return meta


def _stream_with_map_text(doc: Doc[Any]) -> None:
    output = Map({"output_type": "stream", "name": "stdout", "text": Map({"a": "b"})})
    cell_at(doc)["outputs"].append(output)


def valid_cell(**extra: Any) -> Map[Any]:
    fields: dict[str, Any] = {
        "cell_type": "code",
        "source": Text("x = 1"),
        "metadata": Map(),
        "outputs": Array(),
        "execution_count": None,
        **extra,
    }
    return Map(fields)


# The schema poisonings of issue 12, each as an edit an editor could make.
POISONS: dict[str, Callable[[Doc[Any]], None]] = {
    "a number in cells": lambda doc: doc.get("cells", type=Array).append(1.5),
    "a string in cells": lambda doc: doc.get("cells", type=Array).append("not a cell"),
    "a Text in cells": lambda doc: doc.get("cells", type=Array).append(Text("not a cell")),
    "an id-less map in cells": lambda doc: doc.get("cells", type=Array).append(valid_cell()),
    "nbformat as a word": lambda doc: meta_of(doc).__setitem__("nbformat", "four"),
    "NaN in cell metadata": lambda doc: cell_at(doc)["metadata"].__setitem__("x", float("nan")),
    "NaN in notebook metadata": lambda doc: meta_of(doc)["metadata"].__setitem__("x", float("nan")),
    "outputs as a string": lambda doc: cell_at(doc).__setitem__("outputs", "oops"),
    "stream text as a Map": _stream_with_map_text,
    "execution_count as a string": lambda doc: cell_at(doc).__setitem__("execution_count", "NaN"),
}


def change(doc: Doc[Any], edit: Callable[[Doc[Any]], None]) -> bytes:
    """Make `edit` in `doc` and return the update it made."""
    before = doc.get_state()
    with doc.transaction():
        edit(doc)
    return doc.get_update(before)


async def push(url: str, *updates: bytes, settle: float = 0.3) -> list[bytes]:
    """Send updates as one raw y-websocket client; return what came back meanwhile (a
    denial starts with DENIED). The socket closes when the server closes it or after
    `settle` seconds of quiet."""
    received: list[bytes] = []
    async with websockets.connect(url, max_size=None) as ws:
        for update in updates:
            await ws.send(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))
        with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
            while True:
                message = await asyncio.wait_for(ws.recv(), settle)
                if isinstance(message, bytes):
                    received.append(message)
    return received


def denied(messages: list[bytes]) -> bool:
    return any(message.startswith(DENIED) for message in messages)


def whole(api: Api, notebook_id: str) -> dict[str, Any]:
    """The notebook exports as valid nbformat with nothing repaired, a version of it can be
    saved and restored; returns the export."""
    response = api.client.get(f"/api/notebooks/{notebook_id}/export")
    assert response.status_code == 200, response.text
    assert "x-tandem-repaired" not in response.headers, response.headers["x-tandem-repaired"]
    exported = dict(response.json())
    nbformat.validate(nbformat.from_dict(exported))
    saved = api.client.post(f"/api/notebooks/{notebook_id}/versions", json={"name": "check"})
    assert saved.status_code == 201, saved.text
    restored = api.client.post(
        f"/api/notebooks/{notebook_id}/versions/{saved.json()['id']}/restore"
    )
    assert restored.status_code == 200, restored.text
    return exported


def plant(server: ServerProcess, notebook_id: str, edit: Callable[[Doc[Any]], None]) -> None:
    """Store `edit` in the notebook's update log behind the server's back, as if it had
    slipped in before the schema guard. The notebook's room must be closed."""
    database = sqlite3.connect(server.data_dir / "tandem.db")
    try:
        doc: Doc[Any] = Doc()
        (snapshot,) = database.execute(
            "SELECT data FROM snapshots WHERE notebook_id = ?", (notebook_id,)
        ).fetchone()
        doc.apply_update(snapshot)
        for (update,) in database.execute(
            "SELECT data FROM update_log WHERE notebook_id = ? ORDER BY seq", (notebook_id,)
        ):
            doc.apply_update(update)
        database.execute(
            "INSERT INTO update_log (notebook_id, data) VALUES (?, ?)",
            (notebook_id, change(doc, edit)),
        )
        database.commit()
    finally:
        database.close()
