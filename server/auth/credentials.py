"""Turn what a request carries (bearer token, ?token=, session cookie) into a user.

Cookies ride along on cross-site requests, so a cookie only counts when the request's
Origin is this server's own or an allowed one (for websockets always; for REST on every
method that changes something). Tokens are never sent by a browser on its own, so they
need no such check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from server.auth import service
from server.auth.models import User
from server.errors import NotAuthenticated, PermissionDenied

SESSION_COOKIE = "tandem_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN_SHAPE = re.compile(re.escape(service.TOKEN_PREFIX) + service.SECRET_SHAPE)
_SESSION_SHAPE = re.compile(service.SECRET_SHAPE)


@dataclass(frozen=True)
class RequestFacts:
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    query_token: str | None
    scheme: str
    method: str
    websocket: bool


def own_origin(scheme: str, host: str) -> str:
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{host}"


def origin_allowed(facts: RequestFacts, allowed: list[str]) -> bool:
    origin = facts.headers.get("origin")
    if origin is None:
        return False
    host = facts.headers.get("host", "")
    return origin == own_origin(facts.scheme, host) or origin in allowed


@dataclass(frozen=True)
class Credential:
    """What the request presents: an API token or a browser session's cookie (raw)."""

    raw: str
    is_session: bool


def plausible(credential: Credential) -> bool:
    """Whether the credential has the shape of those this server makes: one that has not
    cannot be valid, and is refused without looking it up."""
    shape = _SESSION_SHAPE if credential.is_session else _TOKEN_SHAPE
    return shape.fullmatch(credential.raw) is not None


def credential_of(facts: RequestFacts, allowed_origins: list[str]) -> Credential:
    """The one credential that counts, in order: Authorization, ?token=, the session cookie
    (from an allowed origin only); raises when there is none usable."""
    authorization = facts.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer TOKEN'")
        return Credential(token.strip(), is_session=False)
    if facts.query_token:
        return Credential(facts.query_token, is_session=False)
    cookie = facts.cookies.get(SESSION_COOKIE)
    if cookie:
        needs_origin = facts.websocket or facts.method not in SAFE_METHODS
        if needs_origin and not origin_allowed(facts, allowed_origins):
            raise PermissionDenied("cross-origin request refused")
        return Credential(cookie, is_session=True)
    raise NotAuthenticated("log in or send an API token")


def authenticate(db: Session, facts: RequestFacts, allowed_origins: list[str]) -> User:
    credential = credential_of(facts, allowed_origins)
    if credential.is_session:
        return service.user_for_session(db, credential.raw)
    return service.user_for_token(db, credential.raw)
