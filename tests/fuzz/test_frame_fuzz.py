"""Frame fuzzer for the sync socket: seeded random and mutated y-websocket frames (bad
varints, truncations, huge lengths, unknown types, garbage updates) from an editor. Each
frame either gets an answer or closes its own socket with a code from the public table;
nobody else is disturbed, the notebook stays whole and the server logs no traceback. The
fixed cases live in tests/collab/test_bad_input.py; this walks around them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import websockets
from pycrdt import Array, Doc, YSyncMessageType, write_var_uint

from server import protocol
from tests.support import Api, Person, ServerProcess, YClient, eventually, sync_url
from tests.support_schema import change, valid_cell, whole

# The close codes of DESIGN.md's table that a frame may earn.
CLOSE_CODES = {1000, 1002, 1003, 1007, 1009, 1011}


def _seeds(doc: Doc[Any]) -> list[bytes]:
    """Valid frames of every kind to mutate from."""
    update = change(doc, lambda d: d.get("cells", type=Array)[0]["source"].insert(0, "fuzz"))
    awareness = protocol.encode_awareness_message(
        [protocol.AwarenessEntry(7, 1, '{"cursor": null}')]
    )
    return [
        protocol.encode_sync(YSyncMessageType.SYNC_STEP1, doc.get_state()),
        protocol.encode_sync(YSyncMessageType.SYNC_STEP2, update),
        protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update),
        awareness,
        b"\x03",
        protocol.encode_permission_denied("x"),
    ]


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.25 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif roll < 0.4 and data:
            del data[rng.randrange(len(data)) :]
        elif roll < 0.55:
            position = rng.randint(0, len(data))
            data[position:position] = write_var_uint(rng.choice([2**31, 2**53 - 1, 10**6]))
        elif roll < 0.65:
            data[rng.randint(0, len(data)) :] = b"\xff" * rng.randint(1, 12)
        elif roll < 0.75 and data:
            data[0] = rng.randrange(256)
        elif roll < 0.85:
            position = rng.randint(0, len(data))
            data[position:position] = rng.randbytes(rng.randint(1, 16))
        else:
            data += rng.randbytes(rng.randint(0, 8))
    return bytes(data)


async def _frame(url: str, frame: bytes) -> int | None:
    """Send one frame on a fresh socket; the close code it earned, or None (still open)."""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(frame)
        await ws.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP1, b"\x00"))
        with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    message = await ws.recv()
                    if isinstance(message, bytes) and message[:2] == b"\x00\x01":
                        return None  # answered: the frame was taken or ignored
        return ws.close_code


async def test_hostile_frames_close_only_their_own_socket(
    fuzz_server: ServerProcess,
    fuzz_people: dict[str, Person],
    owner: Api,
    fuzz_seed: int,
    fuzz_seconds: float,
) -> None:
    rng = random.Random(fuzz_seed)
    notebook = owner.create("frame fuzz")
    owner.share(notebook, "editor", "editor")
    url = sync_url(fuzz_server, notebook, fuzz_people["editor"].token)
    codes: dict[int | None, int] = {}
    deadline = time.monotonic() + fuzz_seconds
    async with YClient(sync_url(fuzz_server, notebook, fuzz_people["owner"].token)) as bystander:
        seeds = _seeds(_copy(bystander.doc))
        while time.monotonic() < deadline:
            frame = _mutate(rng, rng.choice(seeds)) if rng.random() < 0.9 else rng.randbytes(32)
            code = await _frame(url, frame)
            assert code is None or code in CLOSE_CODES, (frame, code)
            codes[code] = codes.get(code, 0) + 1
        print(f"frame fuzz: close codes {codes}")
        # The bystander is still served (the fuzz may have deleted every cell: add one).
        bystander.cells.append(valid_cell(id="still-here"))
        await eventually(
            lambda: any(c["id"] == "still-here" for c in owner.export(notebook)["cells"])
        )
    whole(owner, notebook)


def _copy(doc: Doc[Any]) -> Doc[Any]:
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    return copy
