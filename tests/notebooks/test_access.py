"""The socket path's one-query access check against REST's authenticate + get_with_role:
every credential on every notebook must give the same user and role, or the same error."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from server.auth import service as accounts
from server.auth.credentials import SESSION_COOKIE, RequestFacts, authenticate, credential_of
from server.auth.models import WebSession
from server.config import Settings
from server.db import make_engine, migrate
from server.errors import TandemError
from server.notebooks.access import SocketChecks, socket_access
from server.notebooks.models import Membership, Notebook
from server.notebooks.service import get_with_role
from server.shares.models import LinkGrant, ShareLink
from server.timeutil import utcnow
from server.vocabulary import Role
from tests.support_pg import BACKENDS, DatabaseUrls

Outcome = tuple[str, ...]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def link(db: Session, notebook: str, role: Role, holder: int, **state: Any) -> None:
    link_id = uuid.uuid4().hex
    db.add(
        ShareLink(
            id=link_id, notebook_id=notebook, role=role.value, token_hash=link_id * 2, **state
        )
    )
    db.flush()
    db.add(LinkGrant(link_id=link_id, user_id=holder))


def populate(engine: Engine) -> list[str]:
    """People holding roles every way there is on notebooks "a" and "b"; their raw
    credentials (API tokens and session cookies, some dead)."""
    now = utcnow()
    credentials = ["tdm_not-a-token", "not-a-session"]
    with Session(engine) as db:
        people = {
            name: accounts.add_user(db, name)
            for name in ("owner", "viewer", "linked", "mixed", "stale", "off", "guest")
        }
        people["guest"].is_guest = True
        people["off"].disabled = True
        ids = {name: user.id for name, user in people.items()}
        assert all(user_id is not None for user_id in ids.values())
        for notebook in ("a", "b"):
            db.add(Notebook(id=notebook, title=notebook, owner_id=ids["owner"]))
        db.flush()
        db.add(Membership(notebook_id="a", user_id=ids["viewer"], role=Role.VIEWER.value))
        db.add(Membership(notebook_id="a", user_id=ids["mixed"], role=Role.COMMENTER.value))
        db.add(Membership(notebook_id="b", user_id=ids["off"], role=Role.EDITOR.value))
        link(db, "a", Role.EDITOR, ids["linked"])
        link(db, "a", Role.VIEWER, ids["linked"], expires_at=now + timedelta(hours=1))
        link(db, "a", Role.EDITOR, ids["mixed"], revoked_at=now)
        link(db, "a", Role.VIEWER, ids["mixed"], expires_at=now + timedelta(hours=1))
        link(db, "b", Role.EDITOR, ids["mixed"])
        link(db, "a", Role.EDITOR, ids["stale"], expires_at=now - timedelta(seconds=1))
        link(db, "b", Role.COMMENTER, ids["guest"])
        link(db, "b", Role.EDITOR, ids["guest"], revoked_at=now)
        for user in people.values():
            credentials.append(accounts.create_token(db, user))
            credentials.append(accounts.open_session(db, user, session_days=1))
        expired = "expired-session"
        db.add(
            WebSession(
                token_hash=accounts.hash_secret(expired),
                user_id=ids["viewer"],
                expires_at=now - timedelta(seconds=1),
            )
        )
        credentials.append(expired)
        db.commit()
    return credentials


def facts_for(raw: str) -> RequestFacts:
    is_token = raw.startswith(accounts.TOKEN_PREFIX)
    return RequestFacts(
        headers={"authorization": f"Bearer {raw}"}
        if is_token
        else {"origin": "http://here", "host": "here"},
        cookies={} if is_token else {SESSION_COOKIE: raw},
        query_token=None,
        scheme="ws",
        method="GET",
        websocket=True,
    )


def through_rest(engine: Engine, raw: str, notebook: str) -> Outcome:
    try:
        with Session(engine) as db:
            user = authenticate(db, facts_for(raw), [])
            _, role = get_with_role(db, notebook, user)
            return (str(user.id), user.username, str(user.is_guest), role.value)
    except TandemError as error:
        return (type(error).__name__, error.message)


def through_socket(engine: Engine, raw: str, notebook: str) -> Outcome:
    try:
        credential = credential_of(facts_for(raw), [])
        with engine.connect() as connection:
            caller, role = socket_access(connection, credential, notebook)
            return (str(caller.id), caller.username, str(caller.is_guest), role.value)
    except TandemError as error:
        return (type(error).__name__, error.message)


async def checked_together(engine: Engine, cases: list[tuple[str, str]]) -> list[Outcome]:
    checks = SocketChecks(engine)

    async def check(raw: str, notebook: str) -> Outcome:
        try:
            caller, role = await checks.check(credential_of(facts_for(raw), []), notebook)
            return (str(caller.id), caller.username, str(caller.is_guest), role.value)
        except TandemError as error:
            return (type(error).__name__, error.message)

    return await asyncio.gather(*(check(raw, notebook) for raw, notebook in cases))


def test_socket_access_agrees_with_rest_on_every_credential_and_notebook(
    tmp_path: Path, database_urls: DatabaseUrls
) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=database_urls.new("access")))
    migrate(engine)
    credentials = populate(engine)
    notebooks = ["a", "b", "missing", "a" * 33]
    outcomes: set[Outcome] = set()
    cases = list(itertools.product(credentials, notebooks))
    expected = [through_rest(engine, raw, notebook) for raw, notebook in cases]
    for (raw, notebook), outcome in zip(cases, expected, strict=True):
        assert through_socket(engine, raw, notebook) == outcome, (raw, notebook)
        outcomes.add(outcome)
    # All at once, as sockets opening together are checked: in batches, each its own answer.
    assert asyncio.run(checked_together(engine, cases * 2)) == expected * 2
    # The cases reach every role and every refusal, so agreeing means something.
    reached = {outcome[-1] for outcome in outcomes}
    assert {role.value for role in Role} <= reached
    assert {
        "no such notebook",
        "invalid token",
        "session expired; log in again",
    } <= reached
    engine.dispose()
