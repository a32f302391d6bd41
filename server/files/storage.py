"""The server's file keeping for every notebook: its blob store, its limits, the sweep of
blobs nothing names any more, and the `files.changed` event everyone's panel listens to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from server.config import Settings
from server.events.bus import EventBus
from server.events.types import (
    FileAction,
    FileReplaced,
    FilesChanged,
    FilesRefused,
    NotebookDeleted,
    NotebookEvent,
)
from server.files import service
from server.files.models import FilePublic
from server.files.store import BlobStore, LocalBlobStore, s3_store
from server.timeutil import utcnow

log = logging.getLogger(__name__)

# A blob put moments ago may not be named by its row yet (the commit follows the put):
# only blobs older than this are swept.
SWEEP_GRACE = timedelta(hours=1)
SWEEP_EVERY = timedelta(minutes=10)


def make_store(settings: Settings) -> BlobStore:
    if settings.files_url.startswith("s3://"):
        staging = settings.data_dir / "staging"
        return s3_store(settings.files_url, settings.s3_endpoint_url, settings.s3_region, staging)
    if settings.files_url:
        raise ValueError("TANDEM_FILES_URL is empty (the data dir) or s3://BUCKET[/PREFIX]")
    return LocalBlobStore(Path(settings.data_dir) / "files")


class FileStorage:
    def __init__(self, settings: Settings, engine: Engine, bus: EventBus, store: BlobStore):
        self.store = store
        self.limits = service.Limits(
            quota_bytes=settings.notebook_files_mb * service.MB,
            max_files=settings.notebook_files_max,
        )
        self._engine = engine
        self._bus = bus
        self._dirty: set[str] = set()  # notebooks that may hold blobs nothing names
        self._sweeper: asyncio.Task[None] | None = None
        # A zip is built on disk, up to a notebook's quota: a few at a time, the rest wait.
        self.archive_slots = asyncio.Semaphore(2)
        # Tells the runtime of a notebook that its files changed (set by the gateway).
        self.on_change: Callable[[str], None] = lambda _notebook_id: None
        bus.subscribe_all(self._on_event)

    def announce(
        self,
        notebook_id: str,
        action: FileAction,
        by: str,
        *,
        path: str | None = None,
        to: str | None = None,
        paths: list[str] | None = None,
        version: str | None = None,
        file: FilePublic | None = None,
        replaced: FileReplaced | None = None,
    ) -> None:
        """Every panel of the notebook refreshes; the workers holding its working directory
        mirror the change (the one that pushed it too: a cheap no-op, and another worker
        that took the notebook over meanwhile must not miss it)."""
        self._bus.publish(
            FilesChanged(
                notebook_id=notebook_id,
                action=action,
                by=by,
                path=path,
                file=file.model_dump(mode="json") if file is not None else None,
                replaced=replaced,
                to=to,
                paths=paths,
                version=version,
            )
        )
        self.on_change(notebook_id)

    def refused(self, notebook_id: str, entry: str, reason: str) -> None:
        """A file the runtime wrote that could not be kept (over the quota, a bad name)."""
        self._bus.publish(FilesRefused(notebook_id=notebook_id, path=entry, reason=reason))

    def changed(
        self,
        notebook_id: str,
        row: FilePublic,
        action: FileAction,
        replaced: FileReplaced | None = None,
    ) -> None:
        self.announce(
            notebook_id, action, row.modified_by, path=row.path, file=row, replaced=replaced
        )

    def sweep_soon(self, notebook_id: str) -> None:
        """Mark the notebook for the next sweep. Sweeps run every `SWEEP_EVERY`, not per
        change: a blob only goes once it is older than the grace anyway, and a log a cell
        rewrites every 2 s must not list the whole store (an S3 LIST) every 2 s."""
        self._dirty.add(notebook_id)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_now_and_then())

    async def _sweep_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY.total_seconds())
            for notebook_id in list(self._dirty):
                try:
                    _, waiting = await asyncio.to_thread(self._sweep, notebook_id, SWEEP_GRACE)
                except Exception:
                    log.exception("sweeping notebook %s's files failed", notebook_id)
                    continue
                if not waiting:
                    # Unnamed blobs still inside the grace keep the notebook marked.
                    self._dirty.discard(notebook_id)

    def sweep(self, notebook_id: str, grace: timedelta = SWEEP_GRACE) -> int:
        """Delete this notebook's unnamed blobs older than `grace`; how many went."""
        return self._sweep(notebook_id, grace)[0]

    def _sweep(self, notebook_id: str, grace: timedelta) -> tuple[int, int]:
        """(blobs deleted, unnamed blobs too young to delete yet)."""
        with Session(self._engine) as db:
            named = service.referenced(db, notebook_id)
        cutoff = utcnow() - grace
        gone = waiting = 0
        for blob in self.store.blobs(notebook_id):
            if blob.sha256 in named:
                continue
            # Put again since the listing (an upload of the same content, its row about
            # to be committed)? Then it stays for now.
            again = self.store.modified(notebook_id, blob.sha256)
            if blob.modified < cutoff and again is not None and again < cutoff:
                self.store.delete(notebook_id, blob.sha256)
                gone += 1
            elif again is not None:
                waiting += 1
        return gone, waiting

    def _on_event(self, event: NotebookEvent) -> None:
        if isinstance(event, NotebookDeleted):
            task = asyncio.create_task(asyncio.to_thread(self.store.drop, event.notebook_id))
            task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        self.store.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not remove a deleted notebook's files", exc_info=task.exception())
