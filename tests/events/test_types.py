"""Every notebook event survives JSON (so it can cross a broker) and keeps the shape clients
read on the events websocket."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import pytest

from server.events import types as t

EXAMPLES: list[t.Event] = [
    t.MembersChanged(
        notebook_id="nb",
        members=[{"username": "alice", "role": "owner"}],
        changed=t.MemberChange(username="bob", role=None),
    ),
    t.NotebookRenamed(notebook_id="nb", title="new name"),
    t.NotebookDeleted(notebook_id="nb"),
    t.RuntimeStatusChanged(notebook_id="nb", runtime={"status": "idle", "queue": []}),
    t.RuntimeLimitWarning(
        notebook_id="nb",
        reason="idle",
        seconds_left=300,
        deadline=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    ),
    t.InputRequested(
        notebook_id="nb", cell_id="c1", username="alice", prompt="name? ", password=False
    ),
    t.InputAnswered(notebook_id="nb", cell_id="c1"),
    t.WidgetComm(
        notebook_id="nb",
        seq=7,
        msg_type="comm_msg",
        comm_id="w1",
        data={"method": "echo_update", "state": {"value": 3}, "buffer_paths": []},
        metadata={},
        buffers=["AAE="],
        parent_msg_id="page-msg",
    ),
    t.WidgetsReset(notebook_id="nb", seq=8),
    t.ThreadCreated(notebook_id="nb", thread={"id": "t1", "comments": []}),
    t.ThreadUpdated(notebook_id="nb", thread={"id": "t1", "resolved": True}),
    t.ThreadsOrphaned(notebook_id="nb", thread_ids=["t1"], cell_ids=["c1"]),
    t.ThreadsRestored(notebook_id="nb", thread_ids=["t1"], cell_ids=["c1"]),
    t.FilesChanged(
        notebook_id="nb",
        action="written",
        by="alice",
        path="data.csv",
        file={"path": "data.csv", "size": 3},
        replaced=t.FileReplaced(sha256="ab" * 32, by="bob"),
    ),
    t.FilesRefused(notebook_id="nb", path="big.bin", reason="over the quota"),
    t.SessionsEnded(notebook_id="nb", username="alice"),
]


def test_every_event_type_has_an_example() -> None:
    union = typing.get_args(t.NotebookEvent)[0]
    assert {cls for cls in typing.get_args(union)} == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_round_trips_through_json(event: t.Event) -> None:
    assert t.parse_event(event.model_dump_json()) == event
    assert t.parse_event(json.dumps(event.to_json())) == event


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_wire_shape_is_type_then_notebook_then_fields(event: t.Event) -> None:
    message = event.to_json()
    assert list(message)[:2] == ["type", "notebook_id"]
    assert message["type"] == event.type


def test_shapes_clients_read() -> None:
    members = EXAMPLES[0].to_json()
    assert members["changed"] == {"username": "bob", "role": None}
    warning = EXAMPLES[4].to_json()
    assert warning["deadline"] == "2025-01-02T03:04:05+00:00"
    assert warning["seconds_left"] == 300


def test_files_changed_sends_only_its_actions_fields() -> None:
    moved = t.FilesChanged(notebook_id="nb", action="moved", by="alice", path="a", to="b")
    assert moved.to_json() == {
        "type": "files.changed",
        "notebook_id": "nb",
        "action": "moved",
        "by": "alice",
        "path": "a",
        "to": "b",
    }
    assert t.parse_event(json.dumps(moved.to_json())) == moved


def test_unknown_or_malformed_events_are_refused() -> None:
    with pytest.raises(ValueError):
        t.parse_event('{"type": "no.such", "notebook_id": "nb"}')
    with pytest.raises(ValueError):
        t.parse_event('{"type": "notebook.renamed", "notebook_id": "nb"}')
