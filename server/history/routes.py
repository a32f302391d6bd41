"""REST for version history: list, name, export, compare, restore."""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from server.deps import AppServices, CurrentUser, Editable, Readable, in_db
from server.files import service as files
from server.history import service
from server.history.models import (
    Comparison,
    Restored,
    Version,
    VersionCreate,
    VersionKind,
    VersionPublic,
)
from server.notebooks import service as notebooks
from server.services import Services

router = APIRouter(tags=["history"])

CURRENT = "current"


@router.get("/api/notebooks/{notebook_id}/versions")
async def list_versions(access: Readable, services: AppServices) -> list[VersionPublic]:
    """Newest first: checkpoints, named versions, and the states restores replaced."""

    def read(db: Session) -> list[VersionPublic]:
        counts = service.file_counts(db, access[0].id)
        return [
            service.public(version, counts) for version in service.versions_of(db, access[0].id)
        ]

    return await in_db(services, read)


@router.post("/api/notebooks/{notebook_id}/versions", status_code=201)
async def name_version(
    body: VersionCreate, access: Editable, user: CurrentUser, services: AppServices
) -> VersionPublic:
    """Keep the notebook as it is now under a name."""
    notebook, _ = access
    state = await services.rooms.snapshot(notebook.id)

    def save(db: Session) -> VersionPublic:
        version = service.save(db, notebook.id, state, VersionKind.NAMED, user.username, body.name)
        db.commit()
        return service.public(version, service.file_counts(db, notebook.id))

    return await in_db(services, save)


async def _state(services: Services, notebook_id: str, version_id: str) -> bytes:
    if version_id == CURRENT:
        return await services.rooms.snapshot(notebook_id)
    version = await in_db(services, lambda db: service.get(db, notebook_id, version_id))
    return version.state


@router.get("/api/notebooks/{notebook_id}/versions/compare")
async def compare_versions(
    base: str, access: Readable, services: AppServices, other: str = CURRENT
) -> Comparison:
    """Cell by cell from `base` to `other` (a version id, or `current`), each read as its
    export reads it (what cannot be exported is left out of the comparison too)."""
    notebook, _ = access
    before_state = await _state(services, notebook.id, base)
    after_state = await _state(services, notebook.id, other)
    before = await run_in_threadpool(notebooks.content_of, before_state)
    after = await run_in_threadpool(notebooks.content_of, after_state)
    return service.compare(base, before, other, after)


@router.get("/api/notebooks/{notebook_id}/versions/{version_id}/export")
async def export_version(version_id: str, access: Readable, services: AppServices) -> JSONResponse:
    """A version as valid nbformat 4; as for the notebook's export, what had to be repaired
    or left out is named in the `X-Tandem-Repaired` header and the answer is still 200."""
    notebook, _ = access
    state = await _state(services, notebook.id, version_id)
    reading = await run_in_threadpool(notebooks.export_reading, state)
    filename = re.sub(r"[^\w\- .]", "_", notebook.title)[:80] or "notebook"
    return JSONResponse(
        reading.content,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}-{version_id[:8]}.ipynb"',
            **reading.headers(),
        },
    )


@router.post("/api/notebooks/{notebook_id}/versions/{version_id}/restore")
async def restore_version(
    version_id: str, access: Editable, user: CurrentUser, services: AppServices
) -> Restored:
    """Bring a version back, as new edits on top of the current notebook; what it was just
    before is kept as a version too. Nobody's connection breaks. The version is restored as
    its export reads it, so a version holding what the schema guard refuses comes back
    repaired, and whatever the current document holds is replaced."""
    notebook, _ = access
    version = await in_db(services, lambda db: service.get(db, notebook.id, version_id))
    target = await run_in_threadpool(notebooks.content_of, version.state)
    async with services.rooms.hold(notebook.id) as room:
        current = room.doc.get_update()

        def keep(db: Session) -> Version:
            saved = service.save(
                db, notebook.id, current, VersionKind.BEFORE_RESTORE, user.username
            )
            db.commit()
            db.refresh(saved)  # read after this session closes
            return saved

        saved = await in_db(services, keep)
        await room.edit(lambda doc: service.restore_into(doc, target))
    if version.files_recorded:

        def bring_back(db: Session) -> None:
            files.restore(db, notebook.id, version.id, user.username)
            db.commit()

        await in_db(services, bring_back)
        services.files.announce(notebook.id, "restored", user.username, version=version.id)
        services.files.sweep_soon(notebook.id)
    return Restored(restored=version.id, saved_as=saved.id)
