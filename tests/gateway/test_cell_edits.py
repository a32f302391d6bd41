"""What a runtime writes into the document, through a real room and SQLite update log, with
no worker, kernel or HTTP server: cell states, outputs, a run's end, a failed queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from server.collab.room import RoomLimits
from server.collab.rooms import RoomManager
from server.collab.update_log import SqlUpdateLog
from server.events.bus import EventBus
from server.gateway.cell_edits import CellEdits
from server.gateway.execution import Execution, Outcome
from server.gateway.outputs import CellWriter
from server.notebooks.document import cells_of, find_cell
from tests.collab.test_room import engine_with_notebook
from tests.support import eventually


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[CellEdits, RoomManager, SqlUpdateLog]]:
    engine = engine_with_notebook(tmp_path)
    log = SqlUpdateLog(engine)
    await log.start()
    manager = RoomManager(log, EventBus(), RoomLimits(), grace_seconds=0.05)
    edits = CellEdits("nb", manager)

    def add_cells(doc: Doc[Any]) -> None:
        for cell_id in ("a", "b", "c"):
            cells_of(doc).append(
                Map(
                    {
                        "id": cell_id,
                        "cell_type": "code",
                        "source": Text(f"print('{cell_id}')"),
                        "metadata": Map(),
                        "outputs": Array(),
                        "execution_count": None,
                        "execution_state": "idle",
                    }
                )
            )

    await edits.edit(add_cells)
    yield edits, manager, log
    await edits.release()
    await manager.shutdown()
    await log.stop()
    engine.dispose()


def run_of(cell_id: str, started: bool = True) -> Execution:
    future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    execution = Execution(cell_id, "batch", "ann", 7, CellWriter(1_000_000), future)
    if started:
        execution.started = 1.0
        execution.started_at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    return execution


async def stored(log: SqlUpdateLog) -> dict[str, dict[str, Any]]:
    """The cells as a reader of the update log sees them (what a restarted server loads)."""
    document = await log.load("nb")
    doc: Doc[Any] = Doc()
    if document.snapshot is not None:
        doc.apply_update(document.snapshot)
    for _, update in document.updates:
        doc.apply_update(update)
    return {cell["id"]: cell for cell in cells_of(doc).to_py()}


async def test_cell_states_are_stored_only_for_the_cells_named(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, _, log = setup
    await edits.set_states(["a", "c", "gone"], "queued")
    cells = await stored(log)
    assert [cells[c]["execution_state"] for c in "abc"] == ["queued", "idle", "queued"]


async def test_a_batch_of_outputs_lands_in_its_cells_in_order(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, _, log = setup
    a, b = run_of("a"), run_of("b")
    display = {"data": {"text/plain": "0%"}, "metadata": {}, "transient": {"display_id": "bar"}}
    await edits.write(
        [
            (a, "stream", {"name": "stdout", "text": "one\n"}),
            (a, "display_data", display),
            (b, "stream", {"name": "stdout", "text": "two\n"}),
            (a, "stream", {"name": "stdout", "text": "three\n"}),
            (run_of("gone"), "stream", {"name": "stdout", "text": "lost\n"}),
        ]
    )
    # An update from another run (the display was shown by cell a) finds it.
    update = {**display, "data": {"text/plain": "100%"}}
    await edits.write([(b, "update_display_data", update)])
    cells = await stored(log)
    assert [o.get("text") or o["data"]["text/plain"] for o in cells["a"]["outputs"]] == [
        "one\n",
        "100%",
        "three\n",
    ]
    assert [o["text"] for o in cells["b"]["outputs"]] == ["two\n"]


async def test_a_run_that_ended_records_how_where_and_by_whom(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, _, log = setup
    execution = run_of("b")
    await edits.set_states(["b"], "running")
    await edits.finish(execution, Outcome("error", 3), "gpu", None, error=("Interrupted", "stop"))
    cell = (await stored(log))["b"]
    assert cell["execution_state"] == "idle"
    assert cell["execution_count"] == 3
    info = cell["metadata"]["executionInfo"]
    assert info["status"] == "error" and info["runtime"] == "gpu"
    assert info["user"] == {"displayName": "ann", "userId": "7"}
    assert "shell.execute_reply" in cell["metadata"]["execution"]
    assert cell["outputs"][-1]["ename"] == "Interrupted"


async def test_a_failed_queue_goes_idle_and_its_first_cell_says_why(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, _, log = setup
    await edits.set_states(["a", "b", "c"], "queued")
    queued = [run_of(c, started=False) for c in ("c", "a")]
    await edits.fail(queued, "The runtime could not start: no worker")
    cells = await stored(log)
    assert [cells[c]["execution_state"] for c in "abc"] == ["idle", "queued", "idle"]
    assert cells["c"]["outputs"][0]["evalue"] == "The runtime could not start: no worker"
    assert cells["a"]["outputs"] == []


async def test_the_room_stays_loaded_while_held_and_goes_once_released(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, manager, _ = setup
    assert edits.held
    room = await edits.room()
    assert find_cell(cells_of(room.doc), "a") is not None
    await asyncio.sleep(0.2)  # past the room's grace: still there, held
    assert manager.get("nb") is room
    await edits.release()
    assert not edits.held
    await eventually(lambda: manager.get("nb") is None)


async def test_a_run_begins_with_its_code_and_a_gone_cell_has_none(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, _, log = setup
    await edits.write([(run_of("a"), "stream", {"name": "stdout", "text": "old\n"})])
    code, begun = await edits.begin_run(run_of("a"))
    assert code == "print('a')"
    await begun
    cell = (await stored(log))["a"]
    assert (cell["execution_state"], cell["outputs"]) == ("running", [])  # old outputs go
    assert cell["metadata"]["tandem"]["run_by"]["username"] == "ann"
    code, begun = await edits.begin_run(run_of("gone"))
    await begun
    assert code is None


async def test_an_adopted_run_keeps_its_outputs_and_nothing_else_stays_queued(
    setup: tuple[CellEdits, RoomManager, SqlUpdateLog],
) -> None:
    edits, _, log = setup
    await edits.set_states(["a", "c"], "queued")
    await edits.write([(run_of("b"), "stream", {"name": "stdout", "text": "1\n"})])
    await edits.resume_run(run_of("b"))
    cells = await stored(log)
    assert [cells[c]["execution_state"] for c in "abc"] == ["idle", "running", "idle"]
    assert [o["text"] for o in cells["b"]["outputs"]] == ["1\n"]
