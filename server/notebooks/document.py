"""Reading the shared document's cells (the YNotebook schema), for the server's own edits
and lookups: the gateway's outputs, comment anchors, history restores."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map


def cells_of(doc: Doc[Any]) -> Array[Any]:
    cells: Array[Any] = doc.get("cells", type=Array)
    return cells


def find_cell(cells: Array[Any], cell_id: str) -> Map[Any] | None:
    for cell in cells:
        if isinstance(cell, Map) and cell.get("id") == cell_id:
            return cell
    return None
