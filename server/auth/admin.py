"""Accounts without the CLI: admins list and create users, reset passwords, disable and
enable accounts, and make invite links; anyone may spend an invite to make their account.

Every change an admin makes writes an account audit row in the same transaction. Cookie
requests are held to the Origin rule by `CurrentUser` (server/auth/credentials.py), as
everywhere else.
"""

from __future__ import annotations

import secrets

from anyio import from_thread
from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from server.audit import service as audit
from server.audit.models import AccountEventPublic
from server.auth import invites
from server.auth import service as users
from server.auth.credentials import SESSION_COOKIE, origin_allowed
from server.auth.models import (
    InviteAccept,
    InviteAccepted,
    InviteCreate,
    InviteCreated,
    InviteInfo,
    InvitePublic,
    InviteToken,
    PasswordReset,
    PasswordResetDone,
    User,
    UserCreate,
    UserCreated,
    UserPublic,
    UserUpdate,
)
from server.auth.routes import set_session_cookie
from server.deps import AdminUser, AppServices, DbSession, facts_of
from server.errors import Conflict, PermissionDenied
from server.events.bus import EventBus
from server.events.types import MemberChange, MembersChanged
from server.gateway import tokens as worker_tokens
from server.notebooks import service as notebooks
from server.notebooks.announce import access_changed
from server.notebooks.models import Notebook

router = APIRouter(tags=["accounts"])


def _public(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


def _close_sockets(db: Session, bus: EventBus, user: User) -> None:
    """The person's open notebook and event sockets close (4403): they were opened with
    credentials that no longer count. Reconnecting asks for a new sign-in."""
    for listed in notebooks.list_for(db, user):
        notebook = db.get(Notebook, listed.id)
        if notebook is None:
            continue
        members = [m.model_dump(mode="json") for m in notebooks.members(db, notebook)]
        changed = MemberChange(username=user.username, role=None)
        bus.publish(MembersChanged(notebook_id=notebook.id, members=members, changed=changed))


@router.get("/api/admin/users")
def list_users(admin: AdminUser, db: DbSession) -> list[UserPublic]:
    return [_public(user) for user in users.list_users(db)]


@router.post("/api/admin/users", status_code=201)
def create_user(body: UserCreate, admin: AdminUser, db: DbSession) -> UserCreated:
    """A new account; without a password one is made and shown once."""
    generated = None if body.password else secrets.token_urlsafe(12)
    user = users.add_user(db, body.username, body.password or generated, is_admin=body.is_admin)
    audit.record_account(
        db,
        admin.username,
        "user.created",
        user.username,
        admin=user.is_admin,
        password="generated" if generated else "chosen",
    )
    db.commit()
    db.refresh(user)
    return UserCreated(user=_public(user), password=generated)


@router.post("/api/admin/users/{username:path}/password")
def reset_password(
    username: str, body: PasswordReset, admin: AdminUser, db: DbSession, services: AppServices
) -> PasswordResetDone:
    """A new password for someone; every browser session of theirs ends (their open pages
    disconnect and ask them to sign in). Their API tokens stay valid."""
    user = users.get_user(db, username)
    if user.is_guest:
        raise Conflict("a guest has no password: they joined through a share link")
    generated = None if body.password else secrets.token_urlsafe(12)
    users.set_password(db, user, body.password or generated or "")
    revoked = users.revoke_sessions(db, user)
    audit.record_account(
        db,
        admin.username,
        "password.reset",
        user.username,
        sessions_revoked=revoked,
        password="generated" if generated else "chosen",
    )
    db.commit()
    _close_sockets(db, services.bus, user)
    return PasswordResetDone(username=user.username, password=generated, sessions_revoked=revoked)


@router.patch("/api/admin/users/{username:path}")
def update_user(
    username: str, body: UserUpdate, admin: AdminUser, db: DbSession, services: AppServices
) -> UserPublic:
    """Disable an account (no sign-in, session or token works, worker tokens it made
    included; its sessions end, its workers disconnect) or enable it again."""
    user = users.get_user(db, username)
    if body.disabled is not None and body.disabled != user.disabled:
        if user.id == admin.id:
            raise Conflict("you cannot disable your own account")
        user.disabled = body.disabled
        db.add(user)
        revoked = users.revoke_sessions(db, user) if body.disabled else 0
        action = "user.disabled" if body.disabled else "user.enabled"
        audit.record_account(db, admin.username, action, user.username, sessions_revoked=revoked)
        db.commit()
        if body.disabled:
            _close_sockets(db, services.bus, user)
            for token_id in worker_tokens.made_by(db, user):
                # Their workers go (on the event loop, as the gateway runs); tokens stay.
                from_thread.run_sync(services.gateway.revoke, token_id)
    db.refresh(user)
    return _public(user)


@router.get("/api/admin/invites")
def list_invites(admin: AdminUser, db: DbSession) -> list[InvitePublic]:
    return [invites.public(invite) for invite in invites.all_invites(db)]


@router.post("/api/admin/invites", status_code=201)
def create_invite(body: InviteCreate, admin: AdminUser, db: DbSession) -> InviteCreated:
    """A one-time invite link; its token is in the answer once and stored only hashed."""
    invite, raw = invites.create(db, admin, body)
    audit.record_account(
        db,
        admin.username,
        "invite.created",
        "",
        invite=invite.id,
        notebook=invite.notebook_id,
        role=invite.role,
        expires_at=invite.expires_at,
    )
    db.commit()
    db.refresh(invite)
    return InviteCreated(**invites.public(invite).model_dump(), token=raw)


@router.delete("/api/admin/invites/{invite_id}", status_code=204)
def revoke_invite(invite_id: str, admin: AdminUser, db: DbSession) -> Response:
    invite = invites.get(db, invite_id)
    if invites.is_live(invite):
        invites.revoke(db, invite)
        audit.record_account(db, admin.username, "invite.revoked", "", invite=invite.id)
        db.commit()
    return Response(status_code=204)


@router.get("/api/admin/audit")
def account_audit(admin: AdminUser, db: DbSession) -> list[AccountEventPublic]:
    """Account changes, newest first."""
    return audit.account_events(db)


@router.post("/api/invites/inspect")
def inspect_invite(body: InviteToken, db: DbSession) -> InviteInfo:
    """What an invite offers, for its page; refused clearly when used or expired."""
    return invites.info(db, invites.find_usable(db, body.token))


@router.post("/api/invites/accept", status_code=201)
def accept_invite(
    body: InviteAccept, request: Request, db: DbSession, services: AppServices, response: Response
) -> InviteAccepted:
    """Spend an invite: the new account is signed in at once (a session cookie). Another
    site cannot do it for a visitor (it would sign them in to an account it controls)."""
    facts = facts_of(request)
    if "origin" in facts.headers and not origin_allowed(facts, services.settings.allowed_origins):
        raise PermissionDenied("cross-origin request refused")
    invite, user, notebook = invites.accept(db, body.token, body.username, body.password)
    audit.record_account(
        db,
        user.username,
        "invite.accepted",
        user.username,
        invite=invite.id,
        invited_by=invite.created_by,
        notebook=notebook.id if notebook else None,
    )
    if notebook is not None:
        audit.record(db, notebook.id, user.username, "invite.joined", role=invite.role)
    # Someone signed in here before: their session ends, not only its cookie (replaced).
    if previous := request.cookies.get(SESSION_COOKIE):
        users.end_session(db, previous)
    cookie = users.open_session(db, user, services.settings.session_days)
    db.commit()
    db.refresh(user)
    set_session_cookie(response, cookie, services.settings)
    if notebook is not None:
        access_changed(db, services.bus, notebook, [user])
    return InviteAccepted(user=_public(user), notebook_id=notebook.id if notebook else None)
