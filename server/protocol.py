"""The y-websocket wire format as pure functions: bytes in, messages out, no I/O.

pycrdt encodes sync messages; this module adds strict parsing (every length checked, so a
truncated or hostile frame raises `ProtocolError` instead of `IndexError`), the awareness
update format, and the y-protocols auth message used to refuse a write.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from enum import IntEnum

from pycrdt import YMessageType, YSyncMessageType, write_var_uint

from server.errors import ProtocolError, UnknownMessage

# lib0 numbers are JavaScript-safe integers: at most 53 bits.
_MAX_VAR_UINT_BITS = 53


class MessageType(IntEnum):
    SYNC = YMessageType.SYNC
    AWARENESS = YMessageType.AWARENESS
    AUTH = 2
    QUERY_AWARENESS = 3


AUTH_PERMISSION_DENIED = 0
EMPTY_UPDATE = b"\x00\x00"


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    payload: bytes


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


@dataclass(frozen=True, slots=True)
class AuthMessage:
    payload: bytes


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessUpdate | QueryAwareness | AuthMessage


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    # The JSON text of the state; "null" means the client went away.
    state: str

    @property
    def is_removal(self) -> bool:
        return self.state == "null"


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a lib0 variable-length unsigned integer at `pos`; return it and the next position."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("truncated message: a number runs past the end of the frame")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= _MAX_VAR_UINT_BITS:
            raise ProtocolError("malformed message: a number is longer than 53 bits")


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("truncated message: a length points past the end of the frame")
    return data[pos:end], end


def read_var_string(data: bytes, pos: int) -> tuple[str, int]:
    raw, pos = read_var_bytes(data, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise ProtocolError("malformed message: a string is not valid UTF-8") from None


def _expect_end(data: bytes, pos: int) -> None:
    if pos != len(data):
        raise ProtocolError("malformed message: unexpected bytes after the message")


def parse_message(frame: bytes) -> Message:
    """Parse one binary websocket frame sent by a y-websocket client."""
    if not frame:
        raise ProtocolError("empty frame")
    kind, pos = read_var_uint(frame, 0)
    if kind == MessageType.SYNC:
        sync_kind, pos = read_var_uint(frame, pos)
        payload, pos = read_var_bytes(frame, pos)
        _expect_end(frame, pos)
        if sync_kind == YSyncMessageType.SYNC_STEP1:
            return SyncStep1(payload)
        if sync_kind == YSyncMessageType.SYNC_STEP2:
            return SyncStep2(payload)
        if sync_kind == YSyncMessageType.SYNC_UPDATE:
            return SyncUpdate(payload)
        raise UnknownMessage(f"unknown sync message type {sync_kind}")
    if kind == MessageType.AWARENESS:
        payload, pos = read_var_bytes(frame, pos)
        _expect_end(frame, pos)
        return AwarenessUpdate(payload)
    if kind == MessageType.QUERY_AWARENESS:
        _expect_end(frame, pos)
        return QueryAwareness()
    if kind == MessageType.AUTH:
        return AuthMessage(frame[pos:])
    raise UnknownMessage(f"unknown message type {kind}")


def parse_awareness_update(payload: bytes) -> list[AwarenessEntry]:
    count, pos = read_var_uint(payload, 0)
    entries = []
    for _ in range(count):
        client_id, pos = read_var_uint(payload, pos)
        clock, pos = read_var_uint(payload, pos)
        state, pos = read_var_string(payload, pos)
        entries.append(AwarenessEntry(client_id, clock, state))
    _expect_end(payload, pos)
    return entries


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        state = entry.state.encode("utf-8")
        parts += [
            write_var_uint(entry.client_id),
            write_var_uint(entry.clock),
            write_var_uint(len(state)),
            state,
        ]
    return b"".join(parts)


def encode_awareness_message(entries: list[AwarenessEntry]) -> bytes:
    payload = encode_awareness_update(entries)
    return bytes([MessageType.AWARENESS]) + write_var_uint(len(payload)) + payload


def encode_sync(kind: YSyncMessageType, payload: bytes) -> bytes:
    return bytes([MessageType.SYNC, kind]) + write_var_uint(len(payload)) + payload


def encode_permission_denied(reason: str) -> bytes:
    """The y-protocols auth message a stock y-websocket client reports as permission denied."""
    text = reason.encode("utf-8")
    return bytes([MessageType.AUTH, AUTH_PERMISSION_DENIED]) + write_var_uint(len(text)) + text


DeleteSet = dict[int, list[tuple[int, int]]]


def read_delete_set(data: bytes, pos: int) -> tuple[DeleteSet, int]:
    """Read a Yjs delete set (client -> [(clock, length)]), as it ends an update and starts a
    snapshot."""
    clients, pos = read_var_uint(data, pos)
    result: DeleteSet = {}
    for _ in range(clients):
        client, pos = read_var_uint(data, pos)
        count, pos = read_var_uint(data, pos)
        ranges = result.setdefault(client, [])
        for _ in range(count):
            clock, pos = read_var_uint(data, pos)
            length, pos = read_var_uint(data, pos)
            ranges.append((clock, length))
    return result, pos


def delete_set_within(inner: DeleteSet, outer: DeleteSet) -> bool:
    """True when every deleted range of `inner` is already deleted in `outer`."""
    for client, ranges in inner.items():
        merged: list[tuple[int, int]] = []
        for clock, length in sorted(outer.get(client, [])):
            if merged and clock <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], clock + length))
            else:
                merged.append((clock, clock + length))
        for clock, length in ranges:
            if length == 0:
                continue
            index = bisect_right(merged, (clock, float("inf"))) - 1
            if index < 0 or clock + length > merged[index][1]:
                return False
    return True


def stamp_user(state: str, user: dict[str, str]) -> str | None:
    """Return the awareness state with its `user` fields forced to the authenticated person.

    Clients choose their colour and cursor, never their name. None means the state is not a
    JSON object and should be dropped.
    """
    try:
        value = json.loads(state)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    claimed = value.get("user")
    stamped: dict[str, object] = dict(claimed) if isinstance(claimed, dict) else {}
    stamped.update(user)
    value["user"] = stamped
    return json.dumps(value, separators=(",", ":"))


def read_state_vector(data: bytes) -> dict[int, int]:
    """A Yjs state vector as {client id: next clock}."""
    count, offset = read_var_uint(data, 0)
    result: dict[int, int] = {}
    for _ in range(count):
        client, offset = read_var_uint(data, offset)
        clock, offset = read_var_uint(data, offset)
        result[client] = clock
    if offset != len(data):
        raise ProtocolError("trailing bytes after a state vector")
    return result


def state_vector_covers(have: dict[int, int], want: dict[int, int]) -> bool:
    """Whether a document at `have` holds everything a document at `want` holds."""
    return all(have.get(client, 0) >= clock for client, clock in want.items())
