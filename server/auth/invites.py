"""Invite links: a one-time, expiring link with which a new person makes their own account
(username and password) and, when the invite says so, joins a notebook with a role.

Only the token's SHA-256 is stored, as for API tokens and share links. A token is spent by
one conditional UPDATE, so two people racing with one link cannot both get an account.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from server.auth import service as users
from server.auth.models import Invite, InviteCreate, InviteInfo, InvitePublic, User
from server.errors import Conflict, InvalidInput, NotFound
from server.notebooks import service as notebooks
from server.notebooks.models import MemberRole, Notebook
from server.timeutil import utcnow
from server.vocabulary import Role

INVITE_PREFIX = "tdi_"
# A name a stranger picks for themselves: what an @mention can name (server/comments), so
# no look-alike letters from other scripts and nothing that reads as "NAME (guest ...)".
_CHOSEN_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,62}[A-Za-z0-9_])?")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite: naive


def is_live(invite: Invite, now: datetime | None = None) -> bool:
    return invite.used_at is None and _aware(invite.expires_at) > (now or utcnow())


def public(invite: Invite) -> InvitePublic:
    return InvitePublic(
        id=invite.id,
        label=invite.label,
        created_by=invite.created_by,
        notebook_id=invite.notebook_id,
        role=invite.role,
        created_at=_aware(invite.created_at),
        expires_at=_aware(invite.expires_at),
        used_at=_aware(invite.used_at) if invite.used_at else None,
        used_by=invite.used_by,
        active=is_live(invite),
    )


def create(db: Session, admin: User, body: InviteCreate) -> tuple[Invite, str]:
    """An invite in the caller's transaction, and its raw token (shown once). A notebook
    to join must be the admin's own: sharing stays the owner's decision."""
    role: str | None = None
    if body.notebook_id:
        notebook = db.get(Notebook, body.notebook_id)
        if notebook is None or notebooks.role_of(db, notebook, admin) != Role.OWNER:
            raise NotFound("no notebook of yours with that id")
        try:
            role = MemberRole(body.role or "").value
        except ValueError:
            raise InvalidInput("the role is viewer, commenter or editor") from None
    elif body.role:
        raise InvalidInput("a role needs a notebook")
    raw = INVITE_PREFIX + secrets.token_urlsafe(32)
    invite = Invite(
        id=uuid.uuid4().hex,
        token_hash=users.hash_secret(raw),
        label=body.label.strip(),
        created_by=admin.username,
        notebook_id=body.notebook_id or None,
        role=role,
        expires_at=utcnow() + timedelta(days=body.days),
    )
    db.add(invite)
    return invite, raw


def all_invites(db: Session) -> list[Invite]:
    return list(db.exec(select(Invite).order_by(col(Invite.created_at).desc())))


def get(db: Session, invite_id: str) -> Invite:
    invite = db.get(Invite, invite_id) if len(invite_id) <= 32 else None
    if invite is None:
        raise NotFound("no such invite")
    return invite


def revoke(db: Session, invite: Invite) -> None:
    """End it now (it stays listed as ended), in the caller's transaction."""
    if is_live(invite):
        invite.expires_at = utcnow()
        db.add(invite)


def find_usable(db: Session, raw: str) -> Invite:
    """The invite this token stands for, if it can still be used; else why not."""
    digest = users.hash_secret(raw)
    invite = db.exec(select(Invite).where(Invite.token_hash == digest)).first()
    if invite is None or not hmac.compare_digest(invite.token_hash, digest):
        raise NotFound("this invite link is not valid")
    if invite.used_at is not None:
        raise Conflict("this invite link was already used; ask for a new one")
    if not is_live(invite):
        raise Conflict("this invite link has expired; ask for a new one")
    # An admin who was disabled since (or is gone) no longer lets anyone in.
    creator = db.exec(select(User).where(User.username == invite.created_by)).first()
    if creator is None or creator.disabled or not creator.is_admin:
        raise Conflict("this invite link is no longer valid; ask for a new one")
    return invite


def info(db: Session, invite: Invite) -> InviteInfo:
    notebook = db.get(Notebook, invite.notebook_id) if invite.notebook_id else None
    return InviteInfo(
        notebook_title=notebook.title if notebook else None,
        role=invite.role if notebook else None,
        expires_at=_aware(invite.expires_at),
    )


def accept(
    db: Session, raw: str, username: str, password: str
) -> tuple[Invite, User, Notebook | None]:
    """Spend the invite: a new account, and its membership when the invite has a notebook
    (still there). In the caller's transaction; a second use of the token fails."""
    invite = find_usable(db, raw)
    if not _CHOSEN_NAME.fullmatch(username.strip()):
        raise InvalidInput(
            "a username is 1 to 64 of A-Z, a-z, 0-9, '_', '.' and '-', "
            "starting and ending with a letter, a digit or '_'"
        )
    user = users.add_user(db, username, users.check_password(password))
    spent = db.exec(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=utcnow(), used_by=user.username)
    )
    if spent.rowcount != 1:
        raise Conflict("this invite link was already used; ask for a new one")
    notebook = db.get(Notebook, invite.notebook_id) if invite.notebook_id else None
    if notebook is not None and invite.role:
        notebooks.set_member(db, notebook, user, MemberRole(invite.role))
    return invite, user, notebook
