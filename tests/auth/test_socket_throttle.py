"""Regression tests for a bad-token flood on the sockets: every socket's credential is
checked on one thread, so an address that kept sending bad tokens made everyone's join
wait behind its checks. Failed socket sign-ins now count per client address and, past
TANDEM_SOCKET_AUTH_MAX_FAILURES within the window, that address is refused 429 before
anything is looked up; other addresses are not.

Addresses are told apart through a trusted proxy's X-Forwarded-For (all of loopback is one
address, as for logins)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlmodel import Session

from server.auth import service as accounts
from server.auth.credentials import Credential, plausible
from server.config import Settings
from server.db import make_engine, migrate
from tests.support import (
    Api,
    Handshake,
    Person,
    ServerProcess,
    bad_sign_ins,
    bad_token,
    handshake,
    make_people,
    start_with_alice,
    sync_url,
)
from tests.support_pg import PostgresServer

FLOODER = "203.0.113.7"
BYSTANDER = "198.51.100.9"
THROUGH_PROXY = {"TANDEM_TRUSTED_PROXIES": '["127.0.0.1"]'}


def events_url(server: ServerProcess, notebook_id: str, token: str) -> str:
    return f"{server.ws_url}/api/notebooks/{notebook_id}/events?token={token}"


class Throttled:
    """A server of the test's own behind a trusted proxy (not started until `start`)."""

    def __init__(self, data_dir: Path) -> None:
        self.server = ServerProcess(data_dir)
        self._apis: list[Api] = []

    def start(self, limit: int, window: float, **env: str) -> tuple[Api, Person]:
        """Start it with this limit and window; alice may create notebooks there, bob
        exists."""
        settings = {
            **THROUGH_PROXY,
            "TANDEM_SOCKET_AUTH_MAX_FAILURES": str(limit),
            "TANDEM_SOCKET_AUTH_WINDOW_SECONDS": str(window),
            **env,
        }
        _, alice = start_with_alice(self.server, **settings)
        self._apis.append(alice)
        url = self.server.env.get("TANDEM_DATABASE_URL", "")
        bob = make_people(self.server.data_dir, ["bob"], database_url=url)["bob"]
        return alice, bob

    def stop(self) -> None:
        for api in self._apis:
            api.client.close()
        self.server.stop()
        log = self.server.log()
        assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Throttled]:
    deployment = Throttled(tmp_path / "data")
    yield deployment
    deployment.stop()


@contextlib.contextmanager
def tokens_locked(database_url: str) -> Iterator[None]:
    """No one can read the tokens table until the block ends: a check that looks a token up
    waits for it."""
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection, connection.transaction():
        connection.execute("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")
        yield


async def test_past_the_limit_an_address_is_refused_before_any_lookup(
    deployment: Throttled, postgres: PostgresServer
) -> None:
    database = postgres.create_database("socket_throttle")
    alice, _ = deployment.start(limit=3, window=60, TANDEM_DATABASE_URL=database)
    server = deployment.server
    notebook = alice.create("flooded")
    assert await bad_sign_ins(server, notebook, FLOODER, 3) == [401, 401, 401]
    refused = await handshake(
        f"{sync_url(server, notebook, None)}?token={bad_token()}", forwarded_for=FLOODER
    )
    assert refused == Handshake(429, "60")
    # Both sockets share the count, and a good token is no exception for a stranger to it.
    good = alice.person.token
    assert (await handshake(events_url(server, notebook, good), FLOODER)).status == 429

    with tokens_locked(database):
        # Refused while nothing can be looked up: the refusal needed no database.
        flooder = await asyncio.wait_for(bad_sign_ins(server, notebook, FLOODER, 1), 10)
        assert flooder == [429]
        # A token that cannot be one of ours (its shape) needs no look-up either.
        garbage = f"{sync_url(server, notebook, None)}?token=tdm_short"
        quick = await asyncio.wait_for(handshake(garbage, forwarded_for=BYSTANDER), 10)
        assert quick.status == 401
        # Another address's well-shaped token is looked up: it waits for the table.
        bystander = asyncio.ensure_future(bad_sign_ins(server, notebook, BYSTANDER, 1))
        await asyncio.sleep(1)
        assert not bystander.done()
    assert await asyncio.wait_for(bystander, 30) == [401]
    assert f"socket sign-ins from {FLOODER} refused" in server.log()
    assert good not in server.log()


async def test_the_refusal_ends_when_the_window_has_passed(deployment: Throttled) -> None:
    alice, _ = deployment.start(limit=2, window=2)
    server = deployment.server
    notebook = alice.create("flooded, then quiet")
    assert await bad_sign_ins(server, notebook, FLOODER, 3) == [401, 401, 429]
    await asyncio.sleep(2.5)
    assert await bad_sign_ins(server, notebook, FLOODER, 1) == [401]


async def test_someone_already_in_from_the_address_keeps_joining_a_newcomer_waits(
    deployment: Throttled,
) -> None:
    """A good token that got in from the address before its refusal still gets in (and is
    still checked in full); one that never came from there waits for the window, though it
    is welcome from anywhere else."""
    alice, bob = deployment.start(limit=3, window=60)
    server = deployment.server
    notebook = alice.create("shared behind one NAT")
    alice.share(notebook, "bob", "viewer")
    in_before = sync_url(server, notebook, bob.token)
    assert (await handshake(in_before, forwarded_for=FLOODER)).status == 101
    assert await bad_sign_ins(server, notebook, FLOODER, 4) == [401, 401, 401, 429]

    assert (await handshake(in_before, forwarded_for=FLOODER)).status == 101
    newcomer = sync_url(server, notebook, alice.person.token)
    assert (await handshake(newcomer, forwarded_for=FLOODER)).status == 429
    assert (await handshake(newcomer, forwarded_for=BYSTANDER)).status == 101
    # Let through, yet checked: with his access taken away, bob is refused from there too.
    removed = alice.client.delete(f"/api/notebooks/{notebook}/members/bob")
    assert removed.status_code == 200, removed.text
    assert (await handshake(in_before, forwarded_for=FLOODER)).status == 404


async def test_a_burst_opened_at_once_gets_no_more_lookups_than_the_limit(
    deployment: Throttled,
) -> None:
    """Checks still running count: sockets opened together cannot all slip past the limit
    before the first of them has failed."""
    alice, _ = deployment.start(limit=5, window=60)
    server = deployment.server
    notebook = alice.create("burst")
    url = sync_url(server, notebook, None)
    burst = [handshake(f"{url}?token={bad_token()}", FLOODER) for _ in range(60)]
    statuses = [answer.status for answer in await asyncio.gather(*burst)]
    assert set(statuses) == {401, 429}, statuses
    assert statuses.count(401) <= 5, statuses


async def test_successes_never_count(deployment: Throttled) -> None:
    """A classroom behind one address: however many good joins, only failures count."""
    alice, bob = deployment.start(limit=3, window=60)
    server = deployment.server
    notebook = alice.create("class")
    alice.share(notebook, "bob", "viewer")
    for person in [alice.person, bob] * 10:
        joined = await handshake(sync_url(server, notebook, person.token), FLOODER)
        assert joined.status == 101
    assert await bad_sign_ins(server, notebook, FLOODER, 4) == [401, 401, 401, 429]


async def test_every_loopback_address_is_one_and_an_untrusted_forwarded_for_is_not_believed(
    deployment: Throttled,
) -> None:
    """A kernel on the server's machine can send from any 127.x.y.z and say anything in
    X-Forwarded-For: neither buys it a fresh count."""
    alice, _ = deployment.start(limit=2, window=60, TANDEM_TRUSTED_PROXIES="[]")
    server = deployment.server
    notebook = alice.create("local")
    url = sync_url(server, notebook, None)
    first = await handshake(f"{url}?token={bad_token()}", "203.0.113.1", local_host="127.0.0.2")
    second = await handshake(f"{url}?token={bad_token()}", "203.0.113.2", local_host="127.0.0.3")
    third = await handshake(f"{url}?token={bad_token()}", "203.0.113.3", local_host="127.0.0.1")
    assert [first.status, second.status, third.status] == [401, 401, 429]


def test_the_shape_check_accepts_every_credential_the_server_makes(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    migrate(engine)
    with Session(engine) as db:
        user = accounts.create_user(db, "ann", "ann-password")
        made = [
            Credential(accounts.create_token(db, user, "tests"), is_session=False),
            Credential(accounts.create_guest(db, "visitor")[1], is_session=False),
            Credential(accounts.open_session(db, user, 14), is_session=True),
        ]
    engine.dispose()
    assert all(plausible(credential) for credential in made)
    for raw in ["", "tdm_", "tdm_short", bad_token() + "x", "tdw_" + secrets.token_urlsafe(32)]:
        assert not plausible(Credential(raw, is_session=False)), raw
    assert not plausible(Credential(bad_token(), is_session=True))
