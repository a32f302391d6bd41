"""Reading the shared document's cells (the YNotebook schema), for the server's own edits
and lookups: the gateway's outputs, comment anchors, history restores.

pycrdt reads an Array item by walking the array from its start, so a loop over every cell
is quadratic (8 s for 20,000 cells): big notebooks are listed from one JSON encoding of the
array instead, and only the cells wanted are then read by index.
"""

from __future__ import annotations

import json
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


def cells_by_id(cells: Array[Any], wanted: set[str]) -> dict[str, Map[Any]]:
    """The cell Maps with these ids (the first of each, as the editor shows them)."""
    found: dict[str, Map[Any]] = {}
    for index, summary in enumerate(summaries(cells)):
        if summary is None or summary.id not in wanted or summary.id in found:
            continue
        cell = cells[index]
        if isinstance(cell, Map) and cell.get("id") == summary.id:
            found[summary.id] = cell
    return found


def find_cell(cells: Array[Any], cell_id: str) -> Map[Any] | None:
    return cells_by_id(cells, {cell_id}).get(cell_id)
