"""Several people on one notebook through the real server: edits, presence, stock clients."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from jupyter_ydoc import YNotebook
from pycrdt import Map, Text

from tests.support import (
    Api,
    NodeClient,
    Person,
    ServerProcess,
    YClient,
    eventually,
    node_client,
    state_vector,
    sync_url,
)


async def test_edits_reach_every_client(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("together")
    alice.share(notebook, "bob", "editor")
    async with (
        YClient(sync_url(server, notebook, people["alice"].token)) as a,
        YClient(sync_url(server, notebook, people["bob"].token)) as b,
    ):
        assert len(a.cells) == 1
        a.cells[0]["source"].insert(0, "print('from alice')")
        b.cells.append(
            Map(
                {
                    "id": "bob-cell",
                    "cell_type": "markdown",
                    "source": Text("# bob"),
                    "metadata": Map(),
                }
            )
        )
        await eventually(lambda: len(a.cells) == 2 and len(b.cells) == 2)
        await eventually(lambda: str(b.cells[0]["source"]) == "print('from alice')")
        a.cells[0]["metadata"]["tags"] = ["x"]
        await eventually(lambda: b.cells[0]["metadata"].to_py() == {"tags": ["x"]})
        del b.cells[0]
        await eventually(lambda: len(a.cells) == 1 and a.cells[0]["id"] == "bob-cell")
        assert state_vector(a.doc.get_state()) == state_vector(b.doc.get_state())
    exported = alice.export(notebook)
    assert [c["id"] for c in exported["cells"]] == ["bob-cell"]
    assert exported["cells"][0]["source"] == "# bob"


async def test_node_yjs_client_interoperates(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("interop")
    async with (
        YClient(sync_url(server, notebook, people["alice"].token)) as py,
        node_client(server, notebook, people["alice"].token, seed=7) as node,
    ):
        await node.request({"cmd": "insert_text", "cell": 0, "text": "from node\n"}, "edited")
        await eventually(lambda: str(py.cells[0]["source"]).startswith("from node"))
        py.cells[0]["source"].insert(0, "from python\n")
        await eventually_node(node, lambda s: s["cells"][0]["source"].startswith("from python"))
        await node.request({"cmd": "edit", "n": 40}, "edited")
        final = await eventually_node(
            node, lambda s: state_vector(_b64(s["sv"])) == state_vector(py.doc.get_state())
        )
        assert final["cells"] == json.loads(json.dumps(py.cells.to_py()))


async def test_presence_carries_the_authenticated_name(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("presence")
    alice.share(notebook, "bob", "viewer")
    async with (
        node_client(server, notebook, people["bob"].token, seed=1) as bob,
        node_client(server, notebook, people["alice"].token, seed=2) as watcher,
    ):
        # Bob claims to be Alice; everyone sees Bob.
        await bob.request(
            {"cmd": "awareness", "state": {"user": {"name": "alice", "color": "#f00"}}},
            "awareness-set",
        )

        async def names() -> list[str]:
            peers = (await watcher.request({"cmd": "peers"}, "peers"))["peers"]
            return sorted(p["user"]["name"] for p in peers.values() if p and "user" in p)

        for _ in range(100):
            if await names() == ["bob"]:
                break
        assert await names() == ["bob"]
        peers = (await watcher.request({"cmd": "peers"}, "peers"))["peers"]
        assert any(p.get("user", {}).get("color") == "#f00" for p in peers.values() if p)
        # When Bob leaves, his presence goes with him.
        await bob.stop()
        for _ in range(100):
            if await names() == []:
                break
        assert await names() == []


async def test_jupyter_ydoc_reads_what_clients_wrote(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("schema")
    async with YClient(sync_url(server, notebook, people["alice"].token)) as a:
        model = YNotebook(a.doc)
        model.append_cell(
            {
                "cell_type": "code",
                "source": "1 + 1",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
                "id": "c2",
            }
        )
        await eventually(lambda: [c["id"] for c in alice.export(notebook)["cells"]][-1] == "c2")


async def eventually_node(node: NodeClient, check: object) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        state = await node.state()
        if check(state):  # type: ignore[operator]
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"node client did not reach the expected state: {state}")
        await asyncio.sleep(0.05)


def _b64(text: object) -> bytes:
    return base64.b64decode(str(text))


async def test_simultaneous_first_joins_all_sync(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """Many people opening a cold notebook at the same moment share one load and all sync
    (pycrdt-websocket 0.16.5 leaves some of them hanging)."""
    notebook = alice.create("rush")
    url = sync_url(server, notebook, people["alice"].token)
    clients = [YClient(url) for _ in range(30)]
    await asyncio.gather(*(client.connect() for client in clients))
    try:
        assert all(len(client.cells) == 1 for client in clients)
    finally:
        await asyncio.gather(*(client.close() for client in clients))
