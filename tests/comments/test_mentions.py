"""@mentions through a real server: a name that is no one who can read the notebook is
refused with a 422 that names it (and nothing is stored); names in code are not mentions;
trailing punctuation is not part of a name."""

from __future__ import annotations

from tests.support import Api, Person, ServerProcess, YClient, sync_url


async def test_unknown_names_are_refused_and_code_is_not_a_mention(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("mention rules")
    alice.share(notebook, "dave", "commenter")
    async with YClient(sync_url(server, notebook, people["alice"].token)) as client:
        cell_id = str(client.cells[0]["id"])
    threads = f"/api/notebooks/{notebook}/threads"

    def post(body: str) -> tuple[int, dict[str, object]]:
        response = alice.client.post(threads, json={"cell_id": cell_id, "body": body})
        return response.status_code, response.json()

    # No such account, and an account that cannot read the notebook (carol): the same
    # words for both, naming each, so a comment cannot probe which usernames exist.
    status, body = post("@nobody-here and @carol, look (cc @dave)")
    assert status == 422
    assert body == {"detail": "no one who can read this notebook is called @carol, @nobody-here"}
    assert alice.client.get(threads).json() == []
    # A reply is held to the same rule.
    status, created = post("thanks @dave.")
    assert status == 201
    assert created["comments"] == [created["comments"][0]]
    assert created["comments"][0]["mentions"] == ["dave"]
    reply = alice.client.post(f"{threads}/{created['id']}/comments", json={"body": "@ghost?"})
    assert reply.status_code == 422
    assert "@ghost" in reply.json()["detail"]
    # Code is not a mention; an e-mail address is not either.
    status, code = post("use `@property` here\n```\n@decorator\n```\nor mail a@b.org")
    assert status == 201
    assert code["comments"][0]["mentions"] == []
    assert len(alice.client.get(threads).json()) == 2
