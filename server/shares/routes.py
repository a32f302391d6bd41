"""REST for share links (owner), opening a link (anyone holding it), and the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.audit import service as audit
from server.audit.models import AuditEventPublic
from server.auth import service as users
from server.auth.credentials import authenticate
from server.auth.models import User
from server.auth.routes import set_session_cookie
from server.deps import AppServices, CurrentUser, DbSession, Owned, facts_of
from server.errors import InvalidInput, NotAuthenticated, PermissionDenied
from server.notebooks import service as notebooks
from server.notebooks.announce import access_changed
from server.notebooks.models import Notebook
from server.shares import service
from server.shares.models import LinkCreate, LinkCreated, LinkPublic, LinkRedeem, LinkRedeemed
from server.timeutil import utcnow

router = APIRouter(tags=["sharing"])


@router.post("/api/notebooks/{notebook_id}/links", status_code=201)
def create_link(body: LinkCreate, access: Owned, user: CurrentUser, db: DbSession) -> LinkCreated:
    """Make a share link; its secret is in the answer, once, and never again."""
    notebook, _ = access
    link, raw = service.create(
        db, notebook, user, body.role, body.label, body.expires_at, body.allow_guests
    )
    audit.record(
        db,
        notebook.id,
        user.username,
        "link.created",
        link=link.id,
        role=link.role,
        label=link.label,
        guests=link.allow_guests,
        expires_at=link.expires_at,
    )
    db.commit()
    db.refresh(link)
    return LinkCreated(**service.public(link).model_dump(), token=raw)


@router.get("/api/notebooks/{notebook_id}/links")
def list_links(access: Owned, db: DbSession) -> list[LinkPublic]:
    """The notebook's links with who opened each (the owner's People list shows a member
    whose link gives more than their own role, and why)."""
    return [
        service.public(link).model_copy(
            update={"holders": [user.username for user in service.holders(db, link)]}
        )
        for link in service.links_of(db, access[0])
    ]


@router.delete("/api/notebooks/{notebook_id}/links/{link_id}", status_code=204)
def revoke_link(
    link_id: str, access: Owned, user: CurrentUser, db: DbSession, services: AppServices
) -> Response:
    """Revoke a link: whoever holds access only through it loses it now, sockets included."""
    notebook, _ = access
    link = service.get(db, notebook, link_id)
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        db.add(link)
        audit.record(db, notebook.id, user.username, "link.revoked", link=link.id)
        db.commit()
        access_changed(db, services.bus, notebook, service.holders(db, link))
    return Response(status_code=204)


@router.post("/api/links/redeem")
def redeem_link(
    body: LinkRedeem, request: Request, response: Response, db: DbSession, services: AppServices
) -> LinkRedeemed:
    """Open a link: a signed-in person gets its role (never less than they had); without an
    account, a named guest joins when the owner allowed it."""
    link = service.find_live(db, body.token)
    notebook = db.get(Notebook, link.notebook_id)
    assert notebook is not None
    person: User | None
    try:
        person = authenticate(db, facts_of(request), services.settings.allowed_origins)
    except NotAuthenticated:
        person = None
    raw_token: str | None = None
    if person is None:
        if not link.allow_guests:
            raise NotAuthenticated("sign in to open this link")
        if body.guest_name is None:
            raise InvalidInput("a guest needs a name (guest_name)")
        person, raw_token = users.create_guest(db, body.guest_name)
        cookie = users.open_session(db, person, services.settings.session_days)
        set_session_cookie(response, cookie, services.settings)
        action = "guest.joined"
    elif person.is_guest and notebooks.role_of(db, notebook, person) is None:
        raise PermissionDenied("a guest can only open links to the notebook they joined")
    else:
        action = "link.opened"
    service.grant(db, link, person)
    audit.record(db, notebook.id, person.username, action, link=link.id, role=link.role)
    db.commit()
    role = notebooks.role_of(db, notebook, person)
    assert role is not None
    access_changed(db, services.bus, notebook, [person])
    return LinkRedeemed(
        notebook_id=notebook.id,
        role=role,
        username=person.username,
        guest=person.is_guest,
        token=raw_token,
    )


@router.get("/api/notebooks/{notebook_id}/audit")
def audit_log(access: Owned, db: DbSession) -> list[AuditEventPublic]:
    """Sharing and permission changes, newest first."""
    return audit.events(db, access[0].id)
