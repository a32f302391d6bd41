"""What a runtime writes into its notebook's shared document: cells queued, running and
finished, their outputs, and the hold on the room it writes through.

Every edit goes through `Room.start_edit` (stored before anyone sees it), under the lease
epoch the fence gave (several replicas; the database refuses it once another replica owns
the runtime). The runtime decides when; this module knows how a cell records it
(JupyterLab's schema and timing metadata).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pycrdt import Array, Doc, Map

from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.errors import FencedOut
from server.gateway import outputs
from server.gateway.execution import Execution, Outcome, Output
from server.gateway.registry import Placement
from server.notebooks.document import cells_by_id, cells_of, find_cell, summaries
from server.timeutil import utcnow


class CellEdits:
    def __init__(
        self,
        notebook_id: str,
        rooms: RoomManager,
        fence: Callable[[], int | None] = lambda: None,
        fenced_out: Callable[[int], None] = lambda _epoch: None,
    ) -> None:
        self.notebook_id = notebook_id
        self._rooms = rooms
        # Raises when this server may no longer write (several replicas), else gives the
        # lease epoch the writes carry; told when the database refused one.
        self._fence = fence
        self._fenced_out = fenced_out
        self._epoch: int | None = None
        self._room: Room | None = None
        self._room_hold: contextlib.AsyncExitStack | None = None
        # Which cells show each display id, for update_display_data.
        self._display_cells: dict[str, set[str]] = {}

    # --- the room ----------------------------------------------------------------------

    @property
    def held(self) -> bool:
        return self._room_hold is not None

    async def room(self) -> Room:
        """The notebook's room, loaded and held (kept in memory) until `release`."""
        self._epoch = self._fence()
        if self._room is not None and self._room.discarded:
            await self.release()  # it held a refused edit; a fresh one is read
        if self._room is None:
            stack = contextlib.AsyncExitStack()
            room = await stack.enter_async_context(self._rooms.hold(self.notebook_id))
            self._room, self._room_hold = room, stack
        return self._room

    async def release(self) -> None:
        stack, self._room_hold, self._room = self._room_hold, None, None
        if stack is not None:
            await stack.aclose()

    async def edit(self, change: Callable[[Doc[Any]], None]) -> None:
        await self.start_edit(await self.room(), change)

    def start_edit(self, room: Room, change: Callable[[Doc[Any]], None]) -> asyncio.Future[None]:
        """`room.start_edit` under the epoch `room()` was last given."""
        done = room.start_edit(change, fence=self._epoch)
        if self._epoch is not None:
            done.add_done_callback(functools.partial(self._refused, self._epoch))
        return done

    def _refused(self, epoch: int, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and isinstance(done.exception(), FencedOut):
            self._fenced_out(epoch)

    # --- cells -------------------------------------------------------------------------

    async def set_states(self, cell_ids: list[str], state: str) -> None:
        await self.start_set_states(await self.room(), cell_ids, state)

    def start_set_states(self, room: Room, cell_ids: list[str], state: str) -> asyncio.Future[None]:
        """Mark cells (applied now, stored in the background: await the future)."""
        wanted = set(cell_ids)

        def mark(doc: Doc[Any]) -> None:
            if not wanted:
                return
            for cell in cells_by_id(cells_of(doc), wanted).values():
                cell["execution_state"] = state

        return self.start_edit(room, mark)

    async def begin_run(self, execution: Execution) -> tuple[str | None, asyncio.Future[None]]:
        """Mark the run's cell running (applied now, stored in the background: await the
        future) and return its code; None when the cell is gone."""
        code: list[str] = []

        def begin(doc: Doc[Any]) -> None:
            cell = find_cell(cells_of(doc), execution.cell_id)
            if cell is None:
                return
            code.append(str(cell.get("source", "")))
            cell["execution_state"] = "running"
            cell["execution_count"] = None
            execution.writer.start(cell)
            record_start(cell, execution)

        begun = self.start_edit(await self.room(), begin)
        return (code[0] if code else None), begun

    async def resume_run(self, execution: Execution) -> None:
        """A run taken over from a kernel this server did not start goes on in its cell."""

        def resume(doc: Doc[Any]) -> None:
            # What the old server had queued is not queued here: only this cell runs.
            reset_stale_states(doc)
            cell = find_cell(cells_of(doc), execution.cell_id)
            if cell is not None:
                cell["execution_state"] = "running"
                execution.writer.resume(cell)

        await self.edit(resume)

    async def finish(
        self,
        execution: Execution,
        outcome: Outcome,
        runtime_name: str,
        placement: Placement | None,
        error: tuple[str, str] | None = None,
    ) -> None:
        """A run ended (or was given up on): its cell says how, where, and by whom."""
        elapsed_ms = int((time.monotonic() - execution.started) * 1000)
        ended = utcnow()
        assert execution.started_at is not None
        info = {
            "status": outcome.status,
            "timestamp": int(execution.started_at.timestamp() * 1000),
            "elapsed": elapsed_ms,
            "user": {"displayName": execution.username, "userId": str(execution.user_id)},
            "user_tz": 0,
            "runtime": runtime_name,
            "worker": placement.worker.name if placement else None,
            "gpus": placement.gpu_names if placement else [],
        }

        def finish(doc: Doc[Any]) -> None:
            cell = find_cell(cells_of(doc), execution.cell_id)
            if cell is None:
                return
            cell["execution_state"] = "idle"
            if outcome.execution_count is not None:
                cell["execution_count"] = outcome.execution_count
            metadata = cell_metadata(cell)
            metadata["executionInfo"] = info
            if execution.started:  # it ran (it was not only given up on in the queue)
                record_end(metadata, ended)
            if error is not None:
                cell_outputs = cell.get("outputs")
                if isinstance(cell_outputs, Array):
                    cell_outputs.append(outputs.error_output(*error))

        await self.edit(finish)

    async def fail(self, queued: list[Execution], message: str | None) -> None:
        """Queued cells go back to idle; the first one says why when there is a reason."""
        first = queued[0].cell_id

        def fail(doc: Doc[Any]) -> None:
            cells = cells_of(doc)
            for execution in queued:
                cell = find_cell(cells, execution.cell_id)
                if cell is None:
                    continue
                cell["execution_state"] = "idle"
                if message is not None and execution.cell_id == first:
                    execution.writer.start(cell)
                    cell["outputs"].append(outputs.error_output("RuntimeUnavailable", message))

        await self.edit(fail)

    # --- outputs -----------------------------------------------------------------------

    async def write(self, batch: list[Output]) -> None:
        """Outputs into their cells, one edit for the batch."""
        await self.edit(functools.partial(self._write, pending=batch))

    def _write(self, doc: Doc[Any], pending: list[Output]) -> None:
        cells = cells_of(doc)
        found: dict[str, Map[Any] | None] = {}
        for execution, msg_type, content in pending:
            if msg_type == "update_display_data":
                self._update_display(cells, content)
                continue
            if execution.cell_id not in found:
                found[execution.cell_id] = find_cell(cells, execution.cell_id)
            cell = found[execution.cell_id]
            if cell is None:
                continue
            display_id = execution.writer.write(cell, msg_type, content)
            if display_id is not None:
                self._display_cells.setdefault(display_id, set()).add(execution.cell_id)

    def _update_display(self, cells: Array[Any], content: dict[str, Any]) -> None:
        display_id = (content.get("transient") or {}).get("display_id")
        if not isinstance(display_id, str):
            return
        updated = False
        for cell_id in self._display_cells.get(display_id, ()):
            cell = find_cell(cells, cell_id)
            if cell is not None:
                updated = outputs.update_display(cell, display_id, content) or updated
        if not updated:  # shown before this server started: look everywhere
            for cell in cells:
                if isinstance(cell, Map):
                    outputs.update_display(cell, display_id, content)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cell_metadata(cell: Map[Any]) -> Map[Any]:
    """The cell's metadata as a Map (one stored as a plain object becomes a Map of it)."""
    metadata = cell.get("metadata")
    if not isinstance(metadata, Map):
        metadata = Map(dict(metadata) if isinstance(metadata, dict) else {})
        cell["metadata"] = metadata
    return metadata


def record_start(cell: Map[Any], execution: Execution) -> None:
    """When the run started and who started it, in the document, so that every page (and
    one reloaded) counts a running cell's time from the same moment. `execution` is where
    JupyterLab's "record timing" keeps it; `tandem.run_by` says who."""
    assert execution.started_at is not None
    began = _iso(execution.started_at)
    metadata = cell_metadata(cell)
    metadata["execution"] = {"iopub.status.busy": began, "iopub.execute_input": began}
    ours = metadata.get("tandem")
    metadata["tandem"] = {
        **(ours if isinstance(ours, dict) else {}),
        "run_by": {"username": execution.username, "user_id": str(execution.user_id), "at": began},
    }


def record_end(metadata: Map[Any], ended: datetime) -> None:
    timing = metadata.get("execution")
    end = _iso(ended)
    metadata["execution"] = {
        **(timing if isinstance(timing, dict) else {}),
        "shell.execute_reply": end,
        "iopub.status.idle": end,
    }


_STALE = ("queued", "running")


def has_stale_states(doc: Doc[Any]) -> bool:
    """Whether a cell says queued or running (read only: most rooms load with none, and
    an edit transaction for nothing costs a join more than this look)."""
    return any(s is not None and s.execution_state in _STALE for s in summaries(cells_of(doc)))


def reset_stale_states(doc: Doc[Any]) -> None:
    """Cells a stopped server left queued or running: nothing will run them now."""
    cells = cells_of(doc)
    for index, summary in enumerate(summaries(cells)):
        if summary is not None and summary.execution_state in _STALE:
            cell = cells[index]
            if isinstance(cell, Map):
                cell["execution_state"] = "idle"
