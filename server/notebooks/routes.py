"""REST for notebooks: create or import, list, read, rename, delete, export, members."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from server.audit import service as audit
from server.auth import service as users
from server.deps import AppServices, CurrentUser, DbSession, Editable, Owned, Readable
from server.errors import InvalidInput, PermissionDenied, UploadTooLarge
from server.events.types import NotebookDeleted, NotebookRenamed
from server.notebooks import service
from server.notebooks.announce import access_changed
from server.notebooks.models import (
    MemberPublic,
    MemberUpdate,
    NotebookCreate,
    NotebookPublic,
    NotebookUpdate,
)
from server.vocabulary import Role

router = APIRouter(prefix="/api/notebooks", tags=["notebooks"])


@router.post(
    "",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": NotebookCreate.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "title": {"type": "string", "maxLength": 200},
                        },
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
async def create_notebook(
    request: Request, user: CurrentUser, services: AppServices
) -> NotebookPublic:
    """Create a blank notebook (JSON `{"title"}`) or import an .ipynb (multipart `file`)."""
    if user.is_guest:
        raise PermissionDenied("guests cannot create notebooks")
    content_type = request.headers.get("content-type", "")
    content: dict[str, Any] | None = None
    if content_type.startswith("multipart/form-data"):
        limit = services.settings.max_upload_mb * 1024 * 1024
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 64 * 1024:  # + the form's own bytes
            raise UploadTooLarge(
                f"the upload is {int(declared) / 1e6:.1f} MB; the limit is "
                f"{services.settings.max_upload_mb} MB (TANDEM_MAX_UPLOAD_MB)"
            )
        try:
            form = await request.form(max_part_size=limit)
        except MultiPartException as error:
            if "maximum size" in error.message:
                raise UploadTooLarge(
                    f"the file is over the {services.settings.max_upload_mb} MB limit "
                    "(TANDEM_MAX_UPLOAD_MB)"
                ) from None
            raise InvalidInput(f"not a readable form upload: {error.message}") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("upload the .ipynb file in the form field 'file'")
        raw = await upload.read()
        content = await run_in_threadpool(service.parse_ipynb, raw)
        given = form.get("title")
        title = given if isinstance(given, str) and given.strip() else _title_from(upload)
    else:
        try:
            body = NotebookCreate.model_validate(json.loads(await request.body()))
        except ValueError as error:
            raise InvalidInput(f'expected JSON {{"title": ...}}: {_brief(error)}') from None
        title = body.title

    def work() -> NotebookPublic:
        with Session(services.engine) as db:
            notebook = service.create(db, user, title, content)
            db.commit()
            return service.public(db, notebook, Role.OWNER)

    return await run_in_threadpool(work)


def _title_from(upload: UploadFile) -> str:
    name = upload.filename or "Untitled.ipynb"
    stem = re.sub(r"\.ipynb$", "", name.rsplit("/", 1)[-1], flags=re.IGNORECASE)
    return (stem.strip() or "Untitled")[:200]


def _brief(error: ValueError) -> str:
    return str(error).splitlines()[0][:200]


@router.get("")
def list_notebooks(db: DbSession, user: CurrentUser) -> list[NotebookPublic]:
    return service.list_for(db, user)


@router.get("/{notebook_id}")
def get_notebook(access: Readable, db: DbSession) -> NotebookPublic:
    notebook, role = access
    return service.public(db, notebook, role)


@router.patch("/{notebook_id}")
def rename_notebook(
    body: NotebookUpdate, access: Editable, db: DbSession, services: AppServices
) -> NotebookPublic:
    notebook, role = access
    renamed = service.rename(db, notebook, body.title)
    db.commit()
    services.bus.publish(NotebookRenamed(notebook_id=renamed.id, title=renamed.title))
    return service.public(db, renamed, role)


@router.delete("/{notebook_id}", status_code=204)
def delete_notebook(access: Owned, db: DbSession, services: AppServices) -> None:
    notebook, _ = access
    notebook_id = notebook.id
    service.remove(db, notebook)
    db.commit()
    services.bus.publish(NotebookDeleted(notebook_id=notebook_id))


@router.get("/{notebook_id}/export")
async def export_notebook(access: Readable, services: AppServices) -> Response:
    """The notebook as valid nbformat 4. Content the schema guard would refuse today but that
    was stored before it (a number among the cells, NaN in metadata, ...) is repaired or left
    out, and the answer is still 200; then the header `X-Tandem-Repaired` names each repair,
    as a JSON list of strings (the first 20). A notebook still invalid after that is 409."""
    notebook, _ = access
    state = await services.rooms.snapshot(notebook.id)
    reading = await run_in_threadpool(service.export_reading, state)
    filename = re.sub(r"[^\w\- .]", "_", notebook.title)[:100] or "notebook"
    return JSONResponse(
        reading.content,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.ipynb"',
            **reading.headers(),
        },
    )


@router.get("/{notebook_id}/members")
def list_members(access: Readable, db: DbSession) -> list[MemberPublic]:
    notebook, _ = access
    return service.members(db, notebook)


@router.put("/{notebook_id}/members/{username:path}")
def put_member(
    username: str,
    body: MemberUpdate,
    access: Owned,
    user: CurrentUser,
    db: DbSession,
    services: AppServices,
) -> list[MemberPublic]:
    notebook, _ = access
    member = users.get_user(db, username)
    service.set_member(db, notebook, member, body.role)
    audit.record(db, notebook.id, user.username, "member.set", username=username, role=body.role)
    db.commit()
    return access_changed(db, services.bus, notebook, [member])


@router.delete("/{notebook_id}/members/{username:path}")
def delete_member(
    username: str, access: Owned, user: CurrentUser, db: DbSession, services: AppServices
) -> list[MemberPublic]:
    notebook, _ = access
    member = users.get_user(db, username)
    service.remove_member(db, notebook, member)
    audit.record(db, notebook.id, user.username, "member.removed", username=username)
    db.commit()
    # They may still reach it through a share link: the event carries their role now.
    return access_changed(db, services.bus, notebook, [member])
