"""REST for a notebook's files: list, upload, download, make a folder, move, delete, and the
whole notebook with its files as a zip.

    GET    /api/notebooks/{id}/files            the list                    viewer
    GET    /api/notebooks/{id}/files/{path}     download                    viewer
    PUT    /api/notebooks/{id}/files/{path}     upload (raw body)           editor
    POST   /api/notebooks/{id}/files/{path}     new folder {"type": "directory"}   editor
    PATCH  /api/notebooks/{id}/files/{path}     move / rename {"path": new} editor
    DELETE /api/notebooks/{id}/files/{path}     delete (a folder with all in it)   editor
    GET    /api/notebooks/{id}/archive          the .ipynb and the files, zipped   viewer

Uploads honour If-Match (the sha256 of the version the writer replaces: 412 when another
write came first) and If-None-Match: * (create only). Without them the last complete write
wins, and everyone, the writer it replaced included, is told on the events channel.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import re
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from server.deps import AppServices, CurrentUser, Editable, Readable, in_db
from server.errors import NotFound
from server.files import archive, service
from server.files.models import FileList, FileMove, FilePublic, FolderCreate, NotebookFile
from server.files.paths import check_path
from server.files.storage import FileStorage
from server.files.store import chunks
from server.files.uploads import precondition, receive
from server.notebooks import service as notebooks

router = APIRouter(prefix="/api/notebooks/{notebook_id}", tags=["files"])
log = logging.getLogger(__name__)

# Served files never run in our origin: an uploaded page or SVG is a download, not a page.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-cache",
}


@router.get("/files")
async def list_files(access: Readable, services: AppServices) -> FileList:
    notebook, _ = access

    def read(db: Session) -> FileList:
        rows = service.listing(db, notebook.id)
        return FileList(
            files=[service.public(row) for row in rows],
            total_bytes=sum(row.size for row in rows),
            quota_bytes=services.files.limits.quota_bytes,
        )

    return await in_db(services, read)


@router.get("/files/{path:filepath}")
async def download(path: str, access: Readable, services: AppServices) -> Response:
    notebook, _ = access
    path = check_path(path)
    row = await in_db(services, lambda db: service.get_file(db, notebook.id, path))
    return await serve(services.files, notebook.id, row)


async def serve(files: FileStorage, notebook_id: str, row: NotebookFile) -> Response:
    """A file's content as a download (404 if storage lost it: never a 500)."""
    name = posixpath.basename(row.path)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {**SAFE_HEADERS, "ETag": f'"{row.sha256}"'}
    headers["Content-Disposition"] = attachment(name)
    local = files.store.local_path(notebook_id, row.sha256)
    try:
        if local is not None:
            await run_in_threadpool(local.stat)
            return FileResponse(local, media_type=media_type, headers=headers)
        stream = await run_in_threadpool(files.store.open, notebook_id, row.sha256)
    except FileNotFoundError:
        log.error("notebook %s: the content of %s is missing from storage", notebook_id, row.path)
        raise NotFound(f"the content of {row.path} is missing from storage") from None
    headers["Content-Length"] = str(row.size)
    return StreamingResponse(
        iterate_in_threadpool(chunks(stream)), media_type=media_type, headers=headers
    )


def attachment(name: str) -> str:
    """Content-Disposition for a download named `name` (RFC 6266, UTF-8 names as RFC 5987)."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.put(
    "/files/{path:filepath}",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
async def upload(
    path: str, request: Request, access: Editable, user: CurrentUser, services: AppServices
) -> Response:
    """The raw body becomes the file (its folders are made); 201 when new, 200 replaced."""
    notebook, _ = access
    path = check_path(path)
    row, previous = await receive(services, notebook.id, path, request, user.username)
    return JSONResponse(
        {**service.public(row).model_dump(mode="json"), "replaced": previous is not None},
        status_code=200 if previous is not None else 201,
    )


@router.post("/files/{path:filepath}", status_code=201)
async def make_folder(
    path: str, body: FolderCreate, access: Editable, user: CurrentUser, services: AppServices
) -> FilePublic:
    notebook, _ = access
    path = check_path(path)

    def create(db: Session) -> FilePublic:
        row = service.make_folder(db, notebook.id, path, user.username, services.files.limits)
        db.commit()
        db.refresh(row)
        return service.public(row)

    made = await in_db(services, create)
    services.files.changed(notebook.id, made, "folder")
    return made


@router.patch("/files/{path:filepath}")
async def move(
    path: str, body: FileMove, access: Editable, user: CurrentUser, services: AppServices
) -> dict[str, list[str]]:
    """Rename or move a file or a folder; nothing at the new path is overwritten (409)."""
    notebook, _ = access
    source, target = check_path(path), check_path(body.path)

    def rename(db: Session) -> list[str]:
        landed = service.move(db, notebook.id, source, target, user.username)
        db.commit()
        return landed

    landed = await in_db(services, rename)
    services.files.announce(notebook.id, "moved", user.username, path=source, to=target)
    return {"paths": landed}


@router.delete("/files/{path:filepath}", status_code=204)
async def delete(
    path: str, request: Request, access: Editable, user: CurrentUser, services: AppServices
) -> Response:
    notebook, _ = access
    path = check_path(path)
    condition = precondition(request)

    def remove(db: Session) -> list[str]:
        gone = service.remove(db, notebook.id, path, condition)
        db.commit()
        return gone

    gone = await in_db(services, remove)
    services.files.announce(notebook.id, "deleted", user.username, path=path, paths=gone[:1000])
    services.files.sweep_soon(notebook.id)
    return Response(status_code=204)


@router.get("/archive")
async def download_archive(access: Readable, services: AppServices) -> Response:
    """The notebook as .ipynb and its files, in one zip (built on disk, streamed)."""
    notebook, _ = access
    state = await services.rooms.snapshot(notebook.id)
    content = await run_in_threadpool(notebooks.export, state)
    rows = await in_db(services, lambda db: service.listing(db, notebook.id))
    title = re.sub(r"[^\w\- .]", "_", notebook.title)[:80].strip() or "notebook"
    # Each zip is built on disk, up to the quota: a few at a time, the rest wait.
    async with services.files.archive_slots:
        built = await run_in_threadpool(
            archive.build, services.files.store, notebook.id, title, content, rows
        )
    return FileResponse(
        built.path,
        media_type="application/zip",
        headers={
            "Cache-Control": "private, no-cache",
            "Content-Disposition": attachment(f"{title}.zip"),
        },
        background=built.cleanup,
    )
