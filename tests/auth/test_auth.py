"""Accounts, tokens, sessions and the Origin rule for cookies, through the real server."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.support import ROOT, Api, Person, ServerProcess, YClient, sync_url


@contextlib.contextmanager
def login(server: ServerProcess, person: Person) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post(
            "/api/auth/login", json={"username": person.username, "password": person.password}
        )
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        yield client


def test_password_login_gives_a_session_cookie(
    server: ServerProcess, people: dict[str, Person]
) -> None:
    with login(server, people["alice"]) as browser:
        assert browser.get("/api/me").json()["username"] == "alice"
        own = {"Origin": server.url}
        response = browser.post("/api/notebooks", json={"title": "by cookie"}, headers=own)
        assert response.status_code == 201
        assert browser.post("/api/auth/logout", headers=own).status_code == 204
        assert browser.get("/api/me").status_code == 401


def test_wrong_passwords_and_tokens_are_refused(
    server: ServerProcess, people: dict[str, Person]
) -> None:
    for body in (
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "alice-password"},
    ):
        response = httpx.post(server.url + "/api/auth/login", json=body)
        assert response.status_code == 401
        assert response.json() == {"detail": "wrong username or password"}
    for header in ("Bearer tdm_forged", "Basic YWxpY2U6eA==", "Bearer"):
        response = httpx.get(server.url + "/api/me", headers={"Authorization": header})
        assert response.status_code == 401
    assert httpx.get(server.url + "/api/me").status_code == 401


def test_cookie_requests_from_a_foreign_origin_are_refused(
    server: ServerProcess, people: dict[str, Person]
) -> None:
    """Regression test for cross-site request forgery with the session cookie."""
    with login(server, people["alice"]) as browser:
        evil = {"Origin": "https://evil.example"}
        response = browser.post("/api/notebooks", json={"title": "csrf"}, headers=evil)
        assert response.status_code == 403
        assert browser.post("/api/notebooks", json={"title": "no origin"}).status_code == 403
        # Reading is harmless (the browser's same-origin policy hides the answer).
        assert browser.get("/api/notebooks", headers=evil).status_code == 200
        # Nor can another site log the person out.
        assert browser.post("/api/auth/logout", headers=evil).status_code == 403
        assert browser.get("/api/me").status_code == 200


async def test_cookie_websocket_needs_our_origin(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """Regression test for cross-site websocket hijacking."""
    notebook = alice.create("cswsh")
    with login(server, people["alice"]) as browser:
        cookie = f"tandem_session={browser.cookies['tandem_session']}"
    url = sync_url(server, notebook, None)
    for origin in ("https://evil.example", None):
        headers = {"Cookie": cookie} | ({"Origin": origin} if origin else {})
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=headers, origin=None):
                pass
        assert refused.value.response.status_code == 403
    async with websockets.connect(
        url, additional_headers={"Cookie": cookie}, origin=websockets.Origin(server.url)
    ) as ws:
        assert isinstance(await ws.recv(), bytes)  # the server's sync step 1


async def test_bearer_header_works_on_websockets(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("header auth")
    headers = {"Authorization": f"Bearer {people['alice'].token}"}
    async with websockets.connect(sync_url(server, notebook, None), additional_headers=headers):
        pass


def test_cli_creates_users_and_tokens_stored_hashed(tmp_path: object) -> None:
    data_dir = str(tmp_path)
    env = {**os.environ}

    def tandem(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server", *args, "--data-dir", data_dir],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )

    created = tandem("users", "create", "zoe", "--password", "zoe-pw", "--admin")
    assert created.returncode == 0, created.stderr
    assert "created admin zoe" in created.stdout
    generated = tandem("users", "create", "yan")
    assert generated.returncode == 0
    assert "password: " in generated.stdout
    assert tandem("users", "create", "zoe").returncode == 2
    token = tandem("tokens", "create", "zoe", "--label", "laptop")
    assert token.returncode == 0
    raw = token.stdout.strip()
    assert raw.startswith("tdm_") and len(raw) > 40
    missing = tandem("tokens", "create", "nobody")
    assert missing.returncode == 2 and "no user named" in missing.stderr

    server = ServerProcess(tmp_path)  # type: ignore[arg-type]
    server.start()
    try:
        response = httpx.get(server.url + "/api/me", headers={"Authorization": f"Bearer {raw}"})
        assert response.json()["username"] == "zoe"
        assert response.json()["is_admin"] is True
        login_response = httpx.post(
            server.url + "/api/auth/login", json={"username": "zoe", "password": "zoe-pw"}
        )
        assert login_response.status_code == 200
    finally:
        server.stop()
    # Neither the token nor the password nor the session is in the database in clear.
    database = sqlite3.connect(f"{data_dir}/tandem.db")
    dump = "\n".join(database.iterdump())
    database.close()
    assert raw not in dump
    assert "zoe-pw" not in dump
    assert login_response.cookies["tandem_session"] not in dump
    assert "$argon2id$" in dump


async def test_token_in_query_string_never_reaches_the_log(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    """Clients that cannot set headers send their token in the query string: no line
    carries it, neither for a socket let in nor for one refused (whose line is logged)."""
    notebook = alice.create("log hygiene")
    async with YClient(sync_url(server, notebook, people["alice"].token)):
        pass
    wrong = "tdm_" + "w" * 43
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(sync_url(server, notebook, wrong)):
            pass
    log = server.log()
    assert f"refused a socket to /api/notebooks/{notebook}/sync: invalid token" in log
    assert people["alice"].token not in log
    assert wrong not in log
    # Per-socket lines are DEBUG only (they cost a mass join CPU): none from uvicorn here.
    assert "[accepted]" not in log and "connection open" not in log


def test_password_guessing_is_throttled(fresh_server: ServerProcess) -> None:
    """Regression test for online password guessing: after 10 failures from one address for
    one account, even the right password waits; other accounts are unaffected."""
    fresh_server.start()
    from tests.support import make_people

    people = make_people(fresh_server.data_dir, ["target", "bystander"])
    login_url = fresh_server.url + "/api/auth/login"
    for attempt in range(10):
        response = httpx.post(login_url, json={"username": "target", "password": f"guess{attempt}"})
        assert response.status_code == 401
    right = {"username": "target", "password": people["target"].password}
    response = httpx.post(login_url, json=right)
    assert response.status_code == 429
    assert "too many" in response.json()["detail"]
    other = {"username": "bystander", "password": people["bystander"].password}
    assert httpx.post(login_url, json=other).status_code == 200
    # Tokens are not passwords: API access goes on.
    me = httpx.get(
        fresh_server.url + "/api/me", headers={"Authorization": f"Bearer {people['target'].token}"}
    )
    assert me.status_code == 200


def test_a_forged_forwarded_for_does_not_escape_the_throttle(fresh_server: ServerProcess) -> None:
    """Regression test: uvicorn believed X-Forwarded-For from 127.0.0.1 (where kernels run),
    so rotating it gave every guess a fresh address. Forwarded headers are believed only
    from TANDEM_TRUSTED_PROXIES (none by default)."""
    fresh_server.start()
    from tests.support import make_people

    make_people(fresh_server.data_dir, ["target"])
    login_url = fresh_server.url + "/api/auth/login"
    codes = [
        httpx.post(
            login_url,
            json={"username": "target", "password": f"guess{attempt}"},
            headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
        ).status_code
        for attempt in range(25)
    ]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes


def test_a_share_link_secret_in_a_path_never_reaches_the_log(
    server: ServerProcess, alice: Api
) -> None:
    notebook = alice.create("link hygiene")
    link = alice.client.post(f"/api/notebooks/{notebook}/links", json={"role": "viewer"})
    assert link.status_code == 201, link.text
    secret = link.json()["token"]
    assert httpx.get(f"{server.url}/links/{secret}").status_code == 200
    assert secret not in server.log()
    assert "/links/tdl_[redacted]" in server.log()


def test_every_loopback_address_counts_as_one(fresh_server: ServerProcess) -> None:
    """Review finding: a kernel on the server's machine could send each guess from a new
    127.x.y.z and never be throttled."""
    import socket

    fresh_server.start()
    from tests.support import make_people

    make_people(fresh_server.data_dir, ["target"])
    codes = []
    for attempt in range(14):
        source = f"127.0.{attempt // 200}.{attempt % 200 + 2}"
        probe = socket.socket()
        try:
            probe.bind((source, 0))
        except OSError:
            pytest.skip("this machine does not route all of 127.0.0.0/8")
        finally:
            probe.close()
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport) as client:
            response = client.post(
                fresh_server.url + "/api/auth/login",
                json={"username": "target", "password": f"guess{attempt}"},
            )
        codes.append(response.status_code)
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
