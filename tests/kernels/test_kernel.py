"""What the worker sends of an output that is too big for the wire."""

from __future__ import annotations

import json

from kernels import messages as m
from kernels.kernel import cap_output, widget_comm_ids


def test_small_outputs_pass_unchanged() -> None:
    content = {"name": "stdout", "text": "hi\n"}
    assert cap_output("stream", content, 1000) is content
    data = {"data": {"text/plain": "1"}, "metadata": {}}
    assert cap_output("execute_result", data, 1000) is data


def test_a_stream_is_cut_at_the_limit_in_bytes() -> None:
    capped = cap_output("stream", {"name": "stdout", "text": "é" * 1000}, 1000)
    assert capped["text"].startswith("é" * 500)
    assert "1,000 bytes of output not shown" in capped["text"]


def test_a_huge_image_becomes_a_notice() -> None:
    capped = cap_output("display_data", {"data": {"image/png": "A" * 50_000}, "metadata": {}}, 1000)
    assert list(capped["data"]) == ["text/plain"]
    assert "image/png" in capped["data"]["text/plain"]


def test_a_huge_traceback_keeps_its_end() -> None:
    traceback = [f"frame {i}" * 10 for i in range(10_000)]
    content = {"ename": "RecursionError", "evalue": "deep", "traceback": traceback}
    capped = cap_output("error", content, 10_000)
    assert len(json.dumps(capped)) < 10_000
    assert capped["traceback"][-1] == traceback[-1]
    assert "traceback lines not shown" in capped["traceback"][0]
    assert capped["ename"] == "RecursionError"


def test_a_kernels_list_of_widget_comms_is_filtered_and_capped() -> None:
    listed = {f"c{i}": {"target_name": "jupyter.widget"} for i in range(m.MAX_WIDGETS + 5)}
    other = {"x": {"target_name": "other"}, "y" * 65: {"target_name": "jupyter.widget"}}
    ids = widget_comm_ids({"status": "ok", "comms": {**other, **listed}})
    assert ids == [f"c{i}" for i in range(m.MAX_WIDGETS)]
    assert widget_comm_ids({"status": "error", "comms": listed}) == []
    assert widget_comm_ids({"status": "ok", "comms": ["c1"]}) == []
