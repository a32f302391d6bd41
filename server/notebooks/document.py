"""Reading the shared document's cells (the YNotebook schema), for the server's own edits
and lookups: the gateway's outputs, comment anchors, history restores.

pycrdt reads an Array item by walking the array from its start, so a loop over every cell
is quadratic (8 s for 20,000 cells). So each Doc keeps a `CellIndex`: the cells' ids in
order, built once (walked, or from one JSON encoding of a big array) and then kept current
from the cells array's own insert/delete events; a lookup reads one cell by index.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Doc, Map

# Below this many cells walking the array is cheaper than encoding all of it (outputs too).
_WALK_LIMIT = 400


@dataclass(frozen=True)
class CellSummary:
    id: Any
    cell_type: Any
    execution_state: Any


def cells_of(doc: Doc[Any]) -> Array[Any]:
    cells: Array[Any] = doc.get("cells", type=Array)
    return cells


def summaries(cells: Array[Any]) -> list[CellSummary | None]:
    """Each item's id, type and execution state, in order (None: not a cell Map)."""
    if len(cells) < _WALK_LIMIT:
        return [
            CellSummary(c.get("id"), c.get("cell_type"), c.get("execution_state"))
            if isinstance(c, Map)
            else None
            for c in cells
        ]
    try:
        listed = json.loads(str(cells))
    except ValueError:  # something JSON cannot say: walk it after all
        return summaries_walked(cells)
    return [
        CellSummary(c.get("id"), c.get("cell_type"), c.get("execution_state"))
        if isinstance(c, dict)
        else None
        for c in listed
    ]


def summaries_walked(cells: Array[Any]) -> list[CellSummary | None]:
    return [
        CellSummary(c.get("id"), c.get("cell_type"), c.get("execution_state"))
        if isinstance(c, Map)
        else None
        for c in cells
    ]


class CellIndex:
    """The ids of one Doc's cells, in order, kept current from the array's events. A cell
    whose id is changed in place is not seen by those events: a lookup that finds the
    wrong cell (or none) rebuilds the index once and tries again."""

    def __init__(self, cells: Array[Any]) -> None:
        # No reference to the Doc (only its observer refers to us): the index lives as long
        # as the Doc, never longer. Lookups are handed the array by their caller.
        self._ids: list[Any] | None = None
        cells.observe(self._changed)

    def _changed(self, event: Any) -> None:
        if self._ids is None:
            return
        index = 0
        for op in event.delta:
            if "retain" in op:
                index += op["retain"]
            elif "delete" in op:
                del self._ids[index : index + op["delete"]]
            elif "insert" in op:
                inserted = [c.get("id") if isinstance(c, Map) else None for c in op["insert"]]
                self._ids[index:index] = inserted
                index += len(inserted)

    def ids(self, cells: Array[Any]) -> list[Any]:
        if self._ids is None:
            self._ids = [s.id if s is not None else None for s in summaries(cells)]
        return self._ids

    def find(self, cells: Array[Any], wanted: set[str]) -> dict[str, Map[Any]]:
        found = self._lookup(cells, wanted)
        if len(found) < len(wanted):
            self._ids = None  # an id changed in place, or the index went stale: rebuild
            found = self._lookup(cells, wanted)
        return found

    def _lookup(self, cells: Array[Any], wanted: set[str]) -> dict[str, Map[Any]]:
        found: dict[str, Map[Any]] = {}
        length = len(cells)
        for index, cell_id in enumerate(self.ids(cells)):
            if cell_id not in wanted or cell_id in found:
                continue
            cell = cells[index] if index < length else None
            if isinstance(cell, Map) and cell.get("id") == cell_id:
                found[cell_id] = cell
        return found


_INDEXES: weakref.WeakKeyDictionary[Doc[Any], CellIndex] = weakref.WeakKeyDictionary()


def index_of(cells: Array[Any]) -> CellIndex:
    doc = cells.doc
    index = _INDEXES.get(doc)
    if index is None:
        index = _INDEXES[doc] = CellIndex(cells)
    return index


def cells_by_id(cells: Array[Any], wanted: set[str]) -> dict[str, Map[Any]]:
    """The cell Maps with these ids (the first of each, as the editor shows them)."""
    return index_of(cells).find(cells, wanted) if wanted else {}


def find_cell(cells: Array[Any], cell_id: str) -> Map[Any] | None:
    return cells_by_id(cells, {cell_id}).get(cell_id)
