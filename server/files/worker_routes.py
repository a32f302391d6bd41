"""The HTTP side of the worker protocol: a worker mirrors a notebook's files into its
kernel's /content and pushes back what the kernel wrote.

    GET    /api/workers/notebooks/{id}/files          the manifest (path, kind, sha256, size)
    GET    /api/workers/notebooks/{id}/blobs/{sha}    one file's content, by its hash
    PUT    /api/workers/notebooks/{id}/files/{path}   what the kernel wrote (raw body)
    DELETE /api/workers/notebooks/{id}/files/{path}   what the kernel deleted
    POST   /api/workers/notebooks/{id}/refusals       a file the worker did not even send
                                                      (past the quota, a name not UTF-8)

Each call carries the worker's token, and a worker reaches only the notebooks it runs a
kernel of (or ran one of moments ago): one compromised worker machine cannot read every
notebook's files.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from server.deps import AppServices, in_db
from server.errors import NotFound, PermissionDenied, UploadTooLarge
from server.files import service
from server.files.models import NotebookFile, WorkerManifest, WorkerRefusal
from server.files.paths import BadPath, check_path
from server.files.routes import serve
from server.files.uploads import receive

router = APIRouter(prefix="/api/workers/notebooks/{notebook_id}", tags=["workers"])

RUNTIME = "runtime"  # who wrote what a kernel wrote
_SHA = re.compile(r"^[0-9a-f]{64}$")


async def hosting_worker(notebook_id: str, request: Request, services: AppServices) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    raw = token.strip() if scheme.lower() == "bearer" else None
    token_id = await run_in_threadpool(services.gateway.authenticate, raw)
    if not services.gateway.may_touch_files(token_id, notebook_id):
        raise PermissionDenied("this worker runs no kernel of that notebook")
    return notebook_id


HostedNotebook = Annotated[str, Depends(hosting_worker)]


@router.get("/files")
async def worker_manifest(notebook_id: HostedNotebook, services: AppServices) -> WorkerManifest:
    def read(db: Session) -> WorkerManifest:
        files = service.manifest(db, notebook_id)
        return WorkerManifest(
            files=files,
            total_bytes=sum(f.size for f in files),
            quota_bytes=services.files.limits.quota_bytes,
        )

    return await in_db(services, read)


@router.get("/blobs/{sha256}")
async def worker_blob(sha256: str, notebook_id: HostedNotebook, services: AppServices) -> Response:
    if not _SHA.match(sha256):
        raise NotFound("no such file content")

    def named(db: Session) -> NotebookFile:
        row = db.exec(
            select(NotebookFile).where(
                NotebookFile.notebook_id == notebook_id, NotebookFile.sha256 == sha256
            )
        ).first()
        if row is None:
            raise NotFound("no file of this notebook has that content now")
        return row

    return await serve(services.files, notebook_id, await in_db(services, named))


@router.put("/files/{path:filepath}")
async def worker_push(
    path: str, request: Request, notebook_id: HostedNotebook, services: AppServices
) -> JSONResponse:
    try:
        path = check_path(path)
        executable = request.headers.get("x-tandem-executable") == "1"
        row, _ = await receive(services, notebook_id, path, request, RUNTIME, executable=executable)
    except (UploadTooLarge, BadPath) as error:
        services.files.refused(notebook_id, path[:1024], error.message)
        raise
    return JSONResponse(service.public(row).model_dump(mode="json"), status_code=200)


@router.delete("/files/{path:filepath}", status_code=204)
async def worker_delete(path: str, notebook_id: HostedNotebook, services: AppServices) -> Response:
    path = check_path(path)

    def remove(db: Session) -> list[str]:
        row = service.find(db, notebook_id, path)
        if row is None:
            return []
        gone = service.remove(db, notebook_id, path)
        db.commit()
        return gone

    gone = await in_db(services, remove)
    if gone:
        services.files.announce(notebook_id, "deleted", RUNTIME, path=path, paths=gone[:1000])
        services.files.sweep_soon(notebook_id)
    return Response(status_code=204)


@router.post("/refusals", status_code=204)
async def worker_refusal(
    refusal: WorkerRefusal, notebook_id: HostedNotebook, services: AppServices
) -> Response:
    """Everyone with the notebook open learns which file was not kept, and why."""
    if refusal.reason == "quota":
        limits = services.files.limits
        used = await in_db(services, lambda db: service.total_bytes(db, notebook_id))
        reason = (
            f"{refusal.path} ({refusal.size / service.MB:.1f} MB) is past the notebook's "
            f"quota: {used / service.MB:.1f} of {limits.quota_bytes / service.MB:.0f} MB used "
            "(TANDEM_NOTEBOOK_FILES_MB)"
        )
    else:
        reason = f"{refusal.path}: the file's name is not valid UTF-8 text"
    services.files.refused(notebook_id, refusal.path, reason)
    return Response(status_code=204)
