"""Schema fuzzer: seeded random CRDT-valid writes of every type at every path of a notebook,
sent by an editor over a real sync socket. Whatever the server accepts or refuses, afterwards
the notebook exports valid nbformat with nothing to repair, a version saves and restores, a
bystander holds exactly the server's document, and the server logged no traceback."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import websockets
from pycrdt import Array, Doc, Map, Text, YSyncMessageType

from server import protocol
from tests.support import Api, Person, ServerProcess, YClient, eventually, sync_url
from tests.support_schema import DENIED, valid_cell, whole

KEYS = [
    "id",
    "cell_type",
    "source",
    "metadata",
    "outputs",
    "execution_count",
    "execution_state",
    "attachments",
    "nbformat",
    "nbformat_minor",
    "output_type",
    "name",
    "text",
    "data",
    "kernelspec",
    "language_info",
    "tags",
    "collapsed",
    "x",
    "",
]
STRINGS = ["", "code", "markdown", "raw", "stream", "stdout", "four", "a-b_c", "é\u202e", "x" * 70]


class Writer:
    """Random values and random edits, all from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def scalar(self) -> Any:
        return self.rng.choice(
            [
                lambda: self.rng.randint(-3, 5),
                lambda: 2**60,
                lambda: self.rng.choice([1.5, 4.0, float("nan"), float("inf"), -float("inf")]),
                lambda: self.rng.choice(STRINGS),
                lambda: self.rng.choice([True, False, None]),
                lambda: b"\x00\xff",
            ]
        )()

    def value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth > 2 or roll < 0.4:
            return self.scalar()
        if roll < 0.5:
            return Text(self.rng.choice(STRINGS))
        if roll < 0.6:
            return Map({self.rng.choice(KEYS): self.value(depth + 1) for _ in range(3)})
        if roll < 0.7:
            return Array([self.value(depth + 1) for _ in range(self.rng.randint(0, 3))])
        if roll < 0.8:
            return {self.rng.choice(KEYS): self.scalar() for _ in range(2)}
        if roll < 0.85:
            return [self.scalar() for _ in range(2)]
        return self.cell()

    def cell(self) -> Map[Any]:
        """A cell, valid more often than not; sometimes with one part broken."""
        fields: dict[str, Any] = {"id": f"c{self.rng.randrange(10**6)}", "execution_state": "idle"}
        if self.rng.random() < 0.3:
            fields[self.rng.choice(KEYS)] = self.value(2)
        return valid_cell(**fields)

    def targets(self, doc: Doc[Any]) -> list[Any]:
        """Every shared type in the notebook's roots, reached by walking them."""
        found: list[Any] = []
        stack: list[Any] = [doc.get("cells", type=Array), doc.get("meta", type=Map)]
        while stack:
            item = stack.pop()
            found.append(item)
            children = (
                item.values() if isinstance(item, Map) else item if isinstance(item, Array) else []
            )
            stack.extend(c for c in children if isinstance(c, Map | Array | Text))
        return found

    def edit(self, doc: Doc[Any]) -> None:
        target = self.rng.choice(self.targets(doc))
        if isinstance(target, Text):
            self._edit_text(target)
        elif isinstance(target, Map):
            keys = list(target.keys())
            if keys and self.rng.random() < 0.25:
                del target[self.rng.choice(keys)]
            else:
                key = self.rng.choice(keys + KEYS) if keys else self.rng.choice(KEYS)
                target[key] = self.value()
        else:
            if len(target) and self.rng.random() < 0.25:
                del target[self.rng.randrange(len(target))]
            else:
                target.insert(self.rng.randint(0, len(target)), self.value())

    def _edit_text(self, text: Text) -> None:
        roll = self.rng.random()
        position = self.rng.randint(0, len(text))
        if roll < 0.6:
            text.insert(position, self.rng.choice(STRINGS) or "a")
        elif roll < 0.75 and len(text):
            del text[self.rng.randrange(len(text))]
        elif roll < 0.9:
            text.insert_embed(position, self.scalar() if self.rng.random() < 0.5 else {"k": 1})
        elif len(text):
            text.format(0, len(text), {"bold": True})


class Editor:
    """A raw sync socket: sends updates, counts the refusals that come back."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.refusals = 0
        self.answers = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes) and message.startswith(DENIED):
                self.refusals += 1
            elif isinstance(message, bytes) and message[:2] == b"\x00\x01":
                self.answers += 1

    async def send(self, update: bytes) -> bool:
        """Send one update; True when the server took it, False when it refused it. A sync
        step 1 right after is the barrier: the server handles a socket's messages in order,
        so its answer comes after the verdict on the update."""
        refusals, answers = self.refusals, self.answers
        await self.ws.send(protocol.encode_sync(YSyncMessageType.SYNC_UPDATE, update))
        await self.ws.send(protocol.encode_sync(YSyncMessageType.SYNC_STEP1, b"\x00"))
        await eventually(lambda: self.answers > answers, timeout=10)
        return self.refusals == refusals

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


async def test_editor_writes_cannot_break_the_notebook(
    fuzz_server: ServerProcess,
    fuzz_people: dict[str, Person],
    owner: Api,
    fuzz_seed: int,
    fuzz_seconds: float,
) -> None:
    rng = random.Random(fuzz_seed)
    writer = Writer(rng)
    notebook = owner.create("schema fuzz")
    owner.share(notebook, "editor", "editor")
    url = sync_url(fuzz_server, notebook, fuzz_people["editor"].token)
    accepted = refused = 0
    deadline = time.monotonic() + fuzz_seconds
    async with YClient(sync_url(fuzz_server, notebook, fuzz_people["owner"].token)) as bystander:
        editor = Editor(await websockets.connect(url, max_size=None))
        try:
            while time.monotonic() < deadline:
                # A fresh client each time: a refused edit never taints the next one.
                attacker: Doc[Any] = Doc()
                attacker.apply_update(bystander.doc.get_update())
                before = attacker.get_state()
                try:
                    with attacker.transaction():
                        for _ in range(rng.randint(1, 3)):
                            writer.edit(attacker)
                except BaseException as error:  # a panic in pycrdt is a BaseException
                    if type(error).__name__ != "PanicException":
                        raise
                    continue  # pycrdt refused the edit locally: nothing to send
                update = attacker.get_update(before)
                if update == protocol.EMPTY_UPDATE:
                    continue
                if await editor.send(update):
                    accepted += 1
                else:
                    refused += 1
                if rng.random() < 0.02 and accepted:
                    whole(owner, notebook)  # now and then mid-run, not only at the end
        finally:
            await editor.close()
        print(f"schema fuzz: {accepted} accepted, {refused} refused")
        assert refused, "the fuzzer never hit the guard"
        async with YClient(sync_url(fuzz_server, notebook, fuzz_people["owner"].token)) as fresh:
            # Same content (a Doc's state vector can differ from its re-encoding's: yrs
            # leaves some collected ranges out of `get_update`).
            try:
                await eventually(lambda: _content(fresh.doc) == _content(bystander.doc))
            except AssertionError:
                print("fresh:", _content(fresh.doc), "\nbystander:", _content(bystander.doc))
                raise
    whole(owner, notebook)


def _content(doc: Doc[Any]) -> str:
    """The notebook's roots as comparable text (NaN is not equal to itself)."""
    roots = [doc.get(name, type=kind).to_py() for name, kind in (("cells", Array), ("meta", Map))]
    return json.dumps(roots, sort_keys=True, default=repr)
