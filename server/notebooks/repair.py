"""Reading any stored document as valid nbformat 4, whatever slipped into it before the schema
guard (or came from an old version): what cannot be read is repaired or skipped, and named.

The rules, part by part (each repair is one line in `Reading.repairs`):
- a `cells` item that is not a cell Map, or a cell nbformat still refuses after the repairs
  below, is skipped;
- in a cell: a bad or repeated id gets a new one; an unknown type becomes `raw`; a source that
  is not text becomes empty; metadata that is not an object becomes `{}`; keys its type does
  not have are dropped; outputs that are not a list become `[]`; an output nbformat refuses
  is dropped; an execution count that is not a count becomes null; bad attachments go;
- anywhere: values JSON cannot hold (NaN, Infinity, bytes, nesting past 64 levels) are dropped;
- `meta`: nbformat becomes 4, a minor outside 4..5 becomes 5, metadata keys nbformat refuses
  are dropped.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Map

from server.collab.schema import (
    CELL_ID,
    CELL_TYPES,
    MAX_DEPTH,
    NBFORMAT,
    NBFORMAT_MINOR,
    NBFORMAT_MINORS,
    as_nbformat_cell,
    cast_integers,
    kind,
    metadata_problem,
    nbformat_problem,
    to_plain,
)

_CELL_KEYS = {
    "code": ("id", "cell_type", "metadata", "source", "outputs", "execution_count"),
    "markdown": ("id", "cell_type", "metadata", "source", "attachments"),
    "raw": ("id", "cell_type", "metadata", "source", "attachments"),
}
# Kept in the document, never exported: not worth a word.
_QUIET_KEYS = frozenset({"execution_state"})


@dataclass
class Reading:
    """A document's content as valid nbformat 4, and what had to change to get there."""

    content: dict[str, Any]
    repairs: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        """`X-Tandem-Repaired`: the repairs, as a JSON list of strings (ASCII, first 20)."""
        return {"X-Tandem-Repaired": json.dumps(self.repairs[:20])} if self.repairs else {}


def read_state(state: bytes) -> Reading:
    doc: Doc[Any] = Doc()
    try:
        doc.apply_update(state)
    except Exception:
        reading = read_doc(Doc())
        reading.repairs.insert(0, "the stored document could not be read; it is shown empty")
        return reading
    return read_doc(doc)


def read_doc(doc: Doc[Any]) -> Reading:
    repairs: list[str] = []
    minor = _read_meta_numbers(doc.get("meta", type=Map), repairs)
    metadata = _read_metadata(doc.get("meta", type=Map), repairs)
    cells: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, value in enumerate(_cell_values(doc.get("cells", type=Array), repairs)):
        cell = None if value is None else _read_cell_value(value, f"cell {index}", repairs)
        if cell is None:
            continue
        if cell["id"] in seen:
            repairs.append(f"cell {index}: its id repeats an earlier cell's; it got a new one")
            cell["id"] = _new_id()
        seen.add(cell["id"])
        cells.append(cell)
    if minor < NBFORMAT_MINOR:
        for cell in cells:
            cell.pop("id", None)  # 4.4 and older have no cell ids (jupyter_ydoc does the same)
    content = {
        "cells": cells,
        "metadata": metadata,
        "nbformat": NBFORMAT,
        "nbformat_minor": minor,
    }
    return Reading(content, repairs)


def _read_meta_numbers(meta: Map[Any], repairs: list[str]) -> int:
    major, minor = meta.get("nbformat"), meta.get("nbformat_minor")
    if _integer(major) != NBFORMAT:
        repairs.append(f"meta.nbformat was {kind(major)}, not {NBFORMAT}; read as {NBFORMAT}")
    number = _integer(minor)
    if number is None or number not in NBFORMAT_MINORS:
        repairs.append(f"meta.nbformat_minor was not 4 or 5; read as {NBFORMAT_MINOR}")
        return NBFORMAT_MINOR
    return number


def _read_metadata(meta: Map[Any], repairs: list[str]) -> dict[str, Any]:
    value = _plain(meta.get("metadata", {}), "meta.metadata", repairs)
    if not isinstance(value, dict):
        repairs.append(f"meta.metadata was {kind(value)}, not an object; read as {{}}")
        return {}
    metadata: dict[str, Any] = cast_integers(_json_only(value, "meta.metadata", repairs))
    if metadata_problem(metadata) is None:
        return metadata
    for key in list(metadata):
        if metadata_problem({key: metadata[key]}) is not None:
            repairs.append(f"meta.metadata.{key} is not valid nbformat; dropped")
            del metadata[key]
    return metadata


def _plain(value: Any, where: str, repairs: list[str]) -> Any:
    try:
        return to_plain(value)
    except ValueError:
        repairs.append(f"{where} is nested too deeply; dropped")
        return None


# pycrdt reads an Array item by walking from its start: past this many cells, one JSON
# encoding of the whole array (linear) beats reading them one by one (quadratic).
_WALK_LIMIT = 400


def _cell_values(cells: Array[Any], repairs: list[str]) -> list[dict[str, Any] | None]:
    """Each item of `cells` as plain data (None for an item that is not a cell)."""
    if len(cells) >= _WALK_LIMIT:
        try:
            listed = json.loads(str(cells))
        except ValueError:
            listed = None
        if isinstance(listed, list):
            values: list[dict[str, Any] | None] = []
            for index, value in enumerate(listed):
                if not isinstance(value, dict):
                    repairs.append(f"cell {index}: skipped, {kind(value)} is not a cell")
                values.append(value if isinstance(value, dict) else None)
            return values
    return [_cell_value(item, f"cell {index}", repairs) for index, item in enumerate(cells)]


def _cell_value(item: object, where: str, repairs: list[str]) -> dict[str, Any] | None:
    if not isinstance(item, Map):
        repairs.append(f"{where}: skipped, {kind(item)} is not a cell")
        return None
    value = _plain(item, where, repairs)
    return value if isinstance(value, dict) else None


def _read_cell_value(
    value: dict[str, Any], where: str, repairs: list[str]
) -> dict[str, Any] | None:
    cell: dict[str, Any] = as_nbformat_cell(_json_only(value, where, repairs))
    cell_id = cell.get("id")
    if not isinstance(cell_id, str) or not CELL_ID.match(cell_id):
        repairs.append(f"{where}: it had no usable id; it got a new one")
        cell["id"] = _new_id()
    cell_type = cell.get("cell_type")
    if cell_type not in CELL_TYPES:
        repairs.append(f"{where}: its type was not code, markdown or raw; read as raw")
        cell["cell_type"] = cell_type = "raw"
    source = cell.get("source", "")  # missing (a hand-written client): empty, as before
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    elif not isinstance(source, str):
        repairs.append(f"{where}: its source was {kind(source)}, not text; read as empty")
        source = ""
    cell["source"] = source
    if not isinstance(cell.get("metadata", {}), dict):
        repairs.append(f"{where}: its metadata was not an object; read as {{}}")
        cell["metadata"] = {}
    cell.setdefault("metadata", {})
    for key in [key for key in cell if key not in _CELL_KEYS[cell_type]]:
        if key not in _QUIET_KEYS:
            repairs.append(f"{where}: a {cell_type} cell has no {key!r}; dropped")
        del cell[key]
    if cell_type == "code":
        _repair_code(cell, where, repairs)
    elif "attachments" in cell and not _attachments_ok(cell):
        repairs.append(f"{where}: its attachments are not valid nbformat; dropped")
        del cell["attachments"]
    problem = nbformat_problem(cell)
    if problem is not None:
        repairs.append(f"{where}: skipped, not valid nbformat ({problem})")
        return None
    return cell


def _repair_code(cell: dict[str, Any], where: str, repairs: list[str]) -> None:
    outputs = cell.get("outputs", [])
    if not isinstance(outputs, list):
        repairs.append(f"{where}: its outputs were {kind(outputs)}, not a list; read as []")
        outputs = []
    kept = []
    for number, output in enumerate(outputs):
        probe = {**cell, "outputs": [output], "execution_count": None}
        if isinstance(output, dict) and nbformat_problem(probe) is None:
            kept.append(output)
        else:
            repairs.append(f"{where}: output {number} is not valid nbformat; dropped")
    cell["outputs"] = kept
    count = cell.get("execution_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        repairs.append(f"{where}: its execution count was {kind(count)}; read as null")
        count = None
    cell["execution_count"] = count


def _attachments_ok(cell: dict[str, Any]) -> bool:
    return (
        nbformat_problem(cell) is None
        or nbformat_problem({key: value for key, value in cell.items() if key != "attachments"})
        is not None
    )


def _json_only(value: Any, where: str, repairs: list[str], depth: int = 0) -> Any:
    """`value` without what JSON cannot hold; each drop is named."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, child in value.items():
            path = f"{where}.{key}"
            if _storable(child, path, repairs, depth):
                kept[key] = _json_only(child, path, repairs, depth + 1)
        return kept
    if isinstance(value, list):
        return [
            _json_only(child, f"{where}[{i}]", repairs, depth + 1)
            for i, child in enumerate(value)
            if _storable(child, f"{where}[{i}]", repairs, depth)
        ]
    return value


def _storable(value: Any, where: str, repairs: list[str], depth: int) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        repairs.append(f"{where} was {value!r}, which JSON cannot hold; dropped")
        return False
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            repairs.append(f"{where} is nested more than {MAX_DEPTH} levels deep; dropped")
            return False
        return True
    if value is None or isinstance(value, bool | int | float | str):
        return True
    repairs.append(f"{where} was {kind(value)}, which JSON cannot hold; dropped")
    return False


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _new_id() -> str:
    return uuid.uuid4().hex[:16]
