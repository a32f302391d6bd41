"""How kernel messages become outputs in a cell: streams, overwrites, clears, caps.
(How a stream folds as a terminal: test_stream_folding.py.)"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from server.gateway.outputs import TRUNCATED_KEY, CellWriter, update_display


def new_cell() -> tuple[Doc[Any], Map[Any]]:
    doc: Doc[Any] = Doc()
    cells = doc.get("cells", type=Array)
    cell = Map({"id": "c", "cell_type": "code", "outputs": Array()})
    cells.append(cell)
    return doc, cell


def outputs_of(cell: Map[Any]) -> list[dict[str, Any]]:
    return list(cell["outputs"].to_py())


def test_a_progress_bar_stays_one_line_and_the_document_stays_small() -> None:
    doc, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    for i in range(2000):
        writer.write(
            cell, "stream", {"name": "stdout", "text": f"\r{i / 20:5.1f}% |{'#' * (i // 100)}"}
        )
    writer.write(cell, "stream", {"name": "stdout", "text": "\ndone ✓\n"})
    assert outputs_of(cell) == [
        {
            "output_type": "stream",
            "name": "stdout",
            "text": f"{1999 / 20:5.1f}% |{'#' * 19}\ndone ✓\n",
        }
    ]
    assert len(doc.get_update()) < 20_000  # not 2000 copies of the bar


def test_streams_coalesce_until_something_else_comes() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    writer.write(cell, "stream", {"name": "stdout", "text": "a"})
    writer.write(cell, "stream", {"name": "stdout", "text": "b\n"})
    writer.write(cell, "stream", {"name": "stderr", "text": "oops\n"})
    writer.write(cell, "stream", {"name": "stdout", "text": "c"})
    writer.write(cell, "display_data", {"data": {"text/plain": "d"}, "metadata": {}})
    writer.write(cell, "stream", {"name": "stdout", "text": "e"})
    assert [(o["output_type"], o.get("text")) for o in outputs_of(cell)] == [
        ("stream", "ab\n"),
        ("stream", "oops\n"),
        ("stream", "c"),
        ("display_data", None),
        ("stream", "e"),
    ]


def test_someone_else_editing_the_stream_text_is_respected() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    writer.write(cell, "stream", {"name": "stdout", "text": "one\ntw"})
    text: Text = cell["outputs"][0]["text"]
    text += "!"
    writer.write(cell, "stream", {"name": "stdout", "text": "o\n"})
    assert outputs_of(cell)[0]["text"] == "one\ntw!o\n"


def test_clear_output_wait_clears_at_the_next_output() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    writer.write(cell, "stream", {"name": "stdout", "text": "frame 1\n"})
    writer.write(cell, "clear_output", {"wait": True})
    assert len(outputs_of(cell)) == 1  # nothing flickers away yet
    writer.write(cell, "stream", {"name": "stdout", "text": "frame 2\n"})
    assert outputs_of(cell) == [{"output_type": "stream", "name": "stdout", "text": "frame 2\n"}]


def test_cap_keeps_what_fits_and_says_so_once() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1000)
    for i in range(1000):
        writer.write(cell, "stream", {"name": "stdout", "text": f"line {i}\n"})
    writer.write(cell, "display_data", {"data": {"image/png": "A" * 5000}, "metadata": {}})
    outputs = outputs_of(cell)
    assert len(outputs) == 2
    assert len(outputs[0]["text"].encode()) <= 1000
    assert outputs[0]["text"].startswith("line 0\nline 1\n")
    assert outputs[1]["metadata"] == {TRUNCATED_KEY: True}
    assert "truncated" in outputs[1]["data"]["text/plain"]
    assert writer.dropped_bytes > 5000
    # Clearing gives the cell its budget back.
    writer.write(cell, "clear_output", {"wait": False})
    writer.write(cell, "stream", {"name": "stdout", "text": "fresh\n"})
    assert outputs_of(cell) == [{"output_type": "stream", "name": "stdout", "text": "fresh\n"}]


def test_one_output_over_the_cap_is_replaced_by_the_notice() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1000)
    writer.write(cell, "display_data", {"data": {"image/png": "A" * 5000}, "metadata": {}})
    assert [o["metadata"] for o in outputs_of(cell)] == [{TRUNCATED_KEY: True}]


def test_update_display_replaces_in_place() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    shown = {"data": {"text/plain": "0%"}, "metadata": {}, "transient": {"display_id": "bar"}}
    assert writer.write(cell, "display_data", shown) == "bar"
    assert writer.write(cell, "stream", {"name": "stdout", "text": "x"}) is None
    assert update_display(cell, "bar", {"data": {"text/plain": "100%"}, "metadata": {}})
    assert not update_display(cell, "other", {"data": {}, "metadata": {}})
    assert outputs_of(cell)[0]["data"] == {"text/plain": "100%"}


def test_altair_6_json_data_is_stored_under_its_json_type() -> None:
    """Altair 6 sends `application/vnd.vegalite.v6.json` with an object: nbformat keeps
    non-text data only under `+json` types, so the cell stays exportable."""
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    spec = {"mark": "bar", "data": {"values": [{"a": 1}]}}
    writer.write(
        cell,
        "display_data",
        {
            "data": {"application/vnd.vegalite.v6.json": spec, "text/plain": "<VegaLite 6>"},
            "metadata": {"application/vnd.vegalite.v6.json": {"embed_options": {}}},
        },
    )
    [output] = outputs_of(cell)
    assert output["data"] == {
        "application/vnd.vegalite.v6+json": spec,
        "text/plain": "<VegaLite 6>",
    }
    assert output["metadata"] == {"application/vnd.vegalite.v6+json": {"embed_options": {}}}
