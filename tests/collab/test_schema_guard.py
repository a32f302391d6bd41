"""Security regression tests: an editor cannot push CRDT-valid values that break the notebook
schema (issue 12, "schema poisoning"). Each update is refused like a reader's write (a
permission-denied message, nothing stored, nobody else sees it) and the notebook stays
exportable, versionable and restorable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from tests.support import Api, Person, ServerProcess, YClient, eventually, state_vector, sync_url
from tests.support_schema import POISONS, cell_at, change, denied, meta_of, push, valid_cell, whole


@pytest.mark.parametrize("name", sorted(POISONS))
async def test_schema_breaking_updates_are_refused(
    name: str, server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create(f"poison: {name}")
    alice.share(notebook, "bob", "editor")
    before = alice.export(notebook)
    async with YClient(sync_url(server, notebook, people["alice"].token)) as bystander:
        seen = state_vector(bystander.doc.get_state())
        attacker: Doc[Any] = Doc()
        async with YClient(sync_url(server, notebook, people["bob"].token), attacker):
            pass
        poison = change(attacker, POISONS[name])
        replies = await push(sync_url(server, notebook, people["bob"].token), poison)
        assert denied(replies), f"{name} was not refused"
        assert any(b"would break the notebook" in reply for reply in replies)
        await asyncio.sleep(0.1)
        assert state_vector(bystander.doc.get_state()) == seen
        # The room is still served: a good edit after the refused one goes through.
        bystander.cells[0]["source"].insert(0, "still fine ")
        await eventually(
            lambda: alice.export(notebook)["cells"][0]["source"].startswith("still fine")
        )
    after = whole(alice, notebook)
    assert after["cells"][0]["source"] == "still fine " + before["cells"][0]["source"]
    assert after["metadata"] == before["metadata"]
    assert len(after["cells"]) == len(before["cells"])


async def test_ordinary_edits_pass_the_guard(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """What a notebook editor does: add cells of each type, outputs, metadata, counts."""
    notebook = alice.create("ordinary edits")
    alice.share(notebook, "bob", "editor")
    async with YClient(sync_url(server, notebook, people["bob"].token)) as bob:
        cells = bob.cells
        cells.append(valid_cell(id="code-2", execution_state="idle"))
        cells.append(
            Map(
                {
                    "id": "md",
                    "cell_type": "markdown",
                    "source": Text("# hi"),
                    "metadata": Map({"tags": ["a"]}),
                }
            )
        )
        cells.append(Map({"id": "raw", "cell_type": "raw", "source": Text(""), "metadata": {}}))
        cells[0]["outputs"].append(
            Map({"output_type": "stream", "name": "stdout", "text": Text("hi\n")})
        )
        cells[0]["outputs"][0]["text"].insert(0, "oh ")
        cells[0]["execution_count"] = 3
        cells[0]["metadata"]["collapsed"] = True
        meta_of(bob.doc)["metadata"]["title"] = "mine"
        del cells[1]
        await asyncio.sleep(0.3)
        assert not bob.denials()
    exported = whole(alice, notebook)
    assert [c["id"] for c in exported["cells"]][1:] == ["md", "raw"]
    assert exported["cells"][0]["outputs"][0]["text"] == "oh hi\n"
    assert exported["cells"][0]["execution_count"] == 3


async def test_a_held_back_poison_is_refused_when_it_would_land(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """An update waiting for a predecessor shows nothing when it arrives; it is checked when
    the predecessor makes it land, even after the guard rebuilt its shadow and after the
    room was closed and reopened (a Doc leaves such updates out of its own state)."""
    notebook = alice.create("held back poison")
    alice.share(notebook, "bob", "editor")
    url = sync_url(server, notebook, people["bob"].token)
    attacker: Doc[Any] = Doc()
    async with YClient(url, attacker):
        pass
    first = change(attacker, lambda doc: doc.get("cells", type=Array).append(valid_cell(id="b")))
    poison = change(attacker, lambda doc: cell_at(doc, 1).__setitem__("outputs", "oops"))
    assert not denied(await push(url, poison))  # waits for `first`: nothing to see yet
    # A refusal makes the guard rebuild its shadow.
    stranger: Doc[Any] = Doc()
    async with YClient(url, stranger):
        pass
    assert denied(await push(url, change(stranger, lambda d: meta_of(d).pop("nbformat"))))
    await asyncio.sleep(1.5)  # the room closes (grace 1 s) and reopens from the log
    replies = await push(url, first)
    assert denied(replies)
    exported = whole(alice, notebook)
    assert len(exported["cells"]) == 1
