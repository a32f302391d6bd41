"""One upload, from request to recorded file: refused early when it cannot be kept (before
its body is read), spooled and hashed, stored as a blob, recorded, announced. Shared by
people's uploads and workers' pushes."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from server.deps import in_db
from server.errors import NotFound, UploadTooLarge
from server.events.types import FileReplaced
from server.files import service
from server.files.models import NotebookFile
from server.files.transfer import spool
from server.services import Services


def precondition(request: Request) -> service.Precondition:
    if_match = request.headers.get("if-match")
    if if_match is not None:
        if_match = if_match.strip().removeprefix("W/").strip('"')
    return service.Precondition(
        if_match=if_match, if_none_match=request.headers.get("if-none-match", "").strip() == "*"
    )


async def receive(
    services: Services,
    notebook_id: str,
    path: str,
    request: Request,
    by: str,
    *,
    executable: bool = False,
) -> tuple[NotebookFile, NotebookFile | None]:
    """The new row and the one it replaced; everyone is told."""
    files = services.files
    condition = precondition(request)
    quota = files.limits.quota_bytes
    # Whatever would refuse the write refuses it now, before a byte is stored.
    room = await in_db(
        services, lambda db: service.check_write(db, notebook_id, path, files.limits, condition)
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > room:
        raise UploadTooLarge(
            f"{path} is {int(declared) / service.MB:.1f} MB; the notebook's files have "
            f"{max(room, 0) / service.MB:.1f} MB left of their "
            f"{quota / service.MB:.0f} MB quota (TANDEM_NOTEBOOK_FILES_MB)"
        )
    staged = await spool(request.stream(), files.store, max(room, 0))
    try:
        await run_in_threadpool(files.store.put, notebook_id, staged.sha256, staged.path)
    finally:
        staged.path.unlink(missing_ok=True)

    def commit(db: Session) -> tuple[NotebookFile, NotebookFile | None]:
        row, previous = service.write(
            db,
            notebook_id,
            path,
            sha256=staged.sha256,
            size=staged.size,
            by=by,
            limits=files.limits,
            precondition=condition,
            executable=executable,
        )
        db.commit()
        db.refresh(row)
        return row, previous

    try:
        row, previous = await in_db(services, commit)
    except IntegrityError:
        files.sweep_soon(notebook_id)
        raise NotFound("the notebook was deleted during the upload") from None
    except Exception:
        files.sweep_soon(notebook_id)
        raise
    replaced = None
    if previous is not None:
        replaced = FileReplaced(sha256=previous.sha256, by=previous.modified_by)
        files.sweep_soon(notebook_id)
    files.changed(notebook_id, service.public(row), "written", replaced)
    return row, previous
