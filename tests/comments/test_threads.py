"""Comment threads through a real server: roles, anchors across concurrent edits, replies,
resolve, mentions, orphaned threads and their return, live events."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pycrdt import Array, Map, Text, UndoManager

from tests.gateway.helpers import Events, events_url
from tests.support import Api, Person, ServerProcess, YClient, eventually, sync_url


def cell_source(client: YClient, index: int = 0) -> Any:
    return client.cells[index]["source"]


def threads(api: Api, notebook: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/api/notebooks/{notebook}/threads")
    assert response.status_code == 200, response.text
    return list(response.json())


def start_thread(api: Api, notebook: str, **body: Any) -> dict[str, Any]:
    response = api.client.post(f"/api/notebooks/{notebook}/threads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_roles_events_replies_and_resolve(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("discussed")
    alice.share(notebook, "bob", "commenter")
    alice.share(notebook, "carol", "viewer")
    bob, carol = Api(server, people["bob"]), Api(server, people["carol"])
    async with YClient(sync_url(server, notebook, people["alice"].token)) as client:
        cell_id = str(client.cells[0]["id"])
        cell_source(client).insert(0, "total = price * qty")
        await eventually(lambda: "qty" in alice.export(notebook)["cells"][0]["source"])
    async with Events(events_url(server, notebook, people["carol"].token)) as watching:
        thread = start_thread(
            bob, notebook, cell_id=cell_id, start=8, end=13, body="price incl. VAT?"
        )
        assert thread["anchor"] == {"start": 8, "end": 13, "text": "price"}
        assert thread["quote"] == "price"
        created = await watching.wait("thread.created")
        assert created["thread"]["id"] == thread["id"]
        # A viewer reads but cannot write.
        assert [t["id"] for t in threads(carol, notebook)] == [thread["id"]]
        refused = carol.client.post(
            f"/api/notebooks/{notebook}/threads", json={"cell_id": cell_id, "body": "hi"}
        )
        assert refused.status_code == 403
        path = f"/api/notebooks/{notebook}/threads/{thread['id']}"
        assert carol.client.post(f"{path}/comments", json={"body": "me too"}).status_code == 403
        answer = alice.client.post(f"{path}/comments", json={"body": "yes, **incl.**"})
        assert answer.status_code == 201
        await watching.wait("thread.updated", lambda e: len(e["thread"]["comments"]) == 2)
        first, second = answer.json()["comments"]
        # Only the author edits or deletes a comment.
        assert (
            alice.client.patch(f"{path}/comments/{first['id']}", json={"body": "x"}).status_code
            == 403
        )
        edited = bob.client.patch(
            f"{path}/comments/{first['id']}", json={"body": "price with VAT?"}
        )
        assert edited.json()["comments"][0]["edited_at"] is not None
        assert bob.client.delete(f"{path}/comments/{second['id']}").status_code == 403
        gone = alice.client.delete(f"{path}/comments/{second['id']}").json()["comments"][1]
        assert (gone["deleted"], gone["body"]) == (True, "")
        resolved = bob.client.post(f"{path}/resolve").json()
        assert (resolved["resolved"], resolved["resolved_by"]) == (True, "bob")
        assert carol.client.post(f"{path}/reopen").status_code == 403
        assert alice.client.post(f"{path}/reopen").json()["resolved"] is False
    # Limits and bad input: clear errors, nothing stored.
    too_long = bob.client.post(
        f"/api/notebooks/{notebook}/threads", json={"cell_id": cell_id, "body": "x" * 10_001}
    )
    assert too_long.status_code == 422
    control = bob.client.post(
        f"/api/notebooks/{notebook}/threads", json={"cell_id": cell_id, "body": "a\x00b"}
    )
    assert control.status_code == 400
    bad_range = bob.client.post(
        f"/api/notebooks/{notebook}/threads",
        json={"cell_id": cell_id, "start": 5, "end": 500, "body": "hm"},
    )
    assert bad_range.status_code == 400
    missing = bob.client.post(
        f"/api/notebooks/{notebook}/threads", json={"cell_id": "nope", "body": "hm"}
    )
    assert missing.status_code == 404
    assert len(threads(alice, notebook)) == 1
    bob.client.close()
    carol.client.close()


async def test_anchor_follows_concurrent_edits(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("anchors")
    alice.share(notebook, "dave", "editor")
    async with (
        YClient(sync_url(server, notebook, people["alice"].token)) as one,
        YClient(sync_url(server, notebook, people["dave"].token)) as two,
    ):
        cell_id = str(one.cells[0]["id"])
        cell_source(one).insert(0, "x = compute(data)\n")
        await eventually(lambda: str(cell_source(two)) == "x = compute(data)\n")
        thread = start_thread(alice, notebook, cell_id=cell_id, start=4, end=11, body="rename?")
        assert thread["anchor"]["text"] == "compute"
        # At the same time: one types before the range (non-ASCII, to move byte offsets),
        # the other inside it; neither has seen the other's edit yet.
        cell_source(one).insert(0, "# naïve → ")
        cell_source(two).insert(len(b"x = comp"), "_ute_")  # inside "compute"
        expected = "# naïve → x = comp_ute_ute(data)\n"
        await eventually(lambda: str(cell_source(one)) == expected == str(cell_source(two)))
        await eventually(lambda: threads(alice, notebook)[0]["anchor"]["text"] == "comp_ute_ute")
        anchor = threads(alice, notebook)[0]["anchor"]
        assert expected[anchor["start"] : anchor["end"]] == "comp_ute_ute"
        assert threads(alice, notebook)[0]["quote"] == "compute"  # as it was when anchored


async def test_orphaned_threads_quote_the_cell_and_return_on_undo(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("orphans")
    async with (
        YClient(sync_url(server, notebook, people["alice"].token)) as client,
        Events(events_url(server, notebook, people["alice"].token)) as events,
    ):
        cells: Array[Any] = client.cells
        cells.append(
            Map(
                {
                    "id": "keep",
                    "cell_type": "code",
                    "source": Text("2"),
                    "metadata": Map(),
                    "outputs": Array(),
                    "execution_count": None,
                }
            )
        )
        cell_id = str(cells[0]["id"])
        cell_source(client).insert(0, "first draft")
        await eventually(lambda: len(alice.export(notebook)["cells"]) == 2)
        thread = start_thread(alice, notebook, cell_id=cell_id, body="about this cell")
        cell_source(client).insert(len("first draft"), ", then edited")
        await eventually(
            lambda: alice.export(notebook)["cells"][0]["source"] == "first draft, then edited"
        )
        undo = UndoManager(scopes=[cells], capture_timeout_millis=0)
        del cells[0]
        await events.wait("thread.orphaned")
        listed = threads(alice, notebook)[0]
        assert listed["id"] == thread["id"]
        assert listed["orphaned"] is True
        assert listed["cell_text"] == "first draft, then edited"
        undo.undo()
        await events.wait("thread.restored")
        assert threads(alice, notebook)[0]["orphaned"] is False


def cell_ids(api: Api, notebook: str) -> list[str]:
    return [cell["id"] for cell in api.export(notebook)["cells"]]


def code_cell(cell_id: str, source: str) -> Map[Any]:
    return Map(
        {
            "id": cell_id,
            "cell_type": "code",
            "source": Text(source),
            "metadata": Map(),
            "outputs": Array(),
            "execution_count": None,
        }
    )


async def test_rooms_loaded_together_watch_the_cells_their_threads_are_on(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """Regression test for the batched read of commented cells (#13): rooms that load at
    the same moment, with threads started before, each orphan theirs when the cell goes."""
    token = people["alice"].token
    notebooks = [alice.create(f"watched {i}") for i in range(4)]
    for i, notebook in enumerate(notebooks):
        async with YClient(sync_url(server, notebook, token)) as client:
            client.cells.append(code_cell("c", f"text of {i}"))
            await eventually(lambda nb=notebook: "c" in cell_ids(alice, nb))
        start_thread(alice, notebook, cell_id="c", body=f"about {i}")
    await asyncio.sleep(3)  # the rooms unload (the test server's grace is 1 s)
    async with contextlib.AsyncExitStack() as stack:
        clients = await asyncio.gather(
            *(stack.enter_async_context(YClient(sync_url(server, nb, token))) for nb in notebooks)
        )
        watching = [
            await stack.enter_async_context(Events(events_url(server, nb, token)))
            for nb in notebooks
        ]
        for client in clients:
            del client.cells[[cell["id"] for cell in client.cells].index("c")]
        for i, (notebook, events) in enumerate(zip(notebooks, watching, strict=True)):
            await events.wait("thread.orphaned")
            listed = threads(alice, notebook)[0]
            assert (listed["orphaned"], listed["cell_text"]) == (True, f"text of {i}")


async def test_mentions_unread_first(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("mentions")
    alice.share(notebook, "erin", "commenter")
    erin = Api(server, people["erin"])
    async with YClient(sync_url(server, notebook, people["alice"].token)) as client:
        cell_id = str(client.cells[0]["id"])
    older = start_thread(alice, notebook, cell_id=cell_id, body="@erin first look")
    # bob is not a member: naming him is refused, and tells him nothing.
    refused = alice.client.post(
        f"/api/notebooks/{notebook}/threads",
        json={"cell_id": cell_id, "body": "@erin and @bob, again"},
    )
    assert refused.status_code == 422
    newer = start_thread(alice, notebook, cell_id=cell_id, body="@erin, again")
    assert newer["comments"][0]["mentions"] == ["erin"]
    mentions = erin.client.get("/api/me/mentions").json()
    assert [(m["thread_id"], m["unread"]) for m in mentions] == [
        (newer["id"], True),
        (older["id"], True),
    ]
    path = f"/api/notebooks/{notebook}/threads/{older['id']}/read"
    assert erin.client.post(path).status_code == 204
    mentions = erin.client.get("/api/me/mentions").json()
    assert [(m["thread_id"], m["unread"]) for m in mentions] == [
        (newer["id"], True),
        (older["id"], False),
    ]
    bob = Api(server, people["bob"])
    assert bob.client.get("/api/me/mentions").json() == []
    bob.client.close()
    erin.client.close()
