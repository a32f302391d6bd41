"""Write and read the audit log. Writers add to the caller's transaction; it commits."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from server.audit.models import AccountEvent, AccountEventPublic, AuditEvent, AuditEventPublic


def record(db: Session, notebook_id: str, actor: str, action: str, **detail: Any) -> None:
    encoded = json.dumps(detail, default=str)[:2000]
    db.add(AuditEvent(notebook_id=notebook_id, actor=actor, action=action, detail=encoded))


def events(db: Session, notebook_id: str, limit: int = 500) -> list[AuditEventPublic]:
    rows = db.exec(
        select(AuditEvent)
        .where(AuditEvent.notebook_id == notebook_id)
        .order_by(col(AuditEvent.id).desc())
        .limit(limit)
    ).all()
    return [
        AuditEventPublic(
            actor=row.actor,
            action=row.action,
            detail=json.loads(row.detail),
            created_at=row.created_at,
        )
        for row in rows
    ]


def record_account(db: Session, actor: str, action: str, target: str, **detail: Any) -> None:
    encoded = json.dumps(detail, default=str)[:2000]
    db.add(AccountEvent(actor=actor, action=action, target=target, detail=encoded))


def account_events(db: Session, limit: int = 500) -> list[AccountEventPublic]:
    rows = db.exec(select(AccountEvent).order_by(col(AccountEvent.id).desc()).limit(limit)).all()
    return [
        AccountEventPublic(
            actor=row.actor,
            action=row.action,
            target=row.target,
            detail=json.loads(row.detail),
            created_at=row.created_at,
        )
        for row in rows
    ]
