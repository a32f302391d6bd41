"""Where file contents live: blobs named by notebook and SHA-256, written once, never edited.

    BlobStore                the contract
     ├── LocalBlobStore      the data dir (the embedded default)
     └── S3BlobStore         S3-compatible object storage, through boto3 (several replicas)

A blob is put from a finished, hashed file on local disk (an upload is spooled and hashed
first, so nothing half-written is ever a blob); which path holds which blob is the SQL
manifest's business, not the store's. Every method blocks: call them from a thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    modified: datetime


class BlobStore:
    """Blobs of one server (or of every replica, sharing one bucket)."""

    def __init__(self, staging: Path) -> None:
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.staging = staging

    def stage(self) -> tuple[BinaryIO, Path]:
        """A new private temporary file to spool an upload into (the caller removes it)."""
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="upload-")
        return os.fdopen(fd, "wb"), Path(name)

    def put(self, notebook_id: str, sha256: str, source: Path) -> None:
        """Make `source` (a finished file whose hash is `sha256`) the blob; `source` is
        consumed. Putting a blob that exists refreshes its age (see `sweep`)."""
        raise NotImplementedError

    def open(self, notebook_id: str, sha256: str) -> BinaryIO:
        """The blob for reading; FileNotFoundError when it is not there."""
        raise NotImplementedError

    def local_path(self, notebook_id: str, sha256: str) -> Path | None:
        """A path on this machine to serve the blob from directly, when there is one."""
        return None

    def blobs(self, notebook_id: str) -> list[StoredBlob]:
        raise NotImplementedError

    def modified(self, notebook_id: str, sha256: str) -> datetime | None:
        """When the blob was last put; None when it is not there."""
        raise NotImplementedError

    def delete(self, notebook_id: str, sha256: str) -> None:
        raise NotImplementedError

    def drop(self, notebook_id: str) -> None:
        """Every blob of a deleted notebook."""
        for blob in self.blobs(notebook_id):
            self.delete(notebook_id, blob.sha256)

    def close(self) -> None:
        """Let go of connections (the server is stopping)."""


class LocalBlobStore(BlobStore):
    """`root/<notebook>/<sha[:2]>/<sha>`, 0600 in a 0700 tree; staging on the same disk so
    a put is a rename."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        super().__init__(root / ".staging")
        self.root = root

    def _path(self, notebook_id: str, sha256: str) -> Path:
        return self.root / notebook_id / sha256[:2] / sha256

    def put(self, notebook_id: str, sha256: str, source: Path) -> None:
        target = self._path(notebook_id, sha256)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        source.chmod(0o600)
        os.replace(source, target)

    def open(self, notebook_id: str, sha256: str) -> BinaryIO:
        return self._path(notebook_id, sha256).open("rb")

    def local_path(self, notebook_id: str, sha256: str) -> Path | None:
        return self._path(notebook_id, sha256)

    def blobs(self, notebook_id: str) -> list[StoredBlob]:
        folder = self.root / notebook_id
        if not folder.is_dir():
            return []
        return [
            StoredBlob(path.name, datetime.fromtimestamp(path.stat().st_mtime, UTC))
            for path in folder.glob("??/*")
            if path.is_file()
        ]

    def modified(self, notebook_id: str, sha256: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self._path(notebook_id, sha256).stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def delete(self, notebook_id: str, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(notebook_id, sha256).unlink()

    def drop(self, notebook_id: str) -> None:
        shutil.rmtree(self.root / notebook_id, ignore_errors=True)


class S3BlobStore(BlobStore):
    """`s3://bucket/prefix<notebook>/<sha>`; uploads spool in `staging` on this machine,
    then go up with boto3's managed (multipart) transfer."""

    def __init__(self, client: Any, bucket: str, prefix: str, staging: Path) -> None:
        super().__init__(staging)
        self._client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, notebook_id: str, sha256: str = "") -> str:
        return f"{self.prefix}{notebook_id}/{sha256}"

    def put(self, notebook_id: str, sha256: str, source: Path) -> None:
        try:
            self._client.upload_file(str(source), self.bucket, self._key(notebook_id, sha256))
        finally:
            source.unlink(missing_ok=True)

    def open(self, notebook_id: str, sha256: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(notebook_id, sha256))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(sha256) from None
            raise
        body: BinaryIO = answer["Body"]
        return body

    def blobs(self, notebook_id: str) -> list[StoredBlob]:
        found = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(notebook_id)
        )
        for page in pages:
            for item in page.get("Contents", []):
                found.append(StoredBlob(item["Key"].rsplit("/", 1)[-1], item["LastModified"]))
        return found

    def modified(self, notebook_id: str, sha256: str) -> datetime | None:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(notebook_id, sha256))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        when: datetime = head["LastModified"]
        return when

    def delete(self, notebook_id: str, sha256: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(notebook_id, sha256))

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()


def chunks(stream: BinaryIO) -> Iterator[bytes]:
    """A blob read a megabyte at a time (for a streamed response), closed at the end."""
    with contextlib.closing(stream):
        while chunk := stream.read(CHUNK):
            yield chunk


def s3_store(url: str, endpoint_url: str, region: str, staging: Path) -> S3BlobStore:
    """The store for `s3://bucket/prefix`; credentials come the usual AWS ways (environment,
    shared files, instance roles)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ValueError(
            "TANDEM_FILES_URL=s3://... needs boto3: pip install 'tandem[s3]'"
        ) from None

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError("TANDEM_FILES_URL is s3://BUCKET[/PREFIX]")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    # boto3 1.36 began adding a CRC32 to every upload (a header, or an aws-chunked trailer
    # over HTTPS) that many S3-compatible servers refuse (older MinIO and Ceph, B2, ...):
    # away from AWS, checksums go only where the operation demands one.
    checksums = "when_required" if endpoint_url else None  # None: boto3's default
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        config=Config(
            retries={"max_attempts": 5, "mode": "standard"},
            # Each streamed download holds a connection while it lasts; the thread pool
            # runs 40 at once.
            max_pool_connections=40,
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
        ),
    )
    try:
        client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        client.close()
        raise ValueError(
            f"cannot use the bucket {bucket!r} (TANDEM_FILES_URL): {type(error).__name__}: "
            f"{str(error)[:300]}"
        ) from None
    return S3BlobStore(client, bucket, prefix, staging)
