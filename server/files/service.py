"""The manifest: which paths a notebook's files have, and the rules for changing them.

Functions here change rows in the caller's session and never commit: the route owns the
transaction, so a change and its quota check land together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from server.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, UploadTooLarge
from server.files.models import FileKind, FilePublic, NotebookFile, VersionFile, WorkerFile
from server.files.paths import is_inside, moved, parents
from server.notebooks.models import Notebook
from server.timeutil import utcnow

MB = 1024 * 1024


@dataclass(frozen=True)
class Precondition:
    """From If-Match (the sha256 the writer expects to replace) / If-None-Match: *."""

    if_match: str | None = None
    if_none_match: bool = False

    def check(self, current: NotebookFile | None) -> None:
        if self.if_none_match and current is not None:
            raise PreconditionFailed(f"{current.path} exists already (If-None-Match: *)")
        if self.if_match is not None and self.if_match != "*":
            found = current.sha256 if current is not None else "nothing"
            if found != self.if_match:
                raise PreconditionFailed(
                    "the file changed since you read it (If-Match did not match): "
                    "download it again, then retry"
                )
        if self.if_match == "*" and current is None:
            raise PreconditionFailed("there is no such file to replace (If-Match: *)")


@dataclass(frozen=True)
class Limits:
    quota_bytes: int
    max_files: int


def public(row: NotebookFile) -> FilePublic:
    return FilePublic(
        path=row.path,
        kind=FileKind(row.kind),
        size=row.size,
        modified=row.modified,
        modified_by=row.modified_by,
        sha256=row.sha256,
    )


def listing(db: Session, notebook_id: str) -> list[NotebookFile]:
    return list(
        db.exec(
            select(NotebookFile)
            .where(NotebookFile.notebook_id == notebook_id)
            .order_by(col(NotebookFile.path))
        )
    )


def manifest(db: Session, notebook_id: str) -> list[WorkerFile]:
    return [
        WorkerFile(
            path=r.path,
            kind=FileKind(r.kind),
            sha256=r.sha256,
            size=r.size,
            executable=r.executable,
        )
        for r in listing(db, notebook_id)
    ]


def total_bytes(db: Session, notebook_id: str) -> int:
    total = db.exec(
        select(func.coalesce(func.sum(NotebookFile.size), 0)).where(
            NotebookFile.notebook_id == notebook_id
        )
    ).one()
    return int(total)


def find(db: Session, notebook_id: str, path: str) -> NotebookFile | None:
    return db.get(NotebookFile, (notebook_id, path))


def get_file(db: Session, notebook_id: str, path: str) -> NotebookFile:
    row = find(db, notebook_id, path)
    if row is None or row.kind != FileKind.FILE:
        raise NotFound(f"no file {path}")
    return row


def _under(db: Session, notebook_id: str, folder: str) -> list[NotebookFile]:
    # A prefix compared exactly: LIKE ignores case in SQLite, and `Data` is not `data`.
    prefix = folder + "/"
    return list(
        db.exec(
            select(NotebookFile).where(
                NotebookFile.notebook_id == notebook_id,
                func.substr(col(NotebookFile.path), 1, len(prefix)) == prefix,
            )
        )
    )


def lock(db: Session, notebook_id: str) -> None:
    """Serialise changes to one notebook's files (its row, FOR UPDATE, on PostgreSQL; SQLite
    has one writer anyway), so two writers cannot both pass the quota or both create a path."""
    found = db.exec(select(Notebook.id).where(Notebook.id == notebook_id).with_for_update()).first()
    if found is None:
        raise NotFound("no such notebook")


def check_write(
    db: Session,
    notebook_id: str,
    path: str,
    limits: Limits,
    precondition: Precondition = Precondition(),
) -> int:
    """What a write of `path` would be refused for, found before its body is read; the
    bytes the upload may have (the quota left, counting the file it replaces)."""
    _check_place(db, notebook_id, path, FileKind.FILE)
    current = find(db, notebook_id, path)
    precondition.check(current)
    if current is None:
        _check_count(db, notebook_id, limits)
    return limits.quota_bytes - total_bytes(db, notebook_id) + (current.size if current else 0)


def _check_place(db: Session, notebook_id: str, path: str, kind: FileKind) -> None:
    """A file cannot sit inside a file, nor replace a folder."""
    for folder in parents(path):
        row = find(db, notebook_id, folder)
        if row is not None and row.kind == FileKind.FILE:
            raise Conflict(f"{folder} is a file, not a folder")
    current = find(db, notebook_id, path)
    is_folder = (current is not None and current.kind == FileKind.DIRECTORY) or bool(
        _under(db, notebook_id, path)
    )
    if is_folder and kind == FileKind.FILE:
        raise Conflict(f"{path} is a folder")
    if current is not None and current.kind == FileKind.FILE and kind == FileKind.DIRECTORY:
        raise Conflict(f"{path} is a file")


def write(
    db: Session,
    notebook_id: str,
    path: str,
    *,
    sha256: str,
    size: int,
    by: str,
    limits: Limits,
    precondition: Precondition = Precondition(),
    executable: bool = False,
) -> tuple[NotebookFile, NotebookFile | None]:
    """Make `path` hold the blob `sha256`: the new row and (a copy of) the one it replaced."""
    lock(db, notebook_id)
    _check_place(db, notebook_id, path, FileKind.FILE)
    current = find(db, notebook_id, path)
    precondition.check(current)
    previous = NotebookFile.model_validate(current) if current is not None else None
    total = total_bytes(db, notebook_id) - (current.size if current is not None else 0) + size
    if total > limits.quota_bytes:
        raise UploadTooLarge(
            f"{path} ({size / MB:.1f} MB) would bring the notebook's files to "
            f"{total / MB:.1f} MB; the quota is {limits.quota_bytes / MB:.0f} MB "
            "(TANDEM_NOTEBOOK_FILES_MB)"
        )
    if current is None:
        _check_count(db, notebook_id, limits)
        current = NotebookFile(notebook_id=notebook_id, path=path)
    current.kind = FileKind.FILE.value
    current.sha256 = sha256
    current.size = size
    current.executable = executable
    current.modified = utcnow()
    current.modified_by = by[:100]
    db.add(current)
    _drop_implied_folders(db, notebook_id, path)
    return current, previous


def _check_count(db: Session, notebook_id: str, limits: Limits) -> None:
    count = db.exec(select(func.count()).where(NotebookFile.notebook_id == notebook_id)).one()
    if count >= limits.max_files:
        raise UploadTooLarge(
            f"a notebook holds at most {limits.max_files} files and folders "
            "(TANDEM_NOTEBOOK_FILES_MAX)"
        )


def _drop_implied_folders(db: Session, notebook_id: str, path: str) -> None:
    """A folder row is only kept while the folder is otherwise empty."""
    for folder in parents(path):
        row = find(db, notebook_id, folder)
        if row is not None and row.kind == FileKind.DIRECTORY:
            db.delete(row)


def make_folder(db: Session, notebook_id: str, path: str, by: str, limits: Limits) -> NotebookFile:
    lock(db, notebook_id)
    _check_place(db, notebook_id, path, FileKind.DIRECTORY)
    current = find(db, notebook_id, path)
    if current is not None or _under(db, notebook_id, path):
        raise Conflict(f"{path} exists already")
    _check_count(db, notebook_id, limits)
    row = NotebookFile(
        notebook_id=notebook_id,
        path=path,
        kind=FileKind.DIRECTORY.value,
        modified=utcnow(),
        modified_by=by[:100],
    )
    db.add(row)
    _drop_implied_folders(db, notebook_id, path)
    return row


def remove(
    db: Session, notebook_id: str, path: str, precondition: Precondition = Precondition()
) -> list[str]:
    """Delete a file, or a folder with everything in it; the paths that went."""
    lock(db, notebook_id)
    current = find(db, notebook_id, path)
    if current is not None and current.kind == FileKind.FILE:
        precondition.check(current)
    inside = _under(db, notebook_id, path)
    gone = ([current] if current is not None else []) + inside
    if not gone:
        raise NotFound(f"no file or folder {path}")
    for row in gone:
        db.delete(row)
    return [row.path for row in gone]


def move(db: Session, notebook_id: str, source: str, target: str, by: str) -> list[str]:
    """Rename a file or a folder (and all in it); the new paths. Nothing is overwritten."""
    if target == source:
        raise InvalidInput("the new path is the old one")
    if is_inside(target, source):
        raise InvalidInput("a folder cannot move into itself")
    lock(db, notebook_id)
    current = find(db, notebook_id, source)
    rows = ([current] if current is not None else []) + _under(db, notebook_id, source)
    if not rows:
        raise NotFound(f"no file or folder {source}")
    kind = FileKind(current.kind) if current is not None else FileKind.DIRECTORY
    if find(db, notebook_id, target) is not None or _under(db, notebook_id, target):
        raise Conflict(f"{target} exists already")
    _check_place(db, notebook_id, target, kind)
    now = utcnow()
    landed = []
    for row in rows:
        new_path = moved(row.path, source, target)
        db.add(_placed(row, notebook_id, new_path, by, now))
        db.delete(row)
        landed.append(new_path)
    db.flush()
    _drop_implied_folders(db, notebook_id, target)
    return landed


# --- versions and the blobs they keep alive -------------------------------------------------


def record(db: Session, notebook_id: str, version_id: str) -> None:
    """Keep the notebook's file list (by reference: paths and hashes) with a version."""
    for row in listing(db, notebook_id):
        db.add(
            VersionFile(
                version_id=version_id,
                notebook_id=notebook_id,
                path=row.path,
                kind=row.kind,
                sha256=row.sha256,
                size=row.size,
                executable=row.executable,
            )
        )


def restore(db: Session, notebook_id: str, version_id: str, by: str) -> None:
    """Make the notebook's files what `version_id` recorded."""
    lock(db, notebook_id)
    db.exec(delete(NotebookFile).where(col(NotebookFile.notebook_id) == notebook_id))
    now = utcnow()
    for row in db.exec(select(VersionFile).where(VersionFile.version_id == version_id)):
        db.add(_placed(row, notebook_id, row.path, by, now))


def _placed(
    row: NotebookFile | VersionFile, notebook_id: str, path: str, by: str, when: datetime
) -> NotebookFile:
    """The same content (kind, blob, size, mode) at `path`, changed by `by` at `when`."""
    return NotebookFile(
        notebook_id=notebook_id,
        path=path,
        kind=row.kind,
        sha256=row.sha256,
        size=row.size,
        executable=row.executable,
        modified=when,
        modified_by=by[:100],
    )


def referenced(db: Session, notebook_id: str) -> set[str]:
    """Every blob the notebook or one of its versions names."""
    now = db.exec(select(NotebookFile.sha256).where(NotebookFile.notebook_id == notebook_id))
    kept = db.exec(select(VersionFile.sha256).where(VersionFile.notebook_id == notebook_id))
    return {sha for sha in [*now, *kept] if sha}
