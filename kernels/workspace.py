"""A notebook's files in its kernel's working directory (/content), kept equal to the
server's: pulled when a kernel starts and when someone changes them, pushed back (what
changed since the last sync, told by size and mtime) after every cell and every few seconds.

Two rules keep work from being lost. The worker remembers, per file, the size and mtime it
had when it last matched the server (`seen`, kept beside the directory so a restarted
worker remembers too); a pull removes or overwrites a local file only while it is still
exactly that, so nothing the kernel wrote and the server has not taken (not pushed yet, or
refused: over the quota, a name it does not keep) is ever deleted. And a push sends
deletions before uploads, so a file replaced by a folder of the same name goes up.

The directory belongs to the kernel, which may plant symlinks, FIFOs or folders anywhere in
it to aim a root worker at the worker's own files. So the tree is walked with `os.fwalk`
(directory descriptors, symlinks never followed), every path is reached one name at a time
from a descriptor with O_NOFOLLOW, files are only read when they are regular files (opened
non-blocking, checked with fstat), new files are written to a fresh name with O_EXCL and
renamed into place, and folders are removed relative to their parent's descriptor.
Everything here blocks: the worker runs it in a thread, one operation per workspace at a
time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
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
# Regenerated on import; the server does not keep them.
SKIPPED_DIRS = frozenset({"__pycache__"})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Status codes meaning "the server will not keep this file as it is": not retried until
# the file changes.
_REFUSALS = (400, 403, 409, 413)

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
class Manifest:
    entries: dict[str, Entry]
    room: int  # bytes the notebook's quota has left


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

    def manifest(self, notebook_id: str) -> Manifest:
        answer = self._http.get(self._url(notebook_id, "files"))
        answer.raise_for_status()
        body = answer.json()
        entries = {
            str(e["path"]): Entry(
                str(e["path"]),
                str(e["kind"]),
                str(e["sha256"]),
                int(e["size"]),
                bool(e.get("executable", False)),
            )
            for e in body["files"]
        }
        return Manifest(entries, int(body["quota_bytes"]) - int(body["total_bytes"]))

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

    def refuse(self, notebook_id: str, path: str, size: int, reason: str) -> None:
        """Tell the server (and so the people) about a file not sent at all."""
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")  # caf\xe9.txt
        answer = self._http.post(
            self._url(notebook_id, "refusals"),
            json={"path": shown[:4096], "size": size, "reason": reason},
        )
        answer.raise_for_status()

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
    # What the server would not keep, by (size, mtime): not retried until it changes.
    refused: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Bytes on disk of /content's files when the last push walked it (the usage bar).
    disk_bytes: int | None = None
    # Whether `seen` is known (loaded or built): with no memory of the last sync, the
    # server's files win over whatever an earlier session left in the directory.
    _known: bool = False

    def __post_init__(self) -> None:
        self._ledger = self.root.with_name(self.root.name + ".seen.json")
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(self._ledger.read_text())
            self.seen = {p: Seen(int(v[0]), int(v[1]), str(v[2])) for p, v in saved.items()}
            self._known = True

    def _save(self) -> None:
        data = {p: [s.size, s.mtime_ns, s.sha256] for p, s in self.seen.items()}
        temp = self._ledger.with_name(self._ledger.name + ".new")
        temp.write_text(json.dumps(data))
        os.replace(temp, self._ledger)

    # --- server -> /content ----------------------------------------------------------

    def pull(self, progress: Progress = lambda _: None) -> list[str]:
        """Bring the server's changes into /content; the paths that could not be fetched."""
        self.root.mkdir(parents=True, exist_ok=True)
        wanted = self.client.manifest(self.notebook_id).entries
        local = dict(self._walk())
        for path in sorted(set(local) - set(wanted)):
            if self._ours(path, local[path]):
                self._remove(path)
        todo = [
            e
            for e in wanted.values()
            if e.kind == "file" and not self._matches(e, local) and self._may_replace(e, local)
        ]
        failed: list[str] = []
        total = sum(e.size for e in todo)
        done = 0
        for number, entry in enumerate(todo, start=1):
            if total >= 10 * CHUNK:
                progress(
                    f"fetching the notebook's files ({number}/{len(todo)}, "
                    f"{done >> 20} of {total >> 20} MB)"
                )
            try:
                self._fetch(entry)
            except (OSError, httpx.HTTPError) as error:
                log.warning("notebook %s: %s not fetched: %s", self.notebook_id, entry.path, error)
                failed.append(entry.path)
            done += entry.size
        for entry in wanted.values():
            if entry.kind == "directory":
                with contextlib.suppress(OSError):
                    os.close(self._open_dir(entry.path.split("/"), create=True))
        self._known = True
        self._save()
        return failed

    def _ours(self, path: str, found: os.stat_result) -> bool:
        """Whether the local file is exactly what the server had (so the server's word on
        it goes); without any memory of past syncs, everything is."""
        seen = self.seen.get(path)
        if seen is None:
            return not self._known
        return (seen.size, seen.mtime_ns) == (found.st_size, found.st_mtime_ns)

    def _may_replace(self, entry: Entry, local: dict[str, os.stat_result]) -> bool:
        found = local.get(entry.path)
        return found is None or self._ours(entry.path, found)

    def _matches(self, entry: Entry, local: dict[str, os.stat_result]) -> bool:
        found = local.get(entry.path)
        if found is None or found.st_size != entry.size:
            return False
        seen = self.seen.get(entry.path)
        if seen is not None and (seen.size, seen.mtime_ns) == (found.st_size, found.st_mtime_ns):
            return seen.sha256 == entry.sha256
        digest = self._hash(entry.path)
        if digest != entry.sha256:
            return False
        self.seen[entry.path] = Seen(found.st_size, found.st_mtime_ns, digest)
        return True

    def _fetch(self, entry: Entry) -> None:
        parts = entry.path.split("/")
        folder = self._open_dir(parts[:-1], create=True)
        temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(temp, _NEW_FLAGS, 0o600, dir_fd=folder)
            digest = hashlib.sha256()
            try:
                os.fchmod(fd, 0o755 if entry.executable else 0o644)
                if self.owner is not None:
                    os.fchown(fd, self.owner, self.owner)
                with self.client.download(self.notebook_id, entry.sha256) as body:
                    for chunk in body:
                        digest.update(chunk)
                        _write_all(fd, chunk)
            finally:
                os.close(fd)
            if digest.hexdigest() != entry.sha256:
                raise OSError(f"{entry.path} arrived damaged (its hash differs)")
            if _is_dir(folder, parts[-1]):
                # The server has a file where the kernel has a folder: only an empty one
                # gives way (OSError otherwise: reported, nothing of the kernel's lost).
                os.rmdir(parts[-1], dir_fd=folder)
            os.rename(temp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
            after = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
            self.seen[entry.path] = Seen(after.st_size, after.st_mtime_ns, entry.sha256)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder)
            os.close(folder)

    def _remove(self, path: str) -> None:
        """Delete a file the server deleted, then the folders it leaves empty."""
        parts = path.split("/")
        self.seen.pop(path, None)
        for depth in range(len(parts), 0, -1):
            try:
                folder = self._open_dir(parts[: depth - 1], create=False)
            except OSError:
                return
            try:
                if depth == len(parts):
                    os.unlink(parts[-1], dir_fd=folder)
                else:
                    os.rmdir(parts[depth - 1], dir_fd=folder)
            except OSError:
                return  # gone already, or a folder that still holds something
            finally:
                os.close(folder)

    # --- /content -> server ----------------------------------------------------------

    def push(self) -> list[str]:
        """Send the server what the kernel changed; the paths sent or deleted."""
        local = dict(self._walk())
        self.disk_bytes = sum(found.st_blocks * 512 for found in local.values())
        sent: list[str] = []
        for path in sorted(set(self.seen) - set(local)):
            self.client.delete(self.notebook_id, path)
            del self.seen[path]
            sent.append(path)
        changed = [
            (path, found)
            for path, found in local.items()
            if not self._unchanged(path, found)
            and self.refused.get(path) != (found.st_size, found.st_mtime_ns)
        ]
        if changed:
            room = self.client.manifest(self.notebook_id).room
            for path, found in changed:
                taken = self._send(path, found, room)
                if taken is not None:
                    room -= taken
                    sent.append(path)
        if sent:
            self._save()
        return sent

    def _unchanged(self, path: str, found: os.stat_result) -> bool:
        seen = self.seen.get(path)
        return seen is not None and (seen.size, seen.mtime_ns) == (found.st_size, found.st_mtime_ns)

    def _send(self, path: str, found: os.stat_result, room: int) -> int | None:
        """Upload one file; the bytes it added to the notebook's total, or None if it was
        not kept (refused files are remembered, other failures retried next time)."""
        stamp = (found.st_size, found.st_mtime_ns)
        seen = self.seen.get(path)
        grows = found.st_size - (seen.size if seen is not None else 0)
        if not _utf8(path) or grows > room:
            # A name the server cannot hold, or past the quota: not worth reading.
            self.refused[path] = stamp
            reason = "name" if not _utf8(path) else "quota"
            log.info("notebook %s: %r is not kept (%s)", self.notebook_id, path, reason)
            self.client.refuse(self.notebook_id, path, found.st_size, reason)
            return None
        fd = self._open_file(path)
        if fd is None:
            return None
        try:
            before = os.fstat(fd)
            executable = bool(before.st_mode & 0o111)
            body = _read_chunks(fd, before.st_size)
            try:
                row = self.client.upload(self.notebook_id, path, body, before.st_size, executable)
            except httpx.HTTPStatusError as error:
                if error.response.status_code in _REFUSALS:
                    self.refused[path] = (before.st_size, before.st_mtime_ns)
                    log.info("the server kept no %s: %s", path, error.response.text[:300])
                    return None
                raise
            except Exception as error:
                log.info("notebook %s: %s not sent this time: %s", self.notebook_id, path, error)
                return None
        finally:
            os.close(fd)
        self.refused.pop(path, None)
        self.seen[path] = Seen(before.st_size, before.st_mtime_ns, str(row["sha256"]))
        return grows

    # --- safe file system steps ------------------------------------------------------

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every regular file under the root (relative path, lstat), walked by directory
        descriptors: a symlink swapped in mid-walk is never entered."""
        if not self.root.is_dir():
            return
        for directory, folders, files, dir_fd in os.fwalk(self.root, follow_symlinks=False):
            folders[:] = [f for f in folders if f not in SKIPPED_DIRS]
            relative = os.path.relpath(directory, self.root)
            prefix = "" if relative == "." else relative + "/"
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    continue
                try:
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    yield prefix + name, info

    def _open_dir(self, parts: list[str], *, create: bool) -> int:
        """A descriptor of the folder `parts` under the root, reached without following
        any symlink; with `create`, a symlink or FIFO in the way is replaced by a folder (a
        regular file in the way is the kernel's: left alone, and this fails)."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    if not create or error.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                        raise
                    if _is_regular(fd, part):
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
            for chunk in _read_chunks(fd, os.fstat(fd).st_size):
                digest.update(chunk)
            return digest.hexdigest()
        finally:
            os.close(fd)


def _utf8(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:
        return False  # bytes that are not UTF-8 (os gives them back as surrogates)
    return True


def _read_chunks(fd: int, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of the file (it may grow meanwhile; if it shrinks, the upload
    fails and is retried next time)."""
    left = size
    while left > 0:
        chunk = os.read(fd, min(CHUNK, left))
        if not chunk:
            raise OSError("the file shrank while it was read")
        left -= len(chunk)
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


def _is_regular(folder: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _clear(folder: int, name: str) -> None:
    """Remove whatever `name` is in `folder` (a symlink, a FIFO, a whole tree)."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=folder)
    else:
        os.unlink(name, dir_fd=folder)
