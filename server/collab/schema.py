"""The shape a room's document must keep: jupyter_ydoc's YNotebook, as nbformat can export it.

`cell_problem` and `meta_problem` say what is wrong with one cell or with the `meta` map (None
when nothing is); `json_problem` finds what JSON cannot hold (NaN, bytes, absurd nesting).
The schema guard asks them about what an editor's update changed; the export and restore
ask them about every part of a stored document, to repair or skip what they name.
"""

from __future__ import annotations

import math
import re
from typing import Any

import nbformat
from nbformat.validator import get_validator
from pycrdt import Array, Map, Text

NBFORMAT = 4
NBFORMAT_MINOR: int = nbformat.v4.nbformat_minor
# 4.4 documents (ids stripped on export) are still read; older minors have other schemas.
NBFORMAT_MINORS = range(4, NBFORMAT_MINOR + 1)
CELL_TYPES = ("code", "markdown", "raw")
CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_DEPTH = 64

_validator = get_validator(version=NBFORMAT, version_minor=NBFORMAT_MINOR)  # type: ignore[no-untyped-call]


def kind(value: object) -> str:
    """A value's kind in words, for messages (never the value itself)."""
    if isinstance(value, Text):
        return "a Text"
    if isinstance(value, Map):
        return "a Map"
    if isinstance(value, Array):
        return "an Array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def json_problem(value: Any, where: str = "") -> str | None:
    """What in `value` (plain Python, as `to_py` gives it) JSON cannot hold, or None."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{path or 'a value'} is nested more than {MAX_DEPTH} levels deep"
        if item is None or isinstance(item, bool | int | str):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{path or 'a value'} is {item!r}, which JSON cannot hold"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"{path or 'an object'} has a key that is not a string"
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        else:
            return f"{path or 'a value'} is {kind(item)}, which JSON cannot hold"
    return None


def text_problem(text: Text, where: str) -> str | None:
    """Shared text must hold text only: editors (CodeMirror's binding) choke on embeds."""
    for chunk, _ in text.diff():
        if not isinstance(chunk, str):
            return f"{where} holds {kind(chunk)} where only text belongs"
    return None


def to_plain(value: Any) -> Any:
    """`to_py` that turns a RecursionError (a hostile nesting) into a ValueError."""
    try:
        return value.to_py() if isinstance(value, Map | Array | Text) else value
    except RecursionError:
        raise ValueError("nested too deeply") from None


def cast_integers(value: Any) -> Any:
    """Integral floats as ints, as jupyter_ydoc reads them (Yjs numbers are doubles)."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, dict):
        return {key: cast_integers(child) for key, child in value.items()}
    if isinstance(value, list):
        return [cast_integers(child) for child in value]
    return value


def as_nbformat_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell as `to_py` gives it, in the form the export writes (jupyter_ydoc's reading)."""
    cell = cast_integers(cell)
    cell.pop("execution_state", None)
    if cell.get("cell_type") in ("raw", "markdown") and not cell.get("attachments", True):
        del cell["attachments"]
    for output in cell.get("outputs") or []:
        if isinstance(output, dict):
            # Display ids let the server update an output in place; nbformat has no field.
            output.pop("transient", None)
    return cell


def nbformat_problem(cell: dict[str, Any]) -> str | None:
    """What nbformat's schema says about one cell in export form, or None."""
    notebook = {
        "nbformat": NBFORMAT,
        "nbformat_minor": NBFORMAT_MINOR,
        "metadata": {},
        "cells": [cell],
    }
    try:
        _validator.validate(notebook)
    except Exception as error:
        message = str(getattr(error, "message", error)).strip().splitlines()
        return (message[0] if message else "not valid nbformat")[:200]
    return None


def _shape_problem(cell: Map[Any]) -> str | None:
    """The shared types a cell's parts must be, which `to_py` no longer shows."""
    source = cell.get("source")
    if not isinstance(source, Text):
        return f"its source is {kind(source)}, not a Text"
    if (problem := text_problem(source, "its source")) is not None:
        return problem
    metadata = cell.get("metadata")
    if not isinstance(metadata, Map | dict):
        return f"its metadata is {kind(metadata)}, not a Map"
    if "execution_state" in cell and not isinstance(cell.get("execution_state"), str):
        return "its execution_state is not a string"
    if cell.get("cell_type") != "code":
        return None
    outputs = cell.get("outputs")
    if not isinstance(outputs, Array):
        return f"its outputs are {kind(outputs)}, not an Array"
    for index, output in enumerate(outputs):
        if not isinstance(output, Map | dict):
            return f"output {index} is {kind(output)}, not a Map"
        text = output.get("text")
        if text is not None and not isinstance(text, Text | str | list):
            return f"output {index}'s text is {kind(text)}, not a Text"
        if isinstance(text, Text) and (problem := text_problem(text, "an output's text")):
            return problem
    return None


def cell_problem(cell: object) -> str | None:
    """What keeps `cell` (an item of the `cells` array) from being a notebook cell."""
    if not isinstance(cell, Map):
        return f"a cell must be a Map, not {kind(cell)}"
    cell_id = cell.get("id")
    if not isinstance(cell_id, str) or not CELL_ID.match(cell_id):
        return "a cell needs an id of 1 to 64 letters, digits, '-' or '_'"
    if cell.get("cell_type") not in CELL_TYPES:
        return "a cell's type must be code, markdown or raw"
    if (problem := _shape_problem(cell)) is not None:
        return problem
    try:
        value = to_plain(cell)
    except ValueError:
        return "the cell is nested too deeply"
    if (problem := json_problem(value)) is not None:
        return problem
    return nbformat_problem(as_nbformat_cell(value))


def meta_problem(meta: Map[Any]) -> str | None:
    """What keeps the `meta` map from describing an nbformat 4 notebook."""
    major, minor = meta.get("nbformat"), meta.get("nbformat_minor")
    if not _is_integer(major) or major != NBFORMAT:
        return f"meta.nbformat must be {NBFORMAT}"
    if (
        not isinstance(minor, int | float)
        or not _is_integer(minor)
        or int(minor) not in NBFORMAT_MINORS
    ):
        return f"meta.nbformat_minor must be {NBFORMAT_MINORS[0]} to {NBFORMAT_MINORS[-1]}"
    for key in list(meta.keys()):
        if key not in ("nbformat", "nbformat_minor", "metadata"):
            # Not exported, but jupyter_ydoc reads the whole map: it must be plain JSON.
            try:
                extra = to_plain(meta.get(key))
            except ValueError:
                return f"meta.{key} is nested too deeply"
            if (problem := json_problem(extra, f"meta.{key}")) is not None:
                return problem
    metadata = meta.get("metadata")
    if not isinstance(metadata, Map | dict):
        return f"meta.metadata is {kind(metadata)}, not a Map"
    try:
        value = to_plain(metadata)
    except ValueError:
        return "meta.metadata is nested too deeply"
    if (problem := json_problem(value, "meta.metadata")) is not None:
        return problem
    return metadata_problem(cast_integers(value))


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """What nbformat's schema says about notebook-level metadata, or None."""
    notebook = {
        "nbformat": NBFORMAT,
        "nbformat_minor": NBFORMAT_MINOR,
        "metadata": metadata,
        "cells": [],
    }
    try:
        _validator.validate(notebook)
    except Exception as error:
        message = str(getattr(error, "message", error)).strip().splitlines()
        return "meta.metadata: " + (message[0] if message else "not valid nbformat")[:200]
    return None


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value == int(value)
