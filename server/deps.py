"""FastAPI dependencies as Annotated aliases, so a route's signature says who may call it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from server.auth.credentials import RequestFacts, authenticate, credential_of
from server.auth.models import User
from server.errors import PermissionDenied, TandemError
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
    opened, so nothing leaks to a page from a foreign origin) and None is returned.
    """
    facts = RequestFacts(
        headers=websocket.headers,
        cookies=websocket.cookies,
        query_token=websocket.query_params.get("token"),
        scheme=websocket.url.scheme,
        method="GET",
        websocket=True,
    )

    try:
        credential = credential_of(facts, services.settings.allowed_origins)
        user, role = await services.socket_checks.check(credential, notebook_id)
    except TandemError as error:
        # The path only: a client that cannot set headers sends its token in the query.
        log.info("refused a socket to %s: %s", websocket.scope["path"], error.message)
        await websocket.send_denial_response(
            JSONResponse({"detail": error.message}, status_code=error.status_code)
        )
        return None
    log.debug("%s opened %s as %s", user.username, websocket.scope["path"], role.value)
    return user, role
