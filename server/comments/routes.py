"""REST for comment threads; every change also goes out on the events channel.

The Doc is only touched on the event loop (anchors made and resolved there); database work
runs in the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import Session

from server.auth.models import User
from server.comments import service
from server.comments.models import (
    CommentThread,
    CommentWrite,
    MentionPublic,
    ThreadCreate,
    ThreadPublic,
)
from server.deps import AppServices, Commentable, CurrentUser, DbSession, Readable, in_db
from server.events.types import ThreadCreated, ThreadUpdated
from server.notebooks.models import Notebook
from server.services import Services
from server.vocabulary import Role

router = APIRouter(tags=["comments"])


async def _publish(
    services: Services,
    notebook: Notebook,
    thread_id: str,
    kind: type[ThreadCreated | ThreadUpdated] = ThreadUpdated,
) -> ThreadPublic:
    """The thread as it is now, announced to everyone with the notebook open."""
    thread = await in_db(services, lambda db: service.get_thread(db, notebook, thread_id))
    doc = await services.rooms.document(notebook.id)
    placed = service.resolve(doc, thread)
    public = await in_db(services, lambda db: service.public(db, thread, placed))
    services.bus.publish(kind(notebook_id=notebook.id, thread=public.model_dump(mode="json")))
    services.comments.track(notebook.id, thread.cell_id)
    return public


@router.get("/api/notebooks/{notebook_id}/threads")
async def list_threads(access: Readable, services: AppServices) -> list[ThreadPublic]:
    notebook, _ = access
    threads = await in_db(services, lambda db: service.threads_of(db, notebook.id))
    doc = await services.rooms.document(notebook.id)
    placed = {thread.id: service.resolve(doc, thread) for thread in threads}

    def render(db: Session) -> list[ThreadPublic]:
        return [service.public(db, thread, placed[thread.id]) for thread in threads]

    return await in_db(services, render)


@router.post("/api/notebooks/{notebook_id}/threads", status_code=201)
async def create_thread(
    body: ThreadCreate, access: Commentable, user: CurrentUser, services: AppServices
) -> ThreadPublic:
    """Start a thread on a cell, or on a range of its source (`start`/`end`, characters)."""
    notebook, _ = access
    doc = await services.rooms.document(notebook.id)
    anchor = service.make_anchor(doc, body.cell_id, body.start, body.end)

    def create(db: Session) -> str:
        thread = service.create_thread(db, notebook, user, body.cell_id, anchor, body.body)
        db.commit()
        return thread.id

    thread_id = await in_db(services, create)
    return await _publish(services, notebook, thread_id, ThreadCreated)


def _change(
    notebook: Notebook, thread_id: str, change: Callable[[Session, CommentThread], Any]
) -> Callable[[Session], None]:
    def work(db: Session) -> None:
        thread = service.get_thread(db, notebook, thread_id)
        change(db, thread)
        db.commit()

    return work


@router.post("/api/notebooks/{notebook_id}/threads/{thread_id}/comments", status_code=201)
async def reply(
    thread_id: str,
    body: CommentWrite,
    access: Commentable,
    user: CurrentUser,
    services: AppServices,
) -> ThreadPublic:
    notebook, _ = access
    await in_db(
        services,
        _change(
            notebook, thread_id, lambda db, t: service.add_comment(db, notebook, t, user, body.body)
        ),
    )
    return await _publish(services, notebook, thread_id)


@router.patch("/api/notebooks/{notebook_id}/threads/{thread_id}/comments/{comment_id}")
async def edit_comment(
    thread_id: str,
    comment_id: str,
    body: CommentWrite,
    access: Commentable,
    user: CurrentUser,
    services: AppServices,
) -> ThreadPublic:
    """Edit one's own comment."""
    notebook, _ = access

    def edit(db: Session, thread: CommentThread) -> None:
        comment = service.get_comment(db, thread, comment_id)
        service.edit_comment(db, notebook, thread, comment, user, body.body)

    await in_db(services, _change(notebook, thread_id, edit))
    return await _publish(services, notebook, thread_id)


@router.delete("/api/notebooks/{notebook_id}/threads/{thread_id}/comments/{comment_id}")
async def delete_comment(
    thread_id: str, comment_id: str, access: Commentable, user: CurrentUser, services: AppServices
) -> ThreadPublic:
    """Delete one's own comment (a marker stays in the thread)."""
    notebook, _ = access

    def delete(db: Session, thread: CommentThread) -> None:
        service.delete_comment(db, thread, service.get_comment(db, thread, comment_id), user)

    await in_db(services, _change(notebook, thread_id, delete))
    return await _publish(services, notebook, thread_id)


async def _resolve(
    thread_id: str, access: tuple[Notebook, Role], user: User, services: Services, done: bool
) -> ThreadPublic:
    notebook, _ = access
    change = _change(notebook, thread_id, lambda db, t: service.set_resolved(db, t, user, done))
    await in_db(services, change)
    return await _publish(services, notebook, thread_id)


@router.post("/api/notebooks/{notebook_id}/threads/{thread_id}/resolve")
async def resolve_thread(
    thread_id: str, access: Commentable, user: CurrentUser, services: AppServices
) -> ThreadPublic:
    return await _resolve(thread_id, access, user, services, True)


@router.post("/api/notebooks/{notebook_id}/threads/{thread_id}/reopen")
async def reopen_thread(
    thread_id: str, access: Commentable, user: CurrentUser, services: AppServices
) -> ThreadPublic:
    return await _resolve(thread_id, access, user, services, False)


@router.post("/api/notebooks/{notebook_id}/threads/{thread_id}/read", status_code=204)
async def mark_read(
    thread_id: str, access: Readable, user: CurrentUser, services: AppServices
) -> Response:
    """Mark the mentions of the caller in this thread as read."""
    notebook, _ = access
    await in_db(
        services, _change(notebook, thread_id, lambda db, t: service.mark_read(db, t, user))
    )
    return Response(status_code=204)


@router.get("/api/me/mentions")
def my_mentions(user: CurrentUser, db: DbSession) -> list[MentionPublic]:
    """Comments that mention the caller, unread first, newest first."""
    return service.mentions_for(db, user)
