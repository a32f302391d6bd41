"""Notebook records: create (blank or from .ipynb), list, rename, delete, members, export.

Content goes in through jupyter_ydoc's YNotebook (the schema JupyterLab shares) and out
through `repair` (which reads whatever is stored); nbformat checks it both ways.
"""

from __future__ import annotations

import json
import logging
import uuid
import warnings
from typing import Any

import nbformat
from jupyter_ydoc import YNotebook
from nbformat.v4 import upgrade
from pycrdt import Doc, Map
from sqlmodel import Session, col, delete, select

from server.audit.models import AuditEvent
from server.auth.models import User
from server.collab.models import Snapshot, UpdateRecord
from server.comments.models import CommentThread
from server.errors import Conflict, InvalidInput, InvalidNotebook, NotFound
from server.files.models import NotebookFile, VersionFile
from server.history.models import Version
from server.notebooks import repair
from server.notebooks.models import (
    MemberPublic,
    MemberRole,
    Membership,
    Notebook,
    NotebookPublic,
)
from server.shares import service as shares
from server.shares.models import ShareLink
from server.timeutil import utcnow
from server.vocabulary import Role

log = logging.getLogger(__name__)


def blank_notebook() -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(""))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return dict(nb)


# What a v4.5 cell may hold, by type; a newer 4.x minor's extra keys are dropped on import.
_CELL_KEYS = {
    "code": {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
    "markdown": {"id", "cell_type", "metadata", "source", "attachments"},
    "raw": {"id", "cell_type", "metadata", "source", "attachments"},
}
_NOTEBOOK_KEYS = {"nbformat", "nbformat_minor", "metadata", "cells"}


def strict_json(text: str) -> Any:
    """json.loads that refuses what the notebook could not store or export: NaN and
    Infinity (not JSON), lone surrogates (not Unicode) and absurd nesting."""

    def constant(name: str) -> Any:
        raise InvalidNotebook(f"not JSON: {name} is not a JSON number")

    try:
        data = json.loads(text, parse_constant=constant)
    except RecursionError:
        raise InvalidNotebook("not a valid notebook: JSON nested too deeply") from None
    except json.JSONDecodeError as error:
        raise InvalidNotebook(f"not JSON: {error.msg} (line {error.lineno})") from None
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise InvalidNotebook("not valid Unicode: the file holds a lone surrogate") from None
    except RecursionError:
        raise InvalidNotebook("not a valid notebook: JSON nested too deeply") from None
    return data


def _as_current_minor(data: Any) -> Any:
    """A notebook of a newer 4.x minor, read as 4.5 (nbformat's rule: readers accept newer
    minors): unknown keys are dropped and a cell of an unknown type becomes a raw cell
    that keeps its source and its original type in its metadata."""
    if not isinstance(data, dict) or data.get("nbformat") != 4:
        return data
    minor = data.get("nbformat_minor")
    if not isinstance(minor, int) or minor <= nbformat.v4.nbformat_minor:
        return data
    data = {k: v for k, v in data.items() if k in _NOTEBOOK_KEYS}
    data["nbformat_minor"] = nbformat.v4.nbformat_minor
    cells = []
    for cell in data.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        kind = cell.get("cell_type")
        if kind not in _CELL_KEYS:
            metadata = dict(cell.get("metadata") or {})
            metadata["tandem"] = {"original_cell_type": str(kind)[:100]}
            cell = {**cell, "cell_type": "raw", "metadata": metadata}
            cell.setdefault("source", "")
            kind = "raw"
        cells.append({k: v for k, v in cell.items() if k in _CELL_KEYS[kind]})
    data["cells"] = cells
    return data


def parse_ipynb(raw: bytes) -> dict[str, Any]:
    """Read an uploaded .ipynb: nbformat 4.x, older versions upgraded to 4.5, newer minors
    read as 4.5, validated. CPU-bound on a big file: call it off the event loop."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidNotebook("the file is not UTF-8 text") from None
    data = _as_current_minor(strict_json(text))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(data), as_version=4)
            if nb.nbformat_minor < 5:
                had_marker = "orig_nbformat_minor" in nb.metadata
                nb = upgrade(nb, from_version=4, from_minor=nb.nbformat_minor)
                if not had_marker:
                    # nbformat's own bookkeeping; the user's metadata stays as it was.
                    nb.metadata.pop("orig_nbformat_minor", None)
            nbformat.validate(nb)
    except nbformat.ValidationError as error:
        raise InvalidNotebook(f"not a valid notebook: {_first_line(error.message)}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidNotebook(f"not a valid notebook: {_first_line(str(error))}") from None
    # nbformat.validate has already given a duplicated cell id a fresh one, as Jupyter does.
    return dict(nb)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "unreadable"


def initial_state(content: dict[str, Any]) -> bytes:
    content = json.loads(json.dumps(content))
    doc: Doc[Any] = Doc()
    model = YNotebook(doc)
    with doc.transaction():
        model.set({**content, "cells": []})
        # jupyter_ydoc gives an empty notebook a blank cell and fills in empty kernelspec and
        # language_info; an import keeps the file exactly as it was. Cells go in at the front,
        # last first: inserting at the end walks the array from its start every time
        # (YNotebook.set and Array.extend: 6-9 s for 20,000 cells, against 0.3 s).
        del model.ycells[:]
        for cell in reversed(content.get("cells", [])):
            model.ycells.insert(0, model.create_ycell(cell))
        doc.get("meta", type=Map)["metadata"] = Map(content.get("metadata", {}))
    return doc.get_update()


def content_of(state: bytes) -> dict[str, Any]:
    """The document's content as valid nbformat 4, whatever slipped into it (see `repair`)."""
    return repair.read_state(state).content


def export(state: bytes) -> dict[str, Any]:
    """The document as nbformat 4 JSON, validated; what could not be exported is left out
    (`export_reading` says what)."""
    return export_reading(state).content


def export_reading(state: bytes) -> repair.Reading:
    """The document as validated nbformat 4 JSON, and the repairs that took. CPU-bound on a
    big notebook: call it off the event loop."""
    reading = repair.read_state(state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.from_dict(reading.content)
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as error:
            raise Conflict(
                f"the notebook holds content that is not valid nbformat: "
                f"{_first_line(error.message)}"
            ) from None
    if reading.repairs:
        log.warning(
            "notebook content repaired on export: %s%s",
            "; ".join(reading.repairs[:10]),
            f" (and {len(reading.repairs) - 10} more)" if len(reading.repairs) > 10 else "",
        )
    return repair.Reading(dict(nb), reading.repairs)


# Bidirectional overrides and isolates make a title read differently from what it is
# ("gpj.exe" shown as "exe.jpg"); control characters break lines and logs.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > 200:
        raise InvalidInput("a title is 1 to 200 characters")
    if not title.isprintable() or any(ch in _BIDI_CONTROLS for ch in title):
        raise InvalidInput("a title cannot hold control or text-direction characters")
    return title


def create(db: Session, owner: User, title: str, content: dict[str, Any] | None = None) -> Notebook:
    title = clean_title(title)
    assert owner.id is not None
    notebook = Notebook(id=uuid.uuid4().hex, title=title, owner_id=owner.id)
    state = initial_state(content if content is not None else blank_notebook())
    db.add(notebook)
    db.flush()
    db.add(Snapshot(notebook_id=notebook.id, upto_seq=0, data=state))
    db.flush()
    db.refresh(notebook)
    return notebook


def role_of(db: Session, notebook: Notebook, user: User) -> Role | None:
    """The owner, else the better of a membership and what live share links give."""
    if notebook.owner_id == user.id:
        return Role.OWNER
    membership = db.get(Membership, (notebook.id, user.id))
    member_role = Role(membership.role) if membership is not None else None
    through_link = shares.link_role(db, notebook.id, user.id)
    return shares.best_role([role for role in (member_role, through_link) if role is not None])


def get_with_role(db: Session, notebook_id: str, user: User) -> tuple[Notebook, Role]:
    """The notebook and this person's role on it; NotFound when they have none (we do not
    reveal that a notebook exists to someone who cannot see it)."""
    notebook = db.get(Notebook, notebook_id) if len(notebook_id) <= 32 else None
    role = role_of(db, notebook, user) if notebook is not None else None
    if notebook is None or role is None:
        raise NotFound("no such notebook")
    return notebook, role


def public(db: Session, notebook: Notebook, role: Role) -> NotebookPublic:
    owner = db.get(User, notebook.owner_id)
    return NotebookPublic(
        id=notebook.id,
        title=notebook.title,
        owner=owner.username if owner is not None else "",
        role=role,
        created_at=notebook.created_at,
        updated_at=notebook.updated_at,
    )


def list_for(db: Session, user: User) -> list[NotebookPublic]:
    owned = db.exec(select(Notebook).where(Notebook.owner_id == user.id)).all()
    shared = db.exec(
        select(Notebook, Membership.role)
        .join(Membership, col(Membership.notebook_id) == col(Notebook.id))
        .where(Membership.user_id == user.id)
    ).all()
    result = [public(db, nb, Role.OWNER) for nb in owned]
    roles = {nb.id: Role(role) for nb, role in shared}
    found = {nb.id: nb for nb, _ in shared}
    for notebook_id, role in shares.linked_notebooks(db, user).items():
        notebook = found.get(notebook_id) or db.get(Notebook, notebook_id)
        if notebook is None or notebook.owner_id == user.id:
            continue
        found[notebook_id] = notebook
        current = roles.get(notebook_id)
        roles[notebook_id] = role if current is None or role.rank > current.rank else current
    result += [public(db, found[nb_id], role) for nb_id, role in roles.items()]
    result.sort(key=lambda item: item.updated_at, reverse=True)
    return result


def rename(db: Session, notebook: Notebook, title: str) -> Notebook:
    title = clean_title(title)
    notebook.title = title
    notebook.updated_at = utcnow()
    db.add(notebook)
    db.flush()
    return notebook


def remove(db: Session, notebook: Notebook) -> None:
    # Link grants and anything else keyed on these go by ON DELETE CASCADE.
    tables = (
        UpdateRecord,
        Snapshot,
        Membership,
        ShareLink,
        AuditEvent,
        CommentThread,
        VersionFile,
        Version,
        NotebookFile,
    )
    for table in tables:
        db.exec(delete(table).where(col(table.notebook_id) == notebook.id))
    db.delete(notebook)
    db.flush()


def members(db: Session, notebook: Notebook) -> list[MemberPublic]:
    owner = db.get(User, notebook.owner_id)
    result = [MemberPublic(username=owner.username, role=Role.OWNER)] if owner else []
    rows = db.exec(
        select(User.username, Membership.role)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.notebook_id == notebook.id)
        .order_by(col(User.username))
    ).all()
    result += [MemberPublic(username=name, role=Role(role)) for name, role in rows]
    return result


def set_member(db: Session, notebook: Notebook, user: User, role: MemberRole) -> None:
    if user.id == notebook.owner_id:
        raise Conflict("the owner's role cannot be changed")
    assert user.id is not None
    membership = db.get(Membership, (notebook.id, user.id))
    if membership is None:
        membership = Membership(notebook_id=notebook.id, user_id=user.id, role=role.value)
    else:
        membership.role = role.value
    db.add(membership)  # the route commits it with its audit row, in one transaction


def remove_member(db: Session, notebook: Notebook, user: User) -> None:
    membership = db.get(Membership, (notebook.id, user.id))
    if membership is None:
        raise NotFound(f"{user.username!r} is not a member of this notebook")
    db.delete(membership)  # the route commits it with its audit row
