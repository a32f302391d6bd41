"""Create, list, revoke and open share links; the role a person holds through them.

A link's secret has 256 random bits from `secrets`; only its SHA-256 is stored, and a
presented secret is found by its hash and then compared in constant time. Opening a link
records a grant: the person holds the link's role on that notebook while the link lives
(revoking it or letting it expire ends that at once, open sockets included).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from server.auth.models import User
from server.auth.service import hash_secret
from server.errors import InvalidInput, NotFound
from server.notebooks.models import MemberRole, Notebook
from server.shares.models import LinkGrant, LinkPublic, ShareLink
from server.timeutil import utcnow
from server.vocabulary import Role

LINK_PREFIX = "tdl_"


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return moment


def is_live(link: ShareLink, now: datetime | None = None) -> bool:
    return live(link.revoked_at, link.expires_at, now)


def live(revoked_at: datetime | None, expires_at: datetime | None, now: datetime | None) -> bool:
    """A link's liveness from its two columns (the socket path reads them without the row)."""
    expires = _aware(expires_at)
    return revoked_at is None and (expires is None or expires > (now or utcnow()))


def public(link: ShareLink) -> LinkPublic:
    return LinkPublic(
        id=link.id,
        role=Role(link.role),
        label=link.label,
        allow_guests=link.allow_guests,
        created_at=link.created_at,
        expires_at=_aware(link.expires_at),
        active=is_live(link),
    )


def create(
    db: Session,
    notebook: Notebook,
    creator: User,
    role: MemberRole,
    label: str = "",
    expires_at: datetime | None = None,
    allow_guests: bool = False,
) -> tuple[ShareLink, str]:
    expires_at = _aware(expires_at)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at is in the past")
    if not label.isprintable():
        raise InvalidInput("a label is printable text")
    raw = LINK_PREFIX + secrets.token_urlsafe(32)
    link = ShareLink(
        id=uuid.uuid4().hex,
        notebook_id=notebook.id,
        role=role.value,
        label=label.strip(),
        token_hash=hash_secret(raw),
        allow_guests=allow_guests,
        created_by=creator.id,
        expires_at=expires_at,
    )
    db.add(link)
    return link, raw


def links_of(db: Session, notebook: Notebook) -> list[ShareLink]:
    return list(
        db.exec(
            select(ShareLink)
            .where(ShareLink.notebook_id == notebook.id)
            .order_by(col(ShareLink.created_at))
        )
    )


def get(db: Session, notebook: Notebook, link_id: str) -> ShareLink:
    link = db.get(ShareLink, link_id) if len(link_id) <= 32 else None
    if link is None or link.notebook_id != notebook.id:
        raise NotFound("no such link on this notebook")
    return link


def holders(db: Session, link: ShareLink) -> list[User]:
    """Everyone who opened this link."""
    return list(
        db.exec(
            select(User)
            .join(LinkGrant, col(LinkGrant.user_id) == col(User.id))
            .where(LinkGrant.link_id == link.id)
        )
    )


def find_live(db: Session, raw: str) -> ShareLink:
    digest = hash_secret(raw)
    link = db.exec(select(ShareLink).where(ShareLink.token_hash == digest)).first()
    if link is None or not hmac.compare_digest(link.token_hash, digest) or not is_live(link):
        raise NotFound("this link is not valid: it may have been revoked or have expired")
    return link


def grant(db: Session, link: ShareLink, user: User) -> None:
    assert user.id is not None
    if db.get(LinkGrant, (link.id, user.id)) is None:
        db.add(LinkGrant(link_id=link.id, user_id=user.id))


def link_role(db: Session, notebook_id: str, user_id: int | None) -> Role | None:
    """The best role `user_id` holds on the notebook through live links."""
    rows = db.exec(
        select(ShareLink)
        .join(LinkGrant, col(LinkGrant.link_id) == col(ShareLink.id))
        .where(LinkGrant.user_id == user_id, ShareLink.notebook_id == notebook_id)
    ).all()
    return best_role([Role(link.role) for link in rows if is_live(link)])


def best_role(roles: list[Role]) -> Role | None:
    return max(roles, key=lambda role: role.rank) if roles else None


def linked_notebooks(db: Session, user: User) -> dict[str, Role]:
    """Notebooks `user` reaches through live links, with the best role for each."""
    rows = db.exec(
        select(ShareLink)
        .join(LinkGrant, col(LinkGrant.link_id) == col(ShareLink.id))
        .where(LinkGrant.user_id == user.id)
    ).all()
    best: dict[str, Role] = {}
    for link in rows:
        if not is_live(link):
            continue
        role = Role(link.role)
        current = best.get(link.notebook_id)
        if current is None or role.rank > current.rank:
            best[link.notebook_id] = role
    return best


def expired_between(db: Session, since: datetime, now: datetime) -> list[ShareLink]:
    rows = db.exec(
        select(ShareLink).where(
            col(ShareLink.expires_at).is_not(None), col(ShareLink.revoked_at).is_(None)
        )
    ).all()
    return [
        link
        for link in rows
        if (expires := _aware(link.expires_at)) is not None and since < expires <= now
    ]
