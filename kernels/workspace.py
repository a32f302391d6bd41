"""A notebook's files in its kernel's working directory (/content), kept equal to the
server's: pulled when a kernel starts and when someone changes them, pushed back (only what
changed, told by size, mtime and SHA-256) after every cell and every few seconds.

The directory belongs to the kernel, which may plant symlinks, FIFOs or folders anywhere in
it to aim a root worker at the worker's own files. So every path is walked one name at a
time from a directory descriptor with O_NOFOLLOW, files are only read when they are regular
files (opened non-blocking, checked with fstat), and new files are written to a fresh name
with O_EXCL and renamed into place. Everything here blocks: the worker runs it in a thread,
one operation per workspace at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
TEMP_PREFIX = ".tandem-"
# Regenerated on import; never worth a round trip.
SKIPPED_DIRS = frozenset({"__pycache__"})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Entry:
    """One path of the server's manifest."""

    path: str
    kind: str  # "file" | "directory"
    sha256: str
    size: int
    executable: bool = False


@dataclass(frozen=True)
class Seen:
    """A local file as it was when it last matched the server."""

    size: int
    mtime_ns: int
    sha256: str


class FilesClient:
    """The worker's HTTP client for notebook files (its token; the server checks that it
    runs a kernel of that notebook)."""

    def __init__(self, server: str, token: str) -> None:
        self._http = httpx.Client(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(120, connect=10),
        )

    def _url(self, notebook_id: str, rest: str) -> str:
        return f"/api/workers/notebooks/{notebook_id}/{rest}"

    def manifest(self, notebook_id: str) -> list[Entry]:
        answer = self._http.get(self._url(notebook_id, "files"))
        answer.raise_for_status()
        return [
            Entry(
                str(e["path"]),
                str(e["kind"]),
                str(e["sha256"]),
                int(e["size"]),
                bool(e.get("executable", False)),
            )
            for e in answer.json()
        ]

    @contextlib.contextmanager
    def download(self, notebook_id: str, sha256: str) -> Iterator[Iterator[bytes]]:
        with self._http.stream("GET", self._url(notebook_id, f"blobs/{sha256}")) as answer:
            answer.raise_for_status()
            yield answer.iter_bytes(CHUNK)

    def upload(
        self, notebook_id: str, path: str, body: Iterator[bytes], size: int, executable: bool
    ) -> Any:
        """The server's row for the file (its sha256), or an HTTPStatusError."""
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        if executable:
            headers["X-Tandem-Executable"] = "1"
        answer = self._http.put(
            self._url(notebook_id, "files/" + quote(path)), content=body, headers=headers
        )
        answer.raise_for_status()
        return answer.json()

    def delete(self, notebook_id: str, path: str) -> None:
        answer = self._http.delete(self._url(notebook_id, "files/" + quote(path)))
        if answer.status_code != 404:
            answer.raise_for_status()

    def close(self) -> None:
        self._http.close()


@dataclass
class Workspace:
    root: Path
    notebook_id: str
    client: FilesClient
    owner: int | None = None  # the uid new files and folders get (a root worker's kernels)
    seen: dict[str, Seen] = field(default_factory=dict)
    # What the server refused (path -> sha256): not retried until the content changes.
    refused: dict[str, str] = field(default_factory=dict)

    # --- server -> /content ----------------------------------------------------------

    def pull(self, progress: Progress = lambda _: None) -> None:
        """Make /content what the server has: fetch what differs, drop what it lacks."""
        self.root.mkdir(parents=True, exist_ok=True)
        wanted = {entry.path: entry for entry in self.client.manifest(self.notebook_id)}
        local = dict(self._walk())
        todo = [e for e in wanted.values() if e.kind == "file" and not self._matches(e, local)]
        for path in set(local) - set(wanted):
            self._remove(path)
        total = sum(e.size for e in todo)
        done = 0
        for number, entry in enumerate(todo, start=1):
            if total >= 10 * CHUNK:
                progress(
                    f"fetching the notebook's files ({number}/{len(todo)}, "
                    f"{done >> 20} of {total >> 20} MB)"
                )
            self._fetch(entry)
            done += entry.size
        for entry in wanted.values():
            if entry.kind == "directory":
                with contextlib.suppress(OSError):
                    os.close(self._open_dir(entry.path.split("/"), create=True))
        self._prune_empty_dirs(wanted)

    def _matches(self, entry: Entry, local: dict[str, os.stat_result]) -> bool:
        found = local.get(entry.path)
        if found is None or found.st_size != entry.size:
            return False
        seen = self.seen.get(entry.path)
        if seen is not None and (seen.size, seen.mtime_ns) == (found.st_size, found.st_mtime_ns):
            return seen.sha256 == entry.sha256
        digest = self._hash(entry.path)
        if digest is None:
            return False
        self.seen[entry.path] = Seen(found.st_size, found.st_mtime_ns, digest)
        return digest == entry.sha256

    def _fetch(self, entry: Entry) -> None:
        parts = entry.path.split("/")
        folder = self._open_dir(parts[:-1], create=True)
        temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(temp, _NEW_FLAGS, 0o600, dir_fd=folder)
            os.fchmod(fd, 0o755 if entry.executable else 0o644)
            digest = hashlib.sha256()
            try:
                with self.client.download(self.notebook_id, entry.sha256) as body:
                    for chunk in body:
                        digest.update(chunk)
                        _write_all(fd, chunk)
                if self.owner is not None:
                    os.fchown(fd, self.owner, self.owner)
            finally:
                os.close(fd)
            if digest.hexdigest() != entry.sha256:
                raise OSError(f"{entry.path} arrived damaged (its hash differs)")
            if _is_dir(folder, parts[-1]):
                _clear(folder, parts[-1])  # a folder where the file belongs
            os.rename(temp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
            after = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
            self.seen[entry.path] = Seen(after.st_size, after.st_mtime_ns, entry.sha256)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder)
            os.close(folder)

    def _remove(self, path: str) -> None:
        parts = path.split("/")
        self.seen.pop(path, None)
        try:
            folder = self._open_dir(parts[:-1], create=False)
        except OSError:
            return
        try:
            _clear(folder, parts[-1])
        finally:
            os.close(folder)

    def _prune_empty_dirs(self, wanted: dict[str, Entry]) -> None:
        keep = {p for p, e in wanted.items() if e.kind == "directory"}
        for path in wanted:
            parts = path.split("/")
            keep.update("/".join(parts[: i + 1]) for i in range(len(parts) - 1))
        for directory, subdirs, files in os.walk(self.root, topdown=False):
            relative = os.path.relpath(directory, self.root)
            if relative == "." or relative in keep or relative.startswith(".local"):
                continue
            if not subdirs and not files:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)

    # --- /content -> server ----------------------------------------------------------

    def push(self) -> list[str]:
        """Send the server what the kernel changed; the paths sent or deleted."""
        sent: list[str] = []
        local = dict(self._walk())
        for path, found in local.items():
            seen = self.seen.get(path)
            if seen is not None and (seen.size, seen.mtime_ns) == (
                found.st_size,
                found.st_mtime_ns,
            ):
                continue
            digest = self._hash(path)
            if digest is None:
                continue
            if seen is not None and seen.sha256 == digest:
                self.seen[path] = Seen(found.st_size, found.st_mtime_ns, digest)
                continue
            if self.refused.get(path) == digest:
                continue
            if self._send(path, digest):
                sent.append(path)
        for path in set(self.seen) - set(local):
            self.client.delete(self.notebook_id, path)
            del self.seen[path]
            sent.append(path)
        return sent

    def _send(self, path: str, digest: str) -> bool:
        fd = self._open_file(path)
        if fd is None:
            return False
        try:
            before = os.fstat(fd)
            try:
                executable = bool(before.st_mode & 0o111)
                row = self.client.upload(
                    self.notebook_id, path, _read_chunks(fd), before.st_size, executable
                )
            except httpx.HTTPStatusError as error:
                if error.response.status_code in (400, 409, 413):
                    # Over the quota, a name the server refuses, a file where a folder is:
                    # the people see why in the Files panel; not retried until it changes.
                    self.refused[path] = digest
                    log.info("the server kept no %s: %s", path, error.response.text[:300])
                    return False
                raise
        finally:
            os.close(fd)
        self.refused.pop(path, None)
        self.seen[path] = Seen(before.st_size, before.st_mtime_ns, str(row["sha256"]))
        return True

    # --- safe file system steps ------------------------------------------------------

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every regular file under the root (relative path, lstat); nothing followed."""
        stack = [""]
        while stack:
            prefix = stack.pop()
            try:
                with os.scandir(self.root / prefix if prefix else self.root) as entries:
                    items = list(entries)
            except OSError:
                continue
            for item in items:
                path = f"{prefix}{item.name}"
                if item.name.startswith(TEMP_PREFIX):
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    if item.name not in SKIPPED_DIRS:
                        stack.append(path + "/")
                elif stat.S_ISREG(info.st_mode):
                    yield path, info

    def _open_dir(self, parts: list[str], *, create: bool) -> int:
        """A descriptor of the folder `parts` under the root, reached without following
        any symlink; with `create`, whatever blocks the way is replaced by a folder."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    if not create:
                        raise
                    _clear(fd, part)
                    os.mkdir(part, 0o755, dir_fd=fd)
                    if self.owner is not None:
                        os.chown(part, self.owner, self.owner, dir_fd=fd, follow_symlinks=False)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_file(self, path: str) -> int | None:
        """A regular file opened for reading, never through a symlink and never blocking
        on a FIFO; None when it is anything else or gone."""
        parts = path.split("/")
        try:
            folder = self._open_dir(parts[:-1], create=False)
        except OSError:
            return None
        try:
            fd = os.open(parts[-1], _READ_FLAGS, dir_fd=folder)
        except OSError:
            return None
        finally:
            os.close(folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def _hash(self, path: str) -> str | None:
        fd = self._open_file(path)
        if fd is None:
            return None
        try:
            digest = hashlib.sha256()
            for chunk in _read_chunks(fd):
                digest.update(chunk)
            return digest.hexdigest()
        finally:
            os.close(fd)


def _read_chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, CHUNK):
        yield chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _is_dir(folder: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _clear(folder: int, name: str) -> None:
    """Remove whatever `name` is in `folder` (a file, a symlink, a whole tree)."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=folder)
    else:
        os.unlink(name, dir_fd=folder)
