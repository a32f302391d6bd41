"""Log in and out with a password (browser session cookie); who am I; change my password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.audit import service as audit
from server.auth import service
from server.auth.credentials import SESSION_COOKIE, origin_allowed
from server.auth.models import LoginRequest, PasswordChange, UserPublic
from server.auth.throttle import client_key
from server.config import LoginProvider, Settings
from server.deps import AppServices, CurrentUser, DbSession, facts_of
from server.errors import NotAuthenticated, PermissionDenied, TooManyRequests
from server.events.types import SessionsEnded
from server.notebooks import service as notebooks

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/login")
def login(
    body: LoginRequest, request: Request, db: DbSession, services: AppServices, response: Response
) -> UserPublic:
    settings = services.settings
    address = client_key(request.client.host if request.client else "")
    if services.login_throttle.blocked(address, body.username):
        raise TooManyRequests("too many failed logins; try again in a few minutes")
    try:
        user, raw = service.login(db, body.username, body.password, settings.session_days)
        db.commit()
    except NotAuthenticated:
        services.login_throttle.failed(address, body.username)
        raise
    services.login_throttle.succeeded(address, body.username)
    set_session_cookie(response, raw, settings)
    return UserPublic.model_validate(user, from_attributes=True)


def set_session_cookie(response: Response, raw: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


@router.post("/auth/logout", status_code=204)
def logout(request: Request, db: DbSession, services: AppServices, response: Response) -> None:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        if not origin_allowed(facts_of(request), services.settings.allowed_origins):
            raise PermissionDenied("cross-origin request refused")
        service.end_session(db, raw)
        db.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("/auth/providers")
def login_providers(services: AppServices) -> list[LoginProvider]:
    """The "Sign in with ..." choices for the login page (single sign-on, to come)."""
    return services.settings.login_providers


@router.post("/me/password", status_code=204)
def change_password(
    body: PasswordChange, request: Request, user: CurrentUser, db: DbSession, services: AppServices
) -> None:
    """Change one's own password, given the current one (throttled as logins are). Every
    other browser session of the person ends; this one stays; API tokens stay."""
    address = client_key(request.client.host if request.client else "")
    if services.login_throttle.blocked(address, user.username):
        raise TooManyRequests("too many wrong passwords; try again in a few minutes")
    if not service.password_matches(user, body.current_password):
        services.login_throttle.failed(address, user.username)
        # 403, not 401: the person is signed in; only the password they typed is wrong.
        raise PermissionDenied("the current password is wrong")
    services.login_throttle.succeeded(address, user.username)
    service.set_password(db, user, body.new_password)
    revoked = service.revoke_sessions(db, user, keep=request.cookies.get(SESSION_COOKIE))
    audit.record_account(
        db, user.username, "password.changed", user.username, sessions_revoked=revoked
    )
    db.commit()
    if revoked:
        # Sockets opened with an ended session would outlive it: the person's sockets
        # reconnect, and only those still holding a valid credential get back in.
        for listed in notebooks.list_for(db, user):
            ended = SessionsEnded(notebook_id=listed.id, username=user.username)
            services.bus.publish(ended)
