"""Randomised: pycrdt and Node yjs clients edit cells concurrently, reconnecting at random;
every replica ends identical and the export is a valid notebook.

Set TANDEM_TEST_SEED to replay a run; the seed is printed either way."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
from typing import Any

import nbformat
from pycrdt import Array, Map, Text

from tests.support import (
    Api,
    NodeClient,
    Person,
    ServerProcess,
    YClient,
    state_vector,
    sync_url,
)

PY_CLIENTS = 3
NODE_CLIENTS = 2
ROUNDS = 12
WORDS = ["x", "import numpy as np", "\n", "print(1)", "é", "中文", "def f():", "  return 2"]


def random_edit(client: YClient, rng: random.Random, tag: str) -> None:
    cells = client.cells
    roll = rng.random()
    if len(cells) == 0 or roll < 0.08:
        cells.insert(rng.randrange(len(cells) + 1), new_cell(rng, tag))
        return
    index = rng.randrange(len(cells))
    cell = cells[index]
    if roll < 0.12 and len(cells) > 2:
        del cells[index]
    elif roll < 0.15 and len(cells) > 1:
        # A move as Yjs clients make it (delete + insert a copy), in one transaction.
        copy = new_cell(rng, tag, str(cell["source"]))
        copy_id = cell["id"]
        with client.doc.transaction():
            del cells[index]
            cells.insert(rng.randrange(len(cells) + 1), copy)
            copy["id"] = copy_id
    elif roll < 0.2:
        cell["metadata"][f"tag{rng.randrange(3)}"] = f"v{rng.randrange(100)}"
    else:
        # pycrdt indexes text by UTF-8 byte; edits land on character boundaries.
        source = cell["source"]
        text = str(source)

        def offset(chars: int) -> int:
            return len(text[:chars].encode())

        if rng.random() < 0.7 or not text:
            source.insert(offset(rng.randrange(len(text) + 1)), rng.choice(WORDS))
        else:
            start = rng.randrange(len(text))
            end = min(len(text), start + 1 + rng.randrange(5))
            del source[offset(start) : offset(end)]


def new_cell(rng: random.Random, tag: str, source: str | None = None) -> Map[Any]:
    cell_type = "code" if rng.random() < 0.7 else "markdown"
    content: dict[str, Any] = {
        "id": f"{tag}-{rng.randrange(1 << 30):x}",
        "cell_type": cell_type,
        "source": Text(source if source is not None else rng.choice(WORDS)),
        "metadata": Map(),
    }
    if cell_type == "code":
        content |= {"outputs": Array(), "execution_count": None}
    return Map(content)


async def test_random_concurrent_edits_converge(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    seed = int(os.environ.get("TANDEM_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    notebook = alice.create("convergence")
    alice.share(notebook, "bob", "editor")
    tokens = [people["alice"].token, people["bob"].token]
    py = [
        await YClient(sync_url(server, notebook, tokens[i % 2])).connect()
        for i in range(PY_CLIENTS)
    ]
    node = [
        await NodeClient(server, notebook, tokens[i % 2], seed + i).start()
        for i in range(NODE_CLIENTS)
    ]
    try:
        for _ in range(ROUNDS):
            for i, client in enumerate(py):
                if rng.random() < 0.15:
                    await client.close()
                    for _ in range(rng.randrange(1, 5)):
                        random_edit(client, rng, f"py{i}")  # offline edits
                    await client.connect(wait=False)
                for _ in range(rng.randrange(1, 6)):
                    random_edit(client, rng, f"py{i}")
            for client in node:
                if rng.random() < 0.15:
                    await client.request({"cmd": "disconnect"}, "disconnected")
                    await client.request({"cmd": "edit", "n": rng.randrange(1, 5)}, "edited")
                    await client.send({"cmd": "connect"})
                await client.request({"cmd": "edit", "n": rng.randrange(1, 6)}, "edited")
            await asyncio.sleep(rng.uniform(0, 0.05))

        # Quiesce, then every replica must hold the same document.
        reference = py[0]

        async def node_states() -> list[dict[str, Any]]:
            return [await client.state() for client in node]

        async def converged() -> bool:
            target = state_vector(reference.doc.get_state())
            if any(state_vector(c.doc.get_state()) != target for c in py):
                return False
            states = await node_states()
            return all(state_vector(base64.b64decode(s["sv"])) == target for s in states)

        for _ in range(200):
            if await converged():
                break
            await asyncio.sleep(0.05)
        assert await converged(), f"replicas did not converge (seed={seed})"
        expected = json.loads(json.dumps(reference.cells.to_py()))
        for client in py[1:]:
            assert json.loads(json.dumps(client.cells.to_py())) == expected
        for state in await node_states():
            assert state["cells"] == expected, f"seed={seed}"
        # A fresh client joining at the end sees the same.
        async with YClient(sync_url(server, notebook, tokens[0])) as late:
            assert json.loads(json.dumps(late.cells.to_py())) == expected
    finally:
        for client in py:
            await client.close()
        for client in node:
            await client.stop()

    exported = alice.export(notebook)
    nbformat.validate(nbformat.from_dict(exported))
