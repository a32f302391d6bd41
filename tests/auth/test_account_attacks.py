"""Attacks on accounts, through the real server: non-admins at every admin route by every
method, forged cross-site writes with the session cookie, a disabled account's every way
in (session, token, guest token, open sockets, worker tokens it made), invites raced, reused,
from a disabled admin, with look-alike usernames or while signed in as someone else, a
stolen session's open sockets after a password change, secrets in audit rows and logs, and
what a refused @mention tells."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets

from tests.support import Api, Person, ServerProcess, YClient, make_people, sync_url

ADMIN_ROUTES = [
    "/api/admin/users",
    "/api/admin/users/carol",
    "/api/admin/users/carol/password",
    "/api/admin/invites",
    "/api/admin/invites/0123abcd",
    "/api/admin/audit",
]


@pytest.fixture(scope="module")
def admins(server: ServerProcess, people: dict[str, Person]) -> Iterator[dict[str, Api]]:
    made = make_people(server.data_dir, ["sec-root", "sec-other"], admin=True)
    apis = {name: Api(server, person) for name, person in made.items()}
    yield apis
    for api in apis.values():
        api.client.close()


def signed_in(server: ServerProcess, username: str, password: str) -> httpx.Client:
    """A browser's cookie session; its requests carry our Origin, as our pages' do."""
    client = httpx.Client(base_url=server.url, timeout=10, headers={"Origin": server.url})
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return client


def cookie_headers(server: ServerProcess, client: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"tandem_session={client.cookies['tandem_session']}", "Origin": server.url}


def new_user(admin: Api, username: str, password: str) -> None:
    made = admin.client.post("/api/admin/users", json={"username": username, "password": password})
    assert made.status_code == 201, made.text


def invite(admin: Api, **body: Any) -> str:
    made = admin.client.post("/api/admin/invites", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def accept(server: ServerProcess, token: str, username: str, password: str) -> httpx.Response:
    body = {"token": token, "username": username, "password": password}
    return httpx.post(server.url + "/api/invites/accept", json=body, timeout=30)


async def close_code(ws: websockets.ClientConnection, timeout: float = 5) -> int | None:
    """Read (and drop) what the server sends until it closes the socket; its close code."""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code


async def refused_status(url: str, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, additional_headers=headers or {})
    return refused.value.response.status_code


def test_no_admin_route_answers_a_non_admin_by_any_method(
    server: ServerProcess, people: dict[str, Person], admins: dict[str, Api]
) -> None:
    bob = Api(server, people["bob"])
    notebook = admins["sec-root"].create("guests welcome")
    link = admins["sec-root"].client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "viewer", "allow_guests": True}
    )
    guest_token = httpx.post(
        server.url + "/api/links/redeem", json={"token": link.json()["token"], "guest_name": "G"}
    ).json()["token"]
    guest = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {guest_token}"})
    body = {"username": "sneak", "password": "pw", "is_admin": True, "disabled": True}
    for path in ADMIN_ROUTES:
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
            for who in (bob.client, guest):
                answer = who.request(method, path, json=body)
                assert answer.status_code in (403, 405), (method, path, answer.status_code)
            stranger = httpx.request(method, server.url + path, json=body)
            assert stranger.status_code in (401, 405), (method, path, stranger.status_code)
    # Nothing happened: no account made, carol neither disabled nor reset.
    names = [u["username"] for u in admins["sec-root"].client.get("/api/admin/users").json()]
    assert "sneak" not in names
    assert httpx.post(
        server.url + "/api/auth/login", json={"username": "carol", "password": "carol-password"}
    ).is_success
    # No field makes anyone an admin: not an admin's PATCH, not an invite's body.
    patched = admins["sec-root"].client.patch("/api/admin/users/bob", json={"is_admin": True})
    assert patched.status_code == 200 and patched.json()["is_admin"] is False
    token = invite(admins["sec-root"])
    made = httpx.post(
        server.url + "/api/invites/accept",
        json={"token": token, "username": "sec-upstart", "password": "pw", "is_admin": True},
    )
    assert made.status_code == 201 and made.json()["user"]["is_admin"] is False
    bob.client.close()
    guest.close()


def test_cookie_writes_need_our_origin(server: ServerProcess, admins: dict[str, Api]) -> None:
    """Cross-site request forgery: a cookie request with no Origin, "null" (a sandboxed
    frame, a data: page) or another site's changes nothing."""
    new_user(admins["sec-root"], "sec-cookie-admin-x", "pw-ignored")  # a target to aim at
    root = admins["sec-root"]
    made = make_people(server.data_dir, ["sec-cookie-admin"], admin=True)["sec-cookie-admin"]
    browser = signed_in(server, made.username, made.password)
    live = root.client.post("/api/admin/invites", json={}).json()
    writes = [
        ("POST", "/api/admin/users", {"username": "sec-forged"}),
        ("POST", "/api/admin/users/sec-cookie-admin-x/password", {"password": "forged"}),
        ("PATCH", "/api/admin/users/sec-cookie-admin-x", {"disabled": True}),
        ("POST", "/api/admin/invites", {"label": "forged"}),
        ("DELETE", f"/api/admin/invites/{live['id']}", None),
        ("POST", "/api/me/password", {"current_password": made.password, "new_password": "x"}),
    ]
    invites_before = len(root.client.get("/api/admin/invites").json())
    for origin in [None, "null", "https://evil.example", server.url + ".evil.example"]:
        headers = {"Origin": origin} if origin else {}
        for method, path, body in writes:
            browser.headers.pop("Origin", None)
            answer = browser.request(method, path, json=body, headers=headers)
            assert answer.status_code == 403, (origin, method, path, answer.text)
        if origin is None:  # no Origin is no browser's forgery (a browser sends one)
            continue
        forged = httpx.post(
            server.url + "/api/invites/accept",
            json={"token": live["token"], "username": "sec-planted", "password": "pw"},
            headers=headers,
        )
        assert forged.status_code == 403, (origin, forged.text)
    users = [u["username"] for u in root.client.get("/api/admin/users").json()]
    assert "sec-forged" not in users and "sec-planted" not in users
    listed = {u["username"]: u for u in root.client.get("/api/admin/users").json()}
    assert listed["sec-cookie-admin-x"]["disabled"] is False
    assert httpx.post(
        server.url + "/api/auth/login",
        json={"username": "sec-cookie-admin-x", "password": "pw-ignored"},
    ).is_success
    assert len(root.client.get("/api/admin/invites").json()) == invites_before
    usable = httpx.post(server.url + "/api/invites/inspect", json={"token": live["token"]})
    assert usable.status_code == 200  # not revoked, not spent
    assert httpx.post(
        server.url + "/api/auth/login", json={"username": made.username, "password": made.password}
    ).is_success
    browser.close()


async def test_a_disabled_account_loses_every_way_in(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    root = admins["sec-root"]
    made = make_people(server.data_dir, ["sec-ops"], admin=True)["sec-ops"]
    ops = Api(server, made)
    session = signed_in(server, made.username, made.password)
    notebook = root.create("ops reads")
    root.share(notebook, made.username, "editor")
    events = f"{server.ws_url}/api/notebooks/{notebook}/events"
    by_cookie = await websockets.connect(
        sync_url(server, notebook, None), additional_headers=cookie_headers(server, session)
    )
    by_token = await websockets.connect(sync_url(server, notebook, made.token))
    feed = await websockets.connect(events, additional_headers=cookie_headers(server, session))
    assert json.loads(await feed.recv())["type"] == "hello"
    # A worker dialling in with a worker token the admin made.
    worker_token = ops.client.post("/api/workers/tokens", json={"name": "sec-ops-node"})
    assert worker_token.status_code == 201
    connect = f"{server.ws_url}/api/workers/connect"
    worker_auth = {"Authorization": f"Bearer {worker_token.json()['token']}"}
    hello = {"type": "hello", "name": "sec-ops-node", "resources": {"cpus": 1, "memory_mb": 1}}
    worker = await websockets.connect(connect, additional_headers=worker_auth)
    await worker.send(json.dumps({**hello, "max_kernels": 1}))
    assert json.loads(await worker.recv())["type"] == "welcome"

    off = root.client.patch(f"/api/admin/users/{made.username}", json={"disabled": True})
    assert off.status_code == 200
    assert await close_code(by_cookie) == 4403
    assert await close_code(by_token) == 4403
    assert await close_code(feed) == 4403
    assert await close_code(worker) == 4401  # its worker is sent away at once...
    assert await refused_status(connect, worker_auth) == 401  # ...and cannot come back
    assert await refused_status(sync_url(server, notebook, made.token)) == 401
    assert await refused_status(events, cookie_headers(server, session)) == 401
    assert ops.client.get("/api/me").status_code == 401
    assert session.get("/api/me").status_code == 401
    assert ops.client.get("/api/workers/tokens").status_code == 401
    # Turned on again: the worker token works again (the browser session stays ended).
    root.client.patch(f"/api/admin/users/{made.username}", json={"disabled": False})
    again = await websockets.connect(connect, additional_headers=worker_auth)
    await again.send(json.dumps({**hello, "max_kernels": 1}))
    assert json.loads(await again.recv())["type"] == "welcome"
    await again.close()

    # A guest (joined through a share link) disabled: its token and its socket end too,
    # even with a "/" in the name it chose (the admin page sends it escaped).
    link = root.client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "viewer", "allow_guests": True}
    ).json()
    joined = httpx.post(
        server.url + "/api/links/redeem", json={"token": link["token"], "guest_name": "Sly/x"}
    ).json()
    guest_socket = await websockets.connect(sync_url(server, notebook, joined["token"]))
    escaped = quote(joined["username"], safe="")
    no_password = root.client.post(f"/api/admin/users/{escaped}/password", json={})
    assert no_password.status_code == 409  # found, and a guest has no password
    guest_off = root.client.patch(f"/api/admin/users/{escaped}", json={"disabled": True})
    assert guest_off.status_code == 200, guest_off.text
    assert await close_code(guest_socket) == 4403
    guest = httpx.get(
        server.url + "/api/me", headers={"Authorization": f"Bearer {joined['token']}"}
    )
    assert guest.status_code == 401
    ops.client.close()
    session.close()


async def test_two_people_racing_one_invite_or_one_name_get_one_account(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    """Requests sent at once: an invite spent twice, or two invites spent for one name. One
    account each time, the other told 409 (never a 500, never two accounts)."""
    root = admins["sec-root"]

    def race(calls: list[tuple[str, str]]) -> list[int]:
        gate = threading.Barrier(len(calls))
        statuses: list[int] = [0] * len(calls)

        def go(index: int, token: str, username: str) -> None:
            gate.wait()
            statuses[index] = accept(server, token, username, "race-pw").status_code

        threads = [
            threading.Thread(target=go, args=(i, token, name))
            for i, (token, name) in enumerate(calls)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(statuses)

    for round_ in range(3):
        token = invite(root)
        names = [f"sec-race{round_}-{i}" for i in range(4)]
        assert race([(token, name) for name in names]) == [201, 409, 409, 409]
        users = {u["username"] for u in root.client.get("/api/admin/users").json()}
        assert len(users & set(names)) == 1
        name = f"sec-same{round_}"
        assert race([(invite(root), name) for _ in range(4)]) == [201, 409, 409, 409]


def test_invite_usernames_cannot_pass_for_someone_else(
    server: ServerProcess, people: dict[str, Person], admins: dict[str, Api]
) -> None:
    root = admins["sec-root"]
    token = invite(root)
    refused = {
        "Alice": 409,  # alice's name in other letters' case
        "ALICE": 409,
        "\u0430lice": 400,  # a Cyrillic a first: looks like alice
        "alice\u200b": 400,  # with a zero-width space
        "\uff41\uff4c\uff49\uff43\uff45": 400,  # alice in full-width letters
        "alice (guest 1a2b3c)": 400,  # reads as one of the guests
        "a\x00b": 400,
        "tab\there": 400,
        "<img src=x onerror=alert(1)>": 400,
        "-dash": 400,
        "x" * 65: 422,
        "": 422,
    }
    for username, status in refused.items():
        answer = accept(server, token, username, "pw")
        assert answer.status_code == status, (username, answer.text)
    # A failure does not spend the invite; a plain name works.
    assert accept(server, token, "sec-plain.name_1", "pw").status_code == 201
    # Admins cannot make a case twin by mistake either.
    twin = root.client.post("/api/admin/users", json={"username": "Bob", "password": "pw"})
    assert twin.status_code == 409
    assert (
        httpx.post(
            server.url + "/api/auth/login", json={"username": "Bob", "password": "pw"}
        ).status_code
        == 401
    )


def test_an_invite_ends_with_its_admin_and_survives_its_notebook(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    root, other = admins["sec-root"], admins["sec-other"]
    notebook = other.create("other's team")
    owner = other.client.post("/api/admin/invites", json={"notebook_id": notebook, "role": "owner"})
    assert owner.status_code == 400  # ownership is never handed out by a link
    token = invite(other, notebook_id=notebook, role="editor")
    spare = invite(other)
    assert root.client.patch("/api/admin/users/sec-other", json={"disabled": True}).is_success
    for raw in (token, spare):
        inspect = httpx.post(server.url + "/api/invites/inspect", json={"token": raw})
        assert inspect.status_code == 409
        assert inspect.json()["detail"] == "this invite link is no longer valid; ask for a new one"
        assert accept(server, raw, "sec-via-disabled", "pw").status_code == 409
    assert root.client.patch("/api/admin/users/sec-other", json={"disabled": False}).is_success
    # Its notebook deleted: the invite still makes an account, a member of nothing.
    assert other.client.delete(f"/api/notebooks/{notebook}").status_code == 204
    info = httpx.post(server.url + "/api/invites/inspect", json={"token": token}).json()
    assert info["notebook_title"] is None and info["role"] is None
    with httpx.Client(base_url=server.url) as newcomer:
        made = newcomer.post(
            "/api/invites/accept",
            json={"token": token, "username": "sec-orphan", "password": "pw"},
        )
        assert made.status_code == 201 and made.json()["notebook_id"] is None
        assert newcomer.get("/api/notebooks").json() == []


def test_an_invite_spent_while_signed_in_ends_that_session(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    new_user(admins["sec-root"], "sec-before", "before-pw")
    browser = signed_in(server, "sec-before", "before-pw")
    before = browser.cookies["tandem_session"]
    made = browser.post(
        "/api/invites/accept",
        json={"token": invite(admins["sec-root"]), "username": "sec-after", "password": "pw"},
    )
    assert made.status_code == 201
    assert browser.get("/api/me").json()["username"] == "sec-after"
    stale = httpx.get(server.url + "/api/me", cookies={"tandem_session": before})
    assert stale.status_code == 401  # not only replaced in the browser: ended
    browser.close()


async def test_a_password_change_ends_what_a_stolen_session_has_open(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    """A thief with the person's session cookie has the notebook open; the person changes
    their password. The thief's sockets close and cannot come back; the person's own, by
    their kept session or a token, reconnect."""
    root = admins["sec-root"]
    new_user(root, "sec-victim", "victim-pw")
    mine = signed_in(server, "sec-victim", "victim-pw")
    stolen = signed_in(server, "sec-victim", "victim-pw")
    notebook = root.create("victim's work")
    root.share(notebook, "sec-victim", "editor")
    sync = sync_url(server, notebook, None)
    events = f"{server.ws_url}/api/notebooks/{notebook}/events"
    thief_sync = await websockets.connect(sync, additional_headers=cookie_headers(server, stolen))
    thief_feed = await websockets.connect(events, additional_headers=cookie_headers(server, stolen))
    own_sync = await websockets.connect(sync, additional_headers=cookie_headers(server, mine))
    bystander = await websockets.connect(sync_url(server, notebook, root.person.token))
    assert json.loads(await thief_feed.recv())["type"] == "hello"
    changed = mine.post(
        "/api/me/password", json={"current_password": "victim-pw", "new_password": "new-pw"}
    )
    assert changed.status_code == 204
    assert await close_code(thief_sync) == 1012
    assert await close_code(thief_feed) == 1012
    assert await refused_status(sync, cookie_headers(server, stolen)) == 401
    assert await refused_status(events, cookie_headers(server, stolen)) == 401
    # The person's own socket is told to reconnect, and does, with the session they kept.
    assert await close_code(own_sync) == 1012
    back = await websockets.connect(sync, additional_headers=cookie_headers(server, mine))
    await back.recv()  # sync step 1: in again
    await back.close()
    # Nobody else was disturbed.
    with pytest.raises(TimeoutError):
        await close_code(bystander, timeout=0.5)
    await bystander.close()
    mine.close()
    stolen.close()


def test_no_password_or_secret_in_audit_rows_logs_or_answers(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    root = admins["sec-root"]
    secrets_seen = ["sec-audit-first-pw", "sec-audit-second-pw", "sec-audit-third-pw"]
    new_user(root, "sec-audited", secrets_seen[0])
    session = signed_in(server, "sec-audited", secrets_seen[0])
    changed = session.post(
        "/api/me/password",
        json={"current_password": secrets_seen[0], "new_password": secrets_seen[1]},
    )
    assert changed.status_code == 204
    reset = root.client.post("/api/admin/users/sec-audited/password", json={})
    secrets_seen.append(reset.json()["password"])
    token = invite(root, label="audit trail")
    secrets_seen.append(token)
    assert httpx.get(f"{server.url}/invite/{token}").status_code == 200  # its page, logged
    made = accept(server, token, "sec-audit-joiner", secrets_seen[2])
    assert made.status_code == 201
    # A password too long: refused without echoing it.
    long_password = "sec-audit-long-" + "p" * 1100
    refused = session.post(
        "/api/me/password",
        json={"current_password": secrets_seen[0], "new_password": long_password},
    )
    assert refused.status_code in (401, 422) and long_password not in refused.text
    rows = json.dumps(root.client.get("/api/admin/audit").json())
    for action in ["password.changed", "password.reset", "invite.created", "invite.accepted"]:
        assert action in rows
    with sqlite3.connect(server.data_dir / "tandem.db") as database:
        dump = "\n".join(database.iterdump())
    log = server.log()
    for secret in secrets_seen:
        assert secret not in rows
        assert secret not in dump
        assert secret not in log
    assert long_password[:40] not in log
    session.close()


async def test_a_refused_mention_names_only_what_was_typed(
    server: ServerProcess, people: dict[str, Person], admins: dict[str, Api]
) -> None:
    """A commenter probing names gets the same answer for an account that exists (but
    cannot read the notebook) as for no account, and learns no one else's name."""
    root = admins["sec-root"]
    notebook = root.create("mentions")
    root.share(notebook, "carol", "commenter")
    new_user(root, "sec-reader", "reader-pw")  # mentions of erin and bob are other tests'
    root.share(notebook, "sec-reader", "viewer")
    carol = Api(server, people["carol"])
    async with YClient(sync_url(server, notebook, root.person.token)) as client:
        cell_id = str(client.cells[0]["id"])
    threads = f"/api/notebooks/{notebook}/threads"

    def comment(body: str) -> httpx.Response:
        return carol.client.post(threads, json={"cell_id": cell_id, "body": body})

    exists = comment("look @dave")  # dave has an account, not on this notebook
    missing = comment("look @nobody-at-all")
    assert exists.status_code == missing.status_code == 422
    assert exists.json()["detail"] == "no one who can read this notebook is called @dave"
    assert missing.json()["detail"] == "no one who can read this notebook is called @nobody-at-all"
    both = comment("@sec-reader and @dave and @zed")
    assert both.status_code == 422
    assert both.json()["detail"] == "no one who can read this notebook is called @dave, @zed"
    for name in ["sec-root", "sec-reader", "alice", "bob"]:
        assert name not in both.text
    # Nothing of a refused comment was kept; a reader is mentioned.
    assert carol.client.get(threads).json() == []
    assert comment("@sec-reader see this").status_code == 201
    carol.client.close()


def test_varying_a_names_case_does_not_get_round_the_login_throttle(
    server: ServerProcess, admins: dict[str, Api]
) -> None:
    new_user(admins["sec-root"], "sec-throttled", "throttled-pw")
    login = server.url + "/api/auth/login"
    for _ in range(10):
        httpx.post(login, json={"username": "sec-throttled", "password": "guess"})
    blocked = httpx.post(login, json={"username": "sec-throttled", "password": "throttled-pw"})
    assert blocked.status_code == 429
    for variant in ["SEC-THROTTLED", "Sec-Throttled", " sec-throttled", "sec-throttled "]:
        other = httpx.post(login, json={"username": variant, "password": "throttled-pw"})
        assert other.status_code == 401, variant  # no account by that name to sign in to
