"""Accounts without the CLI, through the real server: only admins manage accounts (API and
page), creating users, resetting passwords (ending that person's browser sessions),
disabling accounts, one-time expiring invite links stored hashed, changing one's own
password (needs the current one, ends one's other sessions, throttled), and an audit row for
each change."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support import Api, Person, ServerProcess, YClient, make_people, sync_url


@pytest.fixture(scope="module")
def root(server: ServerProcess, people: dict[str, Person]) -> Iterator[Api]:
    admin = make_people(server.data_dir, ["root-admin"], admin=True)["root-admin"]
    api = Api(server, admin)
    yield api
    api.client.close()


def browser_login(server: ServerProcess, username: str, password: str) -> httpx.Client:
    """A cookie session, as a browser has after signing in; its requests carry our Origin."""
    client = httpx.Client(base_url=server.url, timeout=10, headers={"Origin": server.url})
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return client


def can_login(server: ServerProcess, username: str, password: str) -> bool:
    response = httpx.post(
        server.url + "/api/auth/login", json={"username": username, "password": password}
    )
    return response.status_code == 200


def audit(root: Api) -> list[dict[str, Any]]:
    response = root.client.get("/api/admin/audit")
    assert response.status_code == 200
    return list(response.json())


def test_only_admins_manage_accounts(
    server: ServerProcess, people: dict[str, Person], root: Api
) -> None:
    bob = Api(server, people["bob"])
    for method, path in [
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users"),
        ("POST", "/api/admin/users/carol/password"),
        ("PATCH", "/api/admin/users/carol"),
        ("GET", "/api/admin/invites"),
        ("POST", "/api/admin/invites"),
        ("DELETE", "/api/admin/invites/x"),
        ("GET", "/api/admin/audit"),
    ]:
        response = bob.client.request(method, path, json={"username": "x", "password": "y"})
        assert response.status_code == 403, (method, path, response.text)
        assert httpx.request(method, server.url + path).status_code == 401
    assert can_login(server, "carol", "carol-password")  # nothing was reset
    bob.client.close()
    # The page too: a non-admin gets 403 from the server, a stranger is sent to sign in.
    browser = browser_login(server, "bob", "bob-password")
    assert browser.get("/admin").status_code == 403
    browser.close()
    assert httpx.get(server.url + "/admin").headers["location"] == "/login?next=/admin"
    browser = browser_login(server, "root-admin", "root-admin-password")
    page = browser.get("/admin")
    assert page.status_code == 200 and 'data-page="admin"' in page.text
    # The session cookie counts only from our own pages (cross-site request forgery).
    forged = browser.post(
        "/api/admin/users", json={"username": "forged"}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    browser.close()
    assert "forged" not in [u["username"] for u in root.client.get("/api/admin/users").json()]


def test_admin_creates_users_who_then_sign_in(server: ServerProcess, root: Api) -> None:
    chosen = root.client.post(
        "/api/admin/users", json={"username": "fay", "password": "fay-secret"}
    )
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["password"] is None
    assert chosen.json()["user"]["is_admin"] is False
    assert can_login(server, "fay", "fay-secret")
    generated = root.client.post("/api/admin/users", json={"username": "gus", "is_admin": True})
    password = generated.json()["password"]
    assert len(password) >= 16 and generated.json()["user"]["is_admin"] is True
    assert can_login(server, "gus", password)
    again = root.client.post("/api/admin/users", json={"username": "fay", "password": "x"})
    assert again.status_code == 409
    bad = root.client.post("/api/admin/users", json={"username": "a/b", "password": "x"})
    assert bad.status_code == 400
    listed = {u["username"]: u for u in root.client.get("/api/admin/users").json()}
    assert {"fay", "gus", "root-admin"} <= set(listed)
    assert "password_hash" not in listed["fay"]
    rows = [(r["action"], r["target"], r["actor"]) for r in audit(root)]
    assert ("user.created", "fay", "root-admin") in rows
    assert ("user.created", "gus", "root-admin") in rows
    assert password not in str(audit(root))


def test_reset_password_ends_every_browser_session_of_that_person(
    server: ServerProcess, root: Api
) -> None:
    root.client.post("/api/admin/users", json={"username": "hal", "password": "hal-old-pw"})
    first = browser_login(server, "hal", "hal-old-pw")
    second = browser_login(server, "hal", "hal-old-pw")
    bystander = browser_login(server, "fay", "fay-secret")
    assert first.get("/api/me").status_code == 200
    reset = root.client.post("/api/admin/users/hal/password", json={"password": "hal-new-pw"})
    assert reset.status_code == 200, reset.text
    assert reset.json() == {"username": "hal", "password": None, "sessions_revoked": 2}
    assert first.get("/api/me").status_code == 401
    assert second.get("/api/me").status_code == 401
    assert bystander.get("/api/me").status_code == 200
    assert not can_login(server, "hal", "hal-old-pw")
    assert can_login(server, "hal", "hal-new-pw")
    generated = root.client.post("/api/admin/users/hal/password", json={}).json()["password"]
    assert can_login(server, "hal", generated)
    row = next(r for r in audit(root) if r["action"] == "password.reset")
    assert row["target"] == "hal" and row["detail"]["password"] == "generated"
    assert generated not in str(audit(root)) and "hal-new-pw" not in str(audit(root))
    # A guest (joined through a share link) has no password to reset.
    notebook = root.create("open to guests")
    link = root.client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "viewer", "allow_guests": True}
    ).json()
    joined = httpx.post(
        server.url + "/api/links/redeem", json={"token": link["token"], "guest_name": "Gil"}
    )
    guest = quote(joined.json()["username"])
    assert root.client.post(f"/api/admin/users/{guest}/password", json={}).status_code == 409
    missing = root.client.post("/api/admin/users/nobody/password", json={})
    assert missing.status_code == 404
    for client in (first, second, bystander):
        client.close()


async def test_a_disabled_account_cannot_sign_in_or_use_its_token(
    server: ServerProcess, people: dict[str, Person], root: Api
) -> None:
    dave = Api(server, people["dave"])
    notebook = root.create("dave reads")
    root.share(notebook, "dave", "editor")
    session = browser_login(server, "dave", "dave-password")
    async with YClient(sync_url(server, notebook, people["dave"].token)) as open_page:
        off = root.client.patch("/api/admin/users/dave", json={"disabled": True})
        assert off.status_code == 200 and off.json()["disabled"] is True
        # An open notebook socket does not outlive the account: it closes at once.
        assert await open_page.wait_closed() == 4403
    assert dave.client.get("/api/me").status_code == 401
    assert session.get("/api/me").status_code == 401
    refused = httpx.post(
        server.url + "/api/auth/login", json={"username": "dave", "password": "dave-password"}
    )
    assert refused.status_code == 401
    assert refused.json()["detail"] == "this account is disabled; ask an admin"
    on = root.client.patch("/api/admin/users/dave", json={"disabled": False})
    assert on.json()["disabled"] is False
    assert dave.client.get("/api/me").status_code == 200  # the token works again
    assert session.get("/api/me").status_code == 401  # the session stayed ended
    self_off = root.client.patch("/api/admin/users/root-admin", json={"disabled": True})
    assert self_off.status_code == 409
    actions = [(r["action"], r["target"]) for r in audit(root)]
    assert ("user.disabled", "dave") in actions and ("user.enabled", "dave") in actions
    dave.client.close()
    session.close()


def test_invite_links_are_one_time_expiring_and_stored_hashed(
    server: ServerProcess, people: dict[str, Person], root: Api
) -> None:
    notebook = root.create("invited into")
    made = root.client.post(
        "/api/admin/invites",
        json={"label": "new colleague", "notebook_id": notebook, "role": "commenter"},
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("tdi_")
    # Only its SHA-256 is kept: the token itself is nowhere in the database.
    with sqlite3.connect(server.data_dir / "tandem.db") as database:
        rows = database.execute("SELECT * FROM invites").fetchall()
        dump = "\n".join(database.iterdump())
    assert token not in dump
    assert any(hashlib.sha256(token.encode()).hexdigest() in row for row in rows)
    assert all("token" not in invite for invite in root.client.get("/api/admin/invites").json())

    info = httpx.post(server.url + "/api/invites/inspect", json={"token": token})
    assert info.json()["notebook_title"] == "invited into"
    assert info.json()["role"] == "commenter"
    with httpx.Client(base_url=server.url, timeout=10) as newcomer:
        accepted = newcomer.post(
            "/api/invites/accept", json={"token": token, "username": "ivy", "password": "ivy-pw"}
        )
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["notebook_id"] == notebook
        # Signed in at once, and in the notebook with the invite's role.
        assert newcomer.get("/api/me").json()["username"] == "ivy"
        listed = newcomer.get("/api/notebooks").json()
        assert [(n["id"], n["role"]) for n in listed] == [(notebook, "commenter")]
    assert can_login(server, "ivy", "ivy-pw")
    # Used once: refused clearly after.
    again = httpx.post(
        server.url + "/api/invites/accept",
        json={"token": token, "username": "ivy2", "password": "pw"},
    )
    assert again.status_code == 409
    assert again.json()["detail"] == "this invite link was already used; ask for a new one"
    assert not can_login(server, "ivy2", "pw")
    used = httpx.post(server.url + "/api/invites/inspect", json={"token": token})
    assert used.status_code == 409

    # Expired: refused clearly.
    short = root.client.post("/api/admin/invites", json={"days": 0.00002}).json()  # ~1.7 s
    time.sleep(2.5)
    late = httpx.post(
        server.url + "/api/invites/accept",
        json={"token": short["token"], "username": "late", "password": "pw"},
    )
    assert late.status_code == 409
    assert late.json()["detail"] == "this invite link has expired; ask for a new one"
    # Revoked, unknown, a username taken: refused, and the invite is not spent by a failure.
    revocable = root.client.post("/api/admin/invites", json={}).json()
    assert root.client.delete(f"/api/admin/invites/{revocable['id']}").status_code == 204
    gone = httpx.post(server.url + "/api/invites/inspect", json={"token": revocable["token"]})
    assert gone.status_code == 409
    forged = httpx.post(server.url + "/api/invites/inspect", json={"token": "tdi_forged"})
    assert forged.status_code == 404
    fresh = root.client.post("/api/admin/invites", json={}).json()
    taken = httpx.post(
        server.url + "/api/invites/accept",
        json={"token": fresh["token"], "username": "ivy", "password": "pw"},
    )
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]
    # Another site cannot spend an invite for a visitor (signing them in to its account).
    cross_site = httpx.post(
        server.url + "/api/invites/accept",
        json={"token": fresh["token"], "username": "planted", "password": "pw"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    usable = httpx.post(server.url + "/api/invites/inspect", json={"token": fresh["token"]})
    assert usable.status_code == 200
    # An invite into a notebook that is not the admin's own is refused.
    alice = Api(server, people["alice"])
    alice_notebook = alice.create("alice's")
    alice.client.close()
    foreign = root.client.post(
        "/api/admin/invites", json={"notebook_id": alice_notebook, "role": "editor"}
    )
    assert foreign.status_code == 404
    actions = [(r["action"], r["actor"]) for r in audit(root)]
    assert ("invite.created", "root-admin") in actions
    assert ("invite.revoked", "root-admin") in actions
    assert ("invite.accepted", "ivy") in actions
    owner_log = root.client.get(f"/api/notebooks/{notebook}/audit").json()
    assert ("ivy", "invite.joined") in [(r["actor"], r["action"]) for r in owner_log]


def test_own_password_change_needs_the_current_one_and_ends_other_sessions(
    server: ServerProcess, root: Api
) -> None:
    root.client.post("/api/admin/users", json={"username": "jo", "password": "jo-first"})
    here = browser_login(server, "jo", "jo-first")
    elsewhere = browser_login(server, "jo", "jo-first")
    change = "/api/me/password"
    wrong = here.post(change, json={"current_password": "nope", "new_password": "jo-second"})
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "the current password is wrong"
    forged = here.post(
        change,
        json={"current_password": "jo-first", "new_password": "evil"},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    done = here.post(change, json={"current_password": "jo-first", "new_password": "jo-second"})
    assert done.status_code == 204, done.text
    assert here.get("/api/me").status_code == 200  # this session stays
    assert elsewhere.get("/api/me").status_code == 401  # the other one ended
    assert can_login(server, "jo", "jo-second") and not can_login(server, "jo", "jo-first")
    row = next(r for r in audit(root) if r["action"] == "password.changed")
    assert (row["actor"], row["target"], row["detail"]) == ("jo", "jo", {"sessions_revoked": 1})
    here.close()
    elsewhere.close()


def test_own_password_change_is_throttled_like_logins(server: ServerProcess, root: Api) -> None:
    root.client.post("/api/admin/users", json={"username": "kim", "password": "kim-first"})
    session = browser_login(server, "kim", "kim-first")
    change = "/api/me/password"
    for _ in range(10):
        wrong = session.post(change, json={"current_password": "guess", "new_password": "x"})
        assert wrong.status_code == 403
    right = session.post(change, json={"current_password": "kim-first", "new_password": "x"})
    assert right.status_code == 429
    assert can_login(server, "kim", "kim-first") is False  # login shares the throttle
    session.close()


def test_sign_in_providers_come_from_the_settings(fresh_server: ServerProcess) -> None:
    """The login page's place for single sign-on: listed from TANDEM_LOGIN_PROVIDERS."""
    providers = [{"name": "Example SSO", "url": "https://sso.example/start"}]
    fresh_server.env["TANDEM_LOGIN_PROVIDERS"] = json.dumps(providers)
    fresh_server.start()
    assert httpx.get(fresh_server.url + "/api/auth/providers").json() == providers
