"""A socket's caller and their role on its notebook, read in one query.

The same rules as `credentials.authenticate` then `service.get_with_role` (which REST
keeps): the credential's user, unless disabled or the session expired; then the owner, else
the better of a membership and the live share links they were granted; no role and no
notebook both read "no such notebook". Hundreds of sockets open at once when a replica
starts, and two ORM queries for an owner, four for anyone else, were a fifth of that
join's CPU. Nothing is cached: a revoked link or a removed member is refused on the next
socket.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, and_, bindparam, select
from sqlalchemy.engine import Connection

from server.auth.credentials import Credential
from server.auth.models import ApiToken, User, WebSession
from server.auth.service import hash_secret
from server.collab.batched_reads import BatchedReads
from server.errors import NotAuthenticated, NotFound, TandemError
from server.notebooks.models import Membership, Notebook
from server.shares import service as shares
from server.shares.models import LinkGrant, ShareLink
from server.timeutil import utcnow
from server.vocabulary import Role

_USERS = User.__table__  # type: ignore[attr-defined]
_TOKENS = ApiToken.__table__  # type: ignore[attr-defined]
_SESSIONS = WebSession.__table__  # type: ignore[attr-defined]
_NOTEBOOKS = Notebook.__table__  # type: ignore[attr-defined]
_MEMBERS = Membership.__table__  # type: ignore[attr-defined]
_LINKS = ShareLink.__table__  # type: ignore[attr-defined]
_GRANTS = LinkGrant.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Caller:
    """Who opened the socket: what the socket's code needs of the user, without building
    an ORM object per socket (that cost as much as the query)."""

    id: int
    username: str
    is_guest: bool


def _query(is_session: bool) -> Select[Any]:
    """One row per link grant on the notebook (at least one when the credential is good):
    the user's columns, then the notebook's owner (None: no such notebook), the
    membership's role, and one granted link's role, expiry and revocation."""
    if is_session:
        found = _SESSIONS.join(_USERS, _USERS.c.id == _SESSIONS.c.user_id)
        match = and_(
            _SESSIONS.c.token_hash == bindparam("digest"),
            _SESSIONS.c.expires_at > bindparam("now", type_=_SESSIONS.c.expires_at.type),
        )
    else:
        found = _TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
        match = _TOKENS.c.token_hash == bindparam("digest")
    granted = _GRANTS.join(_LINKS, _LINKS.c.id == _GRANTS.c.link_id)
    joined = (
        found.outerjoin(
            _NOTEBOOKS, _NOTEBOOKS.c.id == bindparam("notebook", type_=_NOTEBOOKS.c.id.type)
        )
        .outerjoin(
            _MEMBERS,
            and_(_MEMBERS.c.notebook_id == _NOTEBOOKS.c.id, _MEMBERS.c.user_id == _USERS.c.id),
        )
        .outerjoin(
            granted,
            and_(_GRANTS.c.user_id == _USERS.c.id, _LINKS.c.notebook_id == _NOTEBOOKS.c.id),
        )
    )
    return (
        select(
            _USERS.c.id,
            _USERS.c.username,
            _USERS.c.is_guest,
            _USERS.c.disabled,
            _NOTEBOOKS.c.owner_id,
            _MEMBERS.c.role,
            _LINKS.c.role,
            _LINKS.c.expires_at,
            _LINKS.c.revoked_at,
        )
        .select_from(joined)
        .where(match)
    )


# Built once: building the statement per socket cost as much as running it.
_BY_TOKEN = _query(is_session=False)
_BY_SESSION = _query(is_session=True)


def socket_access(
    connection: Connection, credential: Credential, notebook_id: str
) -> tuple[Caller, Role]:
    """The credential's user and their role on `notebook_id`; NotAuthenticated or NotFound
    with the messages REST gives."""
    now = utcnow()
    values = {"digest": hash_secret(credential.raw), "notebook": notebook_id, "now": now}
    rows = connection.execute(_BY_SESSION if credential.is_session else _BY_TOKEN, values).all()
    if not rows or rows[0].disabled:
        if credential.is_session:
            raise NotAuthenticated("session expired; log in again")
        raise NotAuthenticated("invalid token")
    user_id, username, is_guest, _, owner_id, member_role = rows[0][:6]
    caller = Caller(user_id, username, is_guest)
    if owner_id is None or len(notebook_id) > 32:
        raise NotFound("no such notebook")
    if owner_id == user_id:
        return caller, Role.OWNER
    live = [Role(row[6]) for row in rows if row[6] is not None and shares.live(row[8], row[7], now)]
    held = [Role(member_role)] if member_role is not None else []
    through_link = shares.best_role(live)
    role = shares.best_role(held + ([through_link] if through_link is not None else []))
    if role is None:
        raise NotFound("no such notebook")
    return caller, role


class SocketChecks:
    """Sockets opening together are checked together: one thread hop and one connection
    for the checks asked for while the previous ones ran (each still its own query). Waking
    a thread per socket was a tenth of a 500-room join's CPU once the check itself was
    cheap. The thread is their own: a compaction or a big room's build in the loop's default
    pool never holds up a socket's check (nor a slow REST call, in anyio's)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socket-checks")
        self._reads: BatchedReads[tuple[Credential, str], tuple[Caller, Role] | TandemError]
        self._reads = BatchedReads(self._check_many, executor=self._thread)

    async def check(self, credential: Credential, notebook_id: str) -> tuple[Caller, Role]:
        outcome = await self._reads.get((credential, notebook_id))
        if isinstance(outcome, TandemError):
            raise outcome
        return outcome

    def _check_many(
        self, checks: list[tuple[Credential, str]]
    ) -> dict[tuple[Credential, str], tuple[Caller, Role] | TandemError]:
        outcomes: dict[tuple[Credential, str], tuple[Caller, Role] | TandemError] = {}
        with self._engine.connect() as connection:
            for credential, notebook_id in checks:
                try:
                    outcomes[credential, notebook_id] = socket_access(
                        connection, credential, notebook_id
                    )
                except TandemError as error:
                    outcomes[credential, notebook_id] = error
        return outcomes
