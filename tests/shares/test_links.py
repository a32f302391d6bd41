"""Share links: roles through links on every write path, revocation and expiry with
sockets open, guests, hashing, the audit log, presence."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from server.auth.credentials import SESSION_COOKIE
from tests.support import Api, Person, ServerProcess, YClient, eventually, sync_url


def make_link(api: Api, notebook: str, role: str, **extra: Any) -> dict[str, Any]:
    response = api.client.post(f"/api/notebooks/{notebook}/links", json={"role": role, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def redeem(api: Api, token: str) -> httpx.Response:
    return api.client.post("/api/links/redeem", json={"token": token})


def anonymous(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


@pytest.mark.parametrize("role", ["viewer", "commenter"])
async def test_reader_links_cannot_write_anywhere(
    role: str, server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create(f"{role} link")
    link = make_link(alice, notebook, role)
    bob = Api(server, people["bob"])
    assert bob.client.get(f"/api/notebooks/{notebook}").status_code == 404  # not yet
    opened = redeem(bob, link["token"])
    assert opened.status_code == 200, opened.text
    assert opened.json()["role"] == role
    assert bob.client.get(f"/api/notebooks/{notebook}").json()["role"] == role
    before = alice.export(notebook)
    async with YClient(sync_url(server, notebook, people["bob"].token)) as client:
        client.cells[0]["source"].insert(0, "vandalism")
        await eventually(lambda: len(client.denials()) >= 1)
    assert alice.export(notebook) == before
    named = alice.client.post(f"/api/notebooks/{notebook}/versions", json={"name": "v"})
    version = named.json()["id"]
    cell_id = alice.export(notebook)["cells"][0]["id"]
    thread = {"cell_id": cell_id, "body": "a note"}
    comment = bob.client.post(f"/api/notebooks/{notebook}/threads", json=thread)
    assert comment.status_code == (201 if role == "commenter" else 403), comment.text
    for method, path, body in [
        ("patch", "", {"title": "hijacked"}),
        ("post", f"/versions/{version}/restore", None),
        ("post", "/versions", {"name": "mine"}),
        ("post", "/execute", {"cell_ids": ["x"]}),
        ("post", "/kernel/restart", None),
        ("put", "/runtime", {"type": "cpu"}),
        ("post", "/links", {"role": "editor"}),
        ("put", "/members/carol", {"role": "editor"}),
        ("delete", "", None),
    ]:
        response = bob.client.request(method, f"/api/notebooks/{notebook}{path}", json=body)
        assert response.status_code == 403, (method, path, response.text)
    bob.client.close()


async def test_editor_link_edits_and_never_lowers_a_role(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("editor link")
    carol, dave = Api(server, people["carol"]), Api(server, people["dave"])
    assert redeem(carol, make_link(alice, notebook, "editor")["token"]).json()["role"] == "editor"
    async with (
        YClient(sync_url(server, notebook, people["carol"].token)) as client,
        YClient(sync_url(server, notebook, people["alice"].token)) as owner,
    ):
        client.cells[0]["source"].insert(0, "print('via link')")
        await eventually(lambda: "via link" in str(owner.cells[0]["source"]))
    assert carol.client.patch(f"/api/notebooks/{notebook}", json={"title": "ok"}).is_success
    # dave is an editor already; a viewer link does not demote him.
    alice.share(notebook, "dave", "editor")
    assert redeem(dave, make_link(alice, notebook, "viewer")["token"]).json()["role"] == "editor"
    carol.client.close()
    dave.client.close()


async def test_revoking_closes_sockets_opened_through_the_link(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("revoke me")
    link = make_link(alice, notebook, "editor", label="for erin")
    erin, dave = Api(server, people["erin"]), Api(server, people["dave"])
    assert redeem(erin, link["token"]).is_success
    alice.share(notebook, "dave", "viewer")
    assert redeem(dave, link["token"]).is_success  # editor through the link
    async with (
        YClient(sync_url(server, notebook, people["erin"].token)) as via_link,
        YClient(sync_url(server, notebook, people["dave"].token)) as member,
        YClient(sync_url(server, notebook, people["alice"].token)) as owner,
    ):
        started = time.monotonic()
        response = alice.client.delete(f"/api/notebooks/{notebook}/links/{link['id']}")
        assert response.status_code == 204
        assert await via_link.wait_closed(2) == 4403
        assert time.monotonic() - started < 1.5
        # dave keeps his membership, as a viewer again: his socket stays, his edits bounce.
        member.cells[0]["source"].insert(0, "x")
        await eventually(lambda: len(member.denials()) >= 1)
        assert owner.ws is not None and owner.ws.close_code is None
    assert erin.client.get(f"/api/notebooks/{notebook}").status_code == 404
    assert redeem(erin, link["token"]).status_code == 404
    listed = alice.client.get(f"/api/notebooks/{notebook}/links").json()
    assert [(item["label"], item["active"]) for item in listed] == [("for erin", False)]
    assert all("token" not in item for item in listed)
    erin.client.close()
    dave.client.close()


async def test_expiry_ends_access_and_closes_sockets(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("short lived")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    link = make_link(alice, notebook, "viewer", expires_at=soon.isoformat())
    bob = Api(server, people["bob"])
    assert redeem(bob, link["token"]).is_success
    async with YClient(sync_url(server, notebook, people["bob"].token)) as client:
        assert await client.wait_closed(5) == 4403
        assert datetime.now(UTC) - soon < timedelta(seconds=1.5)
    assert bob.client.get(f"/api/notebooks/{notebook}").status_code == 404
    assert redeem(bob, link["token"]).status_code == 404
    actions = [e["action"] for e in alice.client.get(f"/api/notebooks/{notebook}/audit").json()]
    assert actions[0] == "link.expired"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = alice.client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "viewer", "expires_at": past}
    )
    assert response.status_code == 400
    bob.client.close()


async def test_guests_join_by_name_and_see_nothing_else(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("open to guests")
    other = alice.create("private")
    closed = make_link(alice, notebook, "commenter")
    open_link = make_link(alice, notebook, "commenter", allow_guests=True)
    with anonymous(server) as stranger:
        refused = stranger.post("/api/links/redeem", json={"token": closed["token"]})
        assert refused.status_code == 401
        nameless = stranger.post("/api/links/redeem", json={"token": open_link["token"]})
        assert nameless.status_code == 400
        joined = stranger.post(
            "/api/links/redeem", json={"token": open_link["token"], "guest_name": "Gus"}
        )
        assert joined.status_code == 200, joined.text
        assert joined.headers["referrer-policy"] == "no-referrer"
        assert SESSION_COOKIE in joined.cookies  # a browser joins with a session too
    guest = joined.json()
    assert guest["guest"] is True and guest["role"] == "commenter"
    assert guest["username"].startswith("Gus (guest")
    headers = {"Authorization": f"Bearer {guest['token']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as as_guest:
        assert [n["id"] for n in as_guest.get("/api/notebooks").json()] == [notebook]
        assert as_guest.get(f"/api/notebooks/{other}").status_code == 404
        assert as_guest.post("/api/notebooks", json={"title": "mine"}).status_code == 403
        # A guest cannot use another notebook's link to roam.
        elsewhere = make_link(alice, other, "viewer")
        assert (
            as_guest.post("/api/links/redeem", json={"token": elsewhere["token"]}).status_code
            == 403
        )
        async with (
            YClient(sync_url(server, notebook, guest["token"])),
            YClient(sync_url(server, notebook, people["alice"].token)),
        ):
            here = alice.client.get(f"/api/notebooks/{notebook}/presence").json()
            assert {(p["username"], p["guest"], p["role"]) for p in here} == {
                ("alice", False, "owner"),
                (guest["username"], True, "commenter"),
            }
            assert as_guest.get(f"/api/notebooks/{notebook}/presence").status_code == 200
            cell_id = alice.export(notebook)["cells"][0]["id"]
            said = as_guest.post(
                f"/api/notebooks/{notebook}/threads", json={"cell_id": cell_id, "body": "hello"}
            )
            assert said.status_code == 201, said.text
            assert said.json()["comments"][0]["author"] == guest["username"]
    actions = [e["action"] for e in alice.client.get(f"/api/notebooks/{notebook}/audit").json()]
    assert "guest.joined" in actions


async def test_link_secrets_are_stored_hashed_and_audit_is_the_owners(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("audited")
    link = make_link(alice, notebook, "editor", label="team")
    assert link["token"].startswith("tdl_") and len(link["token"]) > 40
    alice.share(notebook, "bob", "commenter")
    alice.client.delete(f"/api/notebooks/{notebook}/members/bob")
    database = sqlite3.connect(server.data_dir / "tandem.db")
    try:
        dump = "\n".join(database.iterdump())
    finally:
        database.close()
    assert link["token"] not in dump
    events = alice.client.get(f"/api/notebooks/{notebook}/audit").json()
    assert [(e["actor"], e["action"]) for e in events] == [
        ("alice", "member.removed"),
        ("alice", "member.set"),
        ("alice", "link.created"),
    ]
    assert events[1]["detail"] == {"username": "bob", "role": "commenter"}
    bob = Api(server, people["bob"])
    alice.share(notebook, "bob", "editor")
    assert bob.client.get(f"/api/notebooks/{notebook}/audit").status_code == 403
    assert bob.client.get(f"/api/notebooks/{notebook}/links").status_code == 403
    bob.client.close()
