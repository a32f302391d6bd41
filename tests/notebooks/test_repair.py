"""Reading a stored document that slipped past the schema guard: every poisoning of issue 12
reads as valid nbformat, with the repair named (server/notebooks/repair.py)."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from pycrdt import Array, Doc, Map

from server.notebooks import repair
from server.notebooks.service import blank_notebook, export_reading, initial_state
from tests.support_schema import POISONS, change


def _poisoned(name: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_state(blank_notebook()))
    change(doc, POISONS[name])
    return doc.get_update()


@pytest.mark.parametrize("name", sorted(POISONS))
def test_every_poisoning_reads_as_valid_nbformat(name: str) -> None:
    reading = export_reading(_poisoned(name))
    nbformat.validate(nbformat.from_dict(reading.content))
    assert reading.repairs, "the repair is not named"
    # The notebook's own cell is always kept; an id-less cell is kept too, with a new id.
    assert reading.content["cells"][0]["source"] == ""
    assert "X-Tandem-Repaired" in reading.headers()


def test_a_sound_document_needs_no_repair() -> None:
    reading = repair.read_state(initial_state(blank_notebook()))
    assert reading.repairs == []


def test_repeated_ids_and_unknown_keys_are_repaired() -> None:
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_state(blank_notebook()))

    def edit(doc: Doc[Any]) -> None:
        cells = doc.get("cells", type=Array)
        first = cells[0]
        first["attachments"] = {}  # a code cell has none
        cells.append(first.to_py() | {"source": "copy"})  # a plain object: not a cell Map

    change(doc, edit)
    reading = repair.read_state(doc.get_update())
    nbformat.validate(nbformat.from_dict(reading.content))
    assert any("attachments" in line for line in reading.repairs)
    assert any("not a cell" in line for line in reading.repairs)


def test_an_unreadable_state_reads_as_empty() -> None:
    reading = repair.read_state(b"\x05\x01\xff\xff")
    assert reading.content["cells"] == []
    assert reading.repairs


def test_parts_a_hand_written_client_leaves_out_are_filled_in_quietly() -> None:
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_state(blank_notebook()))
    change(
        doc, lambda d: d.get("cells", type=Array).append(Map({"id": "bare", "cell_type": "code"}))
    )
    reading = repair.read_state(doc.get_update())
    assert reading.repairs == []
    bare = reading.content["cells"][1]
    assert (bare["source"], bare["outputs"], bare["execution_count"]) == ("", [], None)
