"""Uploads spooled to disk as they arrive: hashed on the way, never whole in memory, the
disk writes and the hashing in a worker thread so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from server.errors import UploadTooLarge
from server.files.store import CHUNK, BlobStore

MB = 1024 * 1024


@dataclass(frozen=True)
class Staged:
    """A complete upload on local disk, not yet a blob."""

    path: Path
    sha256: str
    size: int


def _write(file: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    file.write(data)


def _finish(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())  # what is committed as a file must be on disk first
    file.close()


async def spool(body: AsyncIterator[bytes], store: BlobStore, limit: int) -> Staged:
    """Read `body` into a staging file; UploadTooLarge past `limit` bytes. On any failure
    (the client going away mid-upload included) the partial file is removed."""
    file, path = await asyncio.to_thread(store.stage)
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    try:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(
                    f"the upload passed {limit / MB:.1f} MB, what the notebook's quota has "
                    "left (TANDEM_NOTEBOOK_FILES_MB)"
                )
            pending += chunk
            if len(pending) >= CHUNK:
                data, pending = bytes(pending), bytearray()
                await asyncio.to_thread(_write, file, digest, data)
        if pending:
            await asyncio.to_thread(_write, file, digest, bytes(pending))
        await asyncio.to_thread(_finish, file)
    except BaseException:
        file.close()
        path.unlink(missing_ok=True)
        raise
    return Staged(path, digest.hexdigest(), size)
