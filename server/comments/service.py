"""Threads and comments: create, reply, edit, delete, resolve, mention; anchors resolved
against the document as it is now.

An anchor is a pair of sticky indexes (Yjs relative positions) into the cell's source Text,
so concurrent typing before or inside the range moves it with the text instead of leaving
it on stale offsets. Offsets in the API are characters (code points); pycrdt indexes Text
by UTF-8 bytes, converted here.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from pycrdt import Assoc, Doc, StickyIndex, Text
from sqlmodel import Session, col, select

from server.auth.models import User
from server.comments.models import (
    Anchor,
    Comment,
    CommentPublic,
    CommentThread,
    Mention,
    MentionPublic,
    ThreadPublic,
)
from server.errors import InvalidInput, NotFound, PermissionDenied, UnknownMention
from server.notebooks import service as notebooks
from server.notebooks.document import cells_of, find_cell
from server.notebooks.models import Notebook
from server.timeutil import utcnow

# A name ends on a letter, digit or "_", so "thanks @ben." mentions ben.
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,62}[A-Za-z0-9_])?)")
# Code is not a mention: `@property`, a decorator in a fenced block.
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise InvalidInput("a comment cannot be empty")
    if _CONTROL.search(body):
        raise InvalidInput("a comment is text: no control characters")
    return body


def source_of(doc: Doc[Any], cell_id: str) -> Text | None:
    cell = find_cell(cells_of(doc), cell_id)
    source = cell.get("source") if cell is not None else None
    return source if isinstance(source, Text) else None


def _byte_offset(text: str, chars: int) -> int:
    return len(text[:chars].encode())


def _char_offset(raw: bytes, index: int) -> int:
    return len(raw[:index].decode("utf-8", errors="ignore"))


def make_anchor(
    doc: Doc[Any], cell_id: str, start: int | None, end: int | None
) -> tuple[bytes | None, bytes | None, str, str]:
    """Sticky indexes for a range of a cell's source, the range's text and the cell's."""
    source = source_of(doc, cell_id)
    if source is None:
        raise NotFound(f"no cell {cell_id!r} with text in this notebook")
    text = str(source)
    if start is None and end is None:
        return None, None, "", text
    if start is None or end is None or not 0 <= start <= end <= len(text):
        raise InvalidInput(f"a range is 0 <= start <= end <= {len(text)} (characters)")
    # The start sticks to the character after it, the end to the one before: typing at
    # either edge stays outside the range, typing inside grows it.
    first = source.sticky_index(_byte_offset(text, start), Assoc.AFTER)
    last = source.sticky_index(_byte_offset(text, end), Assoc.BEFORE)
    return first.encode(), last.encode(), text[start:end], text


def resolve(doc: Doc[Any], thread: CommentThread) -> tuple[bool, Anchor | None]:
    """Whether the thread's cell is gone, and where its range is now."""
    source = source_of(doc, thread.cell_id)
    if source is None:
        return True, None
    if thread.anchor_start is None or thread.anchor_end is None:
        return False, None
    try:
        start = StickyIndex.decode(thread.anchor_start, source).get_index()
        end = StickyIndex.decode(thread.anchor_end, source).get_index()
    except Exception:
        return False, None
    raw = str(source).encode()
    if start is None or end is None or start > len(raw) or end > len(raw):
        return False, None
    first, last = _char_offset(raw, start), _char_offset(raw, max(start, end))
    text = raw.decode("utf-8", errors="ignore")
    return False, Anchor(start=first, end=last, text=text[first:last])


def get_thread(db: Session, notebook: Notebook, thread_id: str) -> CommentThread:
    thread = db.get(CommentThread, thread_id) if len(thread_id) <= 32 else None
    if thread is None or thread.notebook_id != notebook.id:
        raise NotFound("no such thread")
    return thread


def get_comment(db: Session, thread: CommentThread, comment_id: str) -> Comment:
    comment = db.get(Comment, comment_id) if len(comment_id) <= 32 else None
    if comment is None or comment.thread_id != thread.id:
        raise NotFound("no such comment")
    return comment


def create_thread(
    db: Session,
    notebook: Notebook,
    author: User,
    cell_id: str,
    anchor: tuple[bytes | None, bytes | None, str, str],
    body: str,
) -> CommentThread:
    """`anchor` is what `make_anchor` made of the range (on the event loop, with the Doc)."""
    first, last, quote, cell_text = anchor
    thread = CommentThread(
        id=uuid.uuid4().hex,
        notebook_id=notebook.id,
        cell_id=cell_id,
        anchor_start=first,
        anchor_end=last,
        quote=quote[:2000],
        cell_text=cell_text[:200_000],
        created_by=author.username,
    )
    db.add(thread)
    db.flush()
    add_comment(db, notebook, thread, author, body)
    return thread


def add_comment(
    db: Session, notebook: Notebook, thread: CommentThread, author: User, body: str
) -> Comment:
    comment = Comment(
        id=uuid.uuid4().hex,
        thread_id=thread.id,
        author_id=author.id,
        author=author.username,
        body=clean_body(body),
    )
    db.add(comment)
    db.flush()
    _record_mentions(db, notebook, thread, comment, author)
    thread.updated_at = utcnow()
    db.add(thread)
    return comment


def mentioned_names(body: str) -> set[str]:
    """The @names in a comment, outside code."""
    return set(_MENTION.findall(_CODE.sub(" ", body)))


def _record_mentions(
    db: Session, notebook: Notebook, thread: CommentThread, comment: Comment, author: User
) -> None:
    """Tell each person mentioned. A name that is no one who can read the notebook is
    refused (422), with the same words whether the account exists or not, so a comment
    cannot probe for usernames."""
    names = mentioned_names(comment.body) - {author.username}
    if not names:
        return
    people = db.exec(select(User).where(col(User.username).in_(names))).all()
    readers = [
        person
        for person in people
        if person.id is not None and notebooks.role_of(db, notebook, person) is not None
    ]
    unknown = sorted(names - {person.username for person in readers})
    if unknown:
        listed = ", ".join(f"@{name}" for name in unknown)
        raise UnknownMention(f"no one who can read this notebook is called {listed}")
    for person in readers:
        assert person.id is not None
        if db.get(Mention, (comment.id, person.id)) is None:
            db.add(Mention(comment_id=comment.id, user_id=person.id, thread_id=thread.id))


def edit_comment(
    db: Session, notebook: Notebook, thread: CommentThread, comment: Comment, user: User, body: str
) -> None:
    if comment.author_id != user.id or comment.deleted:
        raise PermissionDenied("only its author can edit a comment")
    comment.body = clean_body(body)
    comment.edited_at = utcnow()
    db.add(comment)
    _record_mentions(db, notebook, thread, comment, user)
    thread.updated_at = utcnow()
    db.add(thread)


def delete_comment(db: Session, thread: CommentThread, comment: Comment, user: User) -> None:
    """Its text goes; a marker stays so the replies after it still read in order."""
    if comment.author_id != user.id:
        raise PermissionDenied("only its author can delete a comment")
    comment.body = ""
    comment.deleted = True
    comment.edited_at = utcnow()
    db.add(comment)
    for mention in db.exec(select(Mention).where(Mention.comment_id == comment.id)):
        db.delete(mention)
    thread.updated_at = utcnow()
    db.add(thread)


def set_resolved(db: Session, thread: CommentThread, user: User, resolved: bool) -> None:
    thread.resolved = resolved
    thread.resolved_by = user.username if resolved else None
    thread.updated_at = utcnow()
    db.add(thread)


def public(db: Session, thread: CommentThread, placed: tuple[bool, Anchor | None]) -> ThreadPublic:
    """The thread with its comments; `placed` is what `resolve` found in the Doc."""
    orphaned, anchor = placed
    comments = db.exec(
        select(Comment).where(Comment.thread_id == thread.id).order_by(col(Comment.created_at))
    ).all()
    mentioned: dict[str, list[str]] = {}
    rows = db.exec(
        select(Mention.comment_id, User.username)
        .join(User, col(User.id) == col(Mention.user_id))
        .where(Mention.thread_id == thread.id)
    ).all()
    for comment_id, username in rows:
        mentioned.setdefault(comment_id, []).append(username)
    return ThreadPublic(
        id=thread.id,
        cell_id=thread.cell_id,
        anchor=anchor,
        quote=thread.quote,
        orphaned=orphaned,
        cell_text=thread.cell_text,
        resolved=thread.resolved,
        resolved_by=thread.resolved_by,
        created_by=thread.created_by,
        created_at=thread.created_at,
        updated_at=thread.updated_at,
        comments=[
            CommentPublic(
                id=c.id,
                author=c.author,
                body=c.body,
                deleted=c.deleted,
                created_at=c.created_at,
                edited_at=c.edited_at,
                mentions=sorted(mentioned.get(c.id, [])),
            )
            for c in comments
        ],
    )


def threads_of(db: Session, notebook_id: str) -> list[CommentThread]:
    return list(
        db.exec(
            select(CommentThread)
            .where(CommentThread.notebook_id == notebook_id)
            .order_by(col(CommentThread.created_at))
        )
    )


def mentions_for(db: Session, user: User) -> list[MentionPublic]:
    rows = db.exec(
        select(Mention, Comment, CommentThread)
        .join(Comment, col(Comment.id) == col(Mention.comment_id))
        .join(CommentThread, col(CommentThread.id) == col(Mention.thread_id))
        .where(Mention.user_id == user.id)
    ).all()
    result = []
    for mention, comment, thread in rows:
        notebook = db.get(Notebook, thread.notebook_id)
        if notebook is None or notebooks.role_of(db, notebook, user) is None:
            continue  # access gone since: the mention goes quiet
        result.append(
            MentionPublic(
                notebook_id=thread.notebook_id,
                thread_id=thread.id,
                comment_id=comment.id,
                author=comment.author,
                excerpt=comment.body[:200],
                unread=mention.read_at is None,
                created_at=comment.created_at,
            )
        )
    result.sort(key=lambda m: (not m.unread, -m.created_at.timestamp()))
    return result


def mark_read(db: Session, thread: CommentThread, user: User) -> None:
    now = utcnow()
    for mention in db.exec(
        select(Mention).where(Mention.thread_id == thread.id, Mention.user_id == user.id)
    ):
        if mention.read_at is None:
            mention.read_at = now
            db.add(mention)
