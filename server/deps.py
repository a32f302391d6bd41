"""FastAPI dependencies as Annotated aliases, so a route's signature says who may call it."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from server.auth.credentials import (
    Credential,
    RequestFacts,
    authenticate,
    credential_of,
    plausible,
)
from server.auth.models import User
from server.auth.throttle import client_key
from server.errors import NotAuthenticated, PermissionDenied, TandemError, TooManyRequests
from server.notebooks import service as notebooks
from server.notebooks.access import Caller
from server.notebooks.models import Notebook
from server.services import Services
from server.vocabulary import Role

log = logging.getLogger(__name__)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServices = Annotated[Services, Depends(get_services)]


def get_db(services: AppServices) -> Iterator[Session]:
    with Session(services.engine) as session:
        yield session


DbSession = Annotated[Session, Depends(get_db)]

T = TypeVar("T")


async def in_db(services: Services, work: Callable[[Session], T]) -> T:
    """Run `work` with a session in the thread pool, from an async route that must also
    touch a Doc on the event loop."""

    def run() -> T:
        with Session(services.engine) as db:
            return work(db)

    return await run_in_threadpool(run)


def facts_of(request: Request) -> RequestFacts:
    return RequestFacts(
        headers=request.headers,
        cookies=request.cookies,
        query_token=None,
        scheme=request.url.scheme,
        method=request.method,
        websocket=False,
    )


def get_current_user(request: Request, db: DbSession, services: AppServices) -> User:
    return authenticate(db, facts_of(request), services.settings.allowed_origins)


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise PermissionDenied("only an admin may do this")
    return user


AdminUser = Annotated[User, Depends(get_admin)]


class NotebookAccess:
    """Resolves {notebook_id} to the notebook and the caller's role, requiring `needed`."""

    def __init__(self, needed: Role) -> None:
        self.needed = needed

    def __call__(self, notebook_id: str, db: DbSession, user: CurrentUser) -> tuple[Notebook, Role]:
        notebook, role = notebooks.get_with_role(db, notebook_id, user)
        if not role.allows(self.needed):
            raise PermissionDenied(f"this needs the {self.needed.value} role")
        return notebook, role


Readable = Annotated[tuple[Notebook, Role], Depends(NotebookAccess(Role.VIEWER))]
Commentable = Annotated[tuple[Notebook, Role], Depends(NotebookAccess(Role.COMMENTER))]
Editable = Annotated[tuple[Notebook, Role], Depends(NotebookAccess(Role.EDITOR))]
Owned = Annotated[tuple[Notebook, Role], Depends(NotebookAccess(Role.OWNER))]


async def websocket_access(
    websocket: WebSocket, notebook_id: str, services: Services
) -> tuple[Caller, Role] | None:
    """Authenticate a websocket before accepting it and find the caller's role.

    On failure the handshake is refused with an HTTP status and a JSON reason (no socket is
    opened, so nothing leaks to a page from a foreign origin) and None is returned. An
    address whose sign-ins failed too often is refused 429 before anything is looked up
    (see `SocketThrottle`).
    """
    facts = RequestFacts(
        headers=websocket.headers,
        cookies=websocket.cookies,
        query_token=websocket.query_params.get("token"),
        scheme=websocket.url.scheme,
        method="GET",
        websocket=True,
    )
    throttle = services.socket_throttle
    # The peer, or the client a trusted proxy names (uvicorn resolved X-Forwarded-For).
    address = client_key(websocket.client.host if websocket.client else "")
    try:
        credential = credential_of(facts, services.settings.allowed_origins)
        if throttle.refuses(address, credential):
            await _deny(websocket, TooManyRequests(_THROTTLED), retry_after=throttle.window_seconds)
            return None
        user, role = await _check(services, credential, notebook_id, address)
    except TandemError as error:
        # The path only: a client that cannot set headers sends its token in the query.
        log.info("refused a socket to %s: %s", websocket.scope["path"], error.message)
        await _deny(websocket, error)
        return None
    log.debug("%s opened %s as %s", user.username, websocket.scope["path"], role.value)
    return user, role


_THROTTLED = "too many failed sign-ins from your address; try again later"


async def _check(
    services: Services, credential: Credential, notebook_id: str, address: str
) -> tuple[Caller, Role]:
    """The socket's caller and role; a credential that fails counts against its address."""
    throttle = services.socket_throttle
    try:
        if not plausible(credential):  # never made here: no need to look it up
            raise NotAuthenticated(
                "session expired; log in again" if credential.is_session else "invalid token"
            )
        with throttle.checking(address):
            access = await services.socket_checks.check(credential, notebook_id)
    except NotAuthenticated:
        await throttle.failed(address)
        raise
    throttle.succeeded(address, credential)
    return access


async def _deny(websocket: WebSocket, error: TandemError, retry_after: float = 0) -> None:
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after else None
    await websocket.send_denial_response(
        JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)
    )
