"""The y-websocket framing, from bytes alone (no server)."""

from __future__ import annotations

import json
import os
import random

import pytest
from pycrdt import Doc, Text, YSyncMessageType, create_sync_message, create_update_message

from server import protocol
from server.errors import ProtocolError, UnknownMessage


def test_parses_what_pycrdt_writes() -> None:
    doc: Doc = Doc()
    doc.get("t", type=Text).insert(0, "hello")
    step1 = protocol.parse_message(create_sync_message(doc))
    assert step1 == protocol.SyncStep1(doc.get_state())
    update = protocol.parse_message(create_update_message(doc.get_update()))
    assert update == protocol.SyncUpdate(doc.get_update())
    step2 = protocol.encode_sync(YSyncMessageType.SYNC_STEP2, b"\x00\x00")
    assert protocol.parse_message(step2) == protocol.SyncStep2(b"\x00\x00")
    assert protocol.parse_message(b"\x03") == protocol.QueryAwareness()


def test_awareness_round_trip() -> None:
    entries = [
        protocol.AwarenessEntry(1, 3, json.dumps({"user": {"name": "x"}})),
        protocol.AwarenessEntry(2**40, 0, "null"),
    ]
    message = protocol.encode_awareness_message(entries)
    parsed = protocol.parse_message(message)
    assert isinstance(parsed, protocol.AwarenessUpdate)
    assert protocol.parse_awareness_update(parsed.payload) == entries
    assert entries[1].is_removal


def test_permission_denied_is_the_y_protocols_auth_message() -> None:
    # y-protocols/auth: messageAuth (2), messagePermissionDenied (0), varString reason.
    assert protocol.encode_permission_denied("no") == b"\x02\x00\x02no"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            '{"user": {"name": "mallory", "color": "#123"}, "cursor": 4}',
            {"user": {"name": "bob", "color": "#123"}, "cursor": 4},
        ),
        ('{"cursor": null}', {"cursor": None, "user": {"name": "bob"}}),
        ('{"user": "mallory"}', {"user": {"name": "bob"}}),
    ],
)
def test_stamp_user_overrides_the_claimed_name(state: str, expected: dict[str, object]) -> None:
    stamped = protocol.stamp_user(state, {"name": "bob"})
    assert stamped is not None
    assert json.loads(stamped) == expected


@pytest.mark.parametrize("state", ["[1,2]", "42", "not json", '"text"'])
def test_stamp_user_drops_states_that_are_not_objects(state: str) -> None:
    assert protocol.stamp_user(state, {"name": "bob"}) is None


def test_unknown_types_are_named() -> None:
    with pytest.raises(UnknownMessage, match="unknown message type 9"):
        protocol.parse_message(b"\x09")


def test_random_bytes_never_raise_anything_but_protocol_errors() -> None:
    """A small fuzz: whatever arrives, parsing ends in a message or a ProtocolError."""
    seed = int(os.environ.get("TANDEM_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    valid = [
        protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, b"\x01\x02\x03"),
        protocol.encode_awareness_message([protocol.AwarenessEntry(5, 1, "{}")]),
    ]
    for _ in range(20000):
        if rng.random() < 0.5:
            frame = bytes(rng.randrange(256) for _ in range(rng.randrange(12)))
        else:
            frame = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            frame = bytes(frame[: rng.randrange(len(frame) + 1)])
        try:
            message = protocol.parse_message(frame)
            if isinstance(message, protocol.AwarenessUpdate):
                protocol.parse_awareness_update(message.payload)
        except ProtocolError:
            pass


def test_delete_set_containment() -> None:
    outer = {1: [(0, 3), (3, 2), (10, 5)], 2: [(4, 1)]}
    assert protocol.delete_set_within({1: [(1, 4)], 2: [(4, 1)]}, outer)
    assert protocol.delete_set_within({1: [(10, 5)]}, outer)
    assert protocol.delete_set_within({}, outer)
    assert not protocol.delete_set_within({1: [(4, 2)]}, outer)
    assert not protocol.delete_set_within({1: [(9, 2)]}, outer)
    assert not protocol.delete_set_within({3: [(0, 1)]}, outer)


def test_state_vectors_read_and_compare() -> None:
    from pycrdt import Doc, Text

    from server.protocol import read_state_vector, state_vector_covers

    doc: Doc = Doc()
    doc.get("t", type=Text).insert(0, "abc")
    vector = read_state_vector(doc.get_state())
    assert vector == {doc.client_id: 3}
    assert state_vector_covers(vector, {})
    assert state_vector_covers({**vector, 7: 1}, vector)
    assert not state_vector_covers({}, vector)
    assert not state_vector_covers({doc.client_id: 2}, vector)
    with pytest.raises(ProtocolError):
        read_state_vector(doc.get_state() + b"\x00")
