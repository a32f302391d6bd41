"""The schema guard: an editor's update is tried on a shadow of the room's document, and
refused before it is stored when what it changed would leave the notebook outside the schema.

pycrdt cannot roll a transaction back, so the check runs on a second Doc (the shadow) that
holds everything the room's Doc holds plus the updates accepted but not yet stored. Only the
parts an update touched are checked, as the shadow's deep observers report them: typing into
a cell's source is one text event; anything else inside a cell checks that cell, anything
in `meta` checks `meta` (`server.collab.schema`). A refused update has reached the shadow
only, so the shadow is thrown away and rebuilt from the update log and the room's Doc (the
log, because a Doc leaves updates that wait for a missing predecessor out of `get_update`
and the shadow must hold those too, or it would not see them when they complete).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Doc, Map, TextEvent

from server.collab.schema import cell_problem, meta_problem
from server.collab.update_log import UpdateLog
from server.errors import InvalidUpdate, TandemError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """An update the shadow holds and the room's Doc does not yet."""

    token: int


@dataclass(frozen=True)
class Refused:
    reason: str


def _apply(doc: Doc[Any], update: bytes) -> None:
    """`doc.apply_update`, with a panic in the CRDT library turned into a ValueError."""
    try:
        doc.apply_update(update)
    except Exception as error:
        raise ValueError(str(error)) from None
    except BaseException as error:
        # pyo3 reports a panic as PanicException, a BaseException.
        if type(error).__name__ != "PanicException":
            raise
        raise ValueError("the CRDT library could not apply it") from None


class _Shadow:
    """A Doc with deep observers on the notebook's roots, collecting what each update did."""

    def __init__(self, doc: Doc[Any]) -> None:
        self.doc = doc
        self.cells: Array[Any] = doc.get("cells", type=Array)
        self.meta: Map[Any] = doc.get("meta", type=Map)
        self.cell_events: list[Any] = []
        self.meta_events: list[Any] = []
        self.cells.observe_deep(self._on_cells)
        self.meta.observe_deep(self._on_meta)

    def _on_cells(self, events: list[Any]) -> None:
        self.cell_events.extend(events)

    def _on_meta(self, events: list[Any]) -> None:
        self.meta_events.extend(events)

    def try_update(self, update: bytes) -> str | None:
        """Apply `update`; say what it broke (None: nothing). Raises ValueError when the
        update cannot be applied at all."""
        self.cell_events.clear()
        self.meta_events.clear()
        try:
            _apply(self.doc, update)
            return self._problem()
        finally:
            self.cell_events.clear()
            self.meta_events.clear()

    def _problem(self) -> str | None:
        touched: set[int] = set()
        for event in self.cell_events:
            path = event.path
            if not path:
                touched.update(_inserted_at(event.delta))
            elif not (isinstance(event, TextEvent) and _is_shared_text(path, event.delta)):  # type: ignore[attr-defined]
                touched.add(path[0])
        for index in sorted(touched):
            if index < len(self.cells):
                problem = cell_problem(self.cells[index])
                if problem is not None:
                    return f"cell {index}: {problem}"
        if self.meta_events:
            return meta_problem(self.meta)
        return None


def _inserted_at(delta: list[dict[str, Any]]) -> list[int]:
    """The indices a delta on the cells array inserted at."""
    index = 0
    inserted: list[int] = []
    for op in delta:
        if "insert" in op:
            count = len(op["insert"])
            inserted.extend(range(index, index + count))
            index += count
        elif "retain" in op:
            index += op["retain"]
    return inserted


def _is_shared_text(path: list[Any], delta: list[dict[str, Any]]) -> bool:
    """A text-only edit of a cell's source or of a stream output's text: always valid."""
    if not (
        (len(path) == 2 and path[1] == "source")
        or (len(path) == 4 and path[1] == "outputs" and path[3] == "text")
    ):
        return False
    return all(isinstance(op.get("insert", ""), str) for op in delta)


class SchemaGuard:
    """Checks editors' updates for one room before they are stored.

    Contract with the room: `check` an update before appending it; once it is in the room's
    Doc call `landed`, or `lost` when it never will be (the append failed). The server's own
    edits go to `server_edit` as they are made.
    """

    def __init__(self, notebook_id: str, doc: Doc[Any], update_log: UpdateLog) -> None:
        self._notebook_id = notebook_id
        self._doc = doc
        self._log = update_log
        self._shadow: _Shadow | None = None
        self._building: asyncio.Task[tuple[int, _Shadow]] | None = None
        # Bumped whenever the shadow is thrown away: a build started before is stale.
        self._generation = 0
        # Accepted, not yet in the room's Doc: a rebuilt shadow must hold them too.
        self._in_flight: dict[int, bytes] = {}
        # The server's edits made while a shadow is being built.
        self._missed: list[bytes] = []
        self._tokens = 0

    async def check(self, update: bytes) -> Accepted | Refused:
        shadow = self._shadow if self._shadow is not None else await self._rebuild()
        try:
            problem = shadow.try_update(update)
        except ValueError:
            self._discard()
            raise InvalidUpdate("the update could not be applied") from None
        if problem is not None:
            self._discard()
            log.info("notebook %s: refused an update: %s", self._notebook_id, problem)
            return Refused(f"the change would break the notebook: {problem}")
        self._tokens += 1
        self._in_flight[self._tokens] = update
        return Accepted(self._tokens)

    def landed(self, accepted: Accepted) -> None:
        self._in_flight.pop(accepted.token, None)

    def lost(self, accepted: Accepted) -> None:
        """The update will not reach the room's Doc: the shadow, which has it, must go."""
        self._in_flight.pop(accepted.token, None)
        self._discard()

    def server_edit(self, update: bytes) -> None:
        if self._shadow is not None:
            try:
                _apply(self._shadow.doc, update)
            except ValueError:
                self._discard()
        elif self._building is not None:
            self._missed.append(update)

    def _discard(self) -> None:
        self._shadow = None
        self._generation += 1

    async def _rebuild(self) -> _Shadow:
        while self._shadow is None:
            if self._building is None:
                self._missed = []
                self._building = asyncio.create_task(self._build(self._generation))
            building = self._building
            try:
                generation, shadow = await asyncio.shield(building)
            finally:
                if self._building is building and building.done():
                    self._building = None
            if self._shadow is None and generation == self._generation:
                for update in self._missed:
                    with contextlib.suppress(ValueError):
                        _apply(shadow.doc, update)
                self._missed = []
                self._shadow = shadow
        return self._shadow

    async def _build(self, generation: int) -> tuple[int, _Shadow]:
        try:
            stored = await self._log.load(self._notebook_id)
        except Exception:
            raise TandemError("could not check the change; reconnect to retry") from None
        # Read on the event loop (the room's Doc lives there); replayed off it.
        current = self._doc.get_update()
        in_flight = list(self._in_flight.values())

        def replay() -> Doc[Any]:
            doc: Doc[Any] = Doc()
            updates = [stored.snapshot] if stored.snapshot is not None else []
            updates += [update for _, update in stored.updates]
            for update in [*updates, current, *in_flight]:
                # One the room skipped when it loaded, the shadow skips too.
                with contextlib.suppress(ValueError):
                    _apply(doc, update)
            return doc

        return generation, _Shadow(await asyncio.to_thread(replay))
