"""A hard limit on a notebook's working directory: /content on a file system of its own,
`disk_mb` big — an ext4 image per notebook, loop-mounted by a root worker — so a kernel
writing past it gets "No space left on device", as on a full Colab disk, and cannot fill
the worker's disk.

A worker that is not root (or lacks mkfs.ext4) cannot mount: its kernels keep the
per-file limit (RLIMIT_FSIZE) and the measured size, and the sandbox description says so.
The image lives beside the directory (`<notebook>.img`), sparse: it takes the disk its
files take. A bigger `disk_mb` later grows it (ext4 grows mounted); a smaller one keeps it
as it is (shrinking could lose files). Everything here blocks: call it from a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

MB = 1024 * 1024
# ext4 needs a few megabytes of its own; below this a quota would hold nothing.
MIN_MB = 8


def _run(*argv: str) -> None:
    subprocess.run(  # noqa: S603  (fixed tools, paths the worker made)
        argv, check=True, capture_output=True, text=True, timeout=120
    )


class DiskQuotas:
    def __init__(self) -> None:
        tools = [shutil.which(tool) for tool in ("mkfs.ext4", "mount", "umount", "resize2fs")]
        self.unavailable = ""
        if os.geteuid() != 0:
            self.unavailable = (
                "disk_mb limits each file only (a worker not run as root cannot mount)"
            )
        elif not all(tools):
            self.unavailable = "disk_mb limits each file only (mkfs.ext4 or mount missing)"
        self._mounted: set[Path] = set()

    def apply(self, root: Path, disk_mb: int, owner: int | None) -> None:
        """Make `root` a file system of `disk_mb` megabytes (no-op without a limit or where
        quotas are unavailable). What `root` held before moves onto it."""
        if not disk_mb or self.unavailable:
            return
        size = max(disk_mb, MIN_MB) * MB
        image = root.with_name(root.name + ".img")
        if os.path.ismount(root):
            self._mounted.add(root)
            if image.stat().st_size < size:
                os.truncate(image, size)
                _run("resize2fs", str(image))
            return
        root.parent.mkdir(parents=True, exist_ok=True)
        fresh = not image.exists()
        if fresh:
            with open(image, "wb") as blank:
                blank.truncate(size)
            os.chmod(image, 0o600)
            _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1", str(image))
        elif image.stat().st_size < size:
            os.truncate(image, size)
            _run("e2fsck", "-f", "-p", str(image))
            _run("resize2fs", str(image))
        root.mkdir(parents=True, exist_ok=True)
        earlier = [entry for entry in root.iterdir()] if fresh else []
        staging = root.with_name(root.name + ".moving")
        if earlier:
            # The directory held files (from before a limit was set): onto the new disk.
            staging.mkdir(exist_ok=True)
            _run("mount", "-o", "loop,nosuid,nodev", str(image), str(staging))
            try:
                for entry in earlier:
                    shutil.move(str(entry), str(staging / entry.name))
            finally:
                _run("umount", str(staging))
                staging.rmdir()
        _run("mount", "-o", "loop,nosuid,nodev", str(image), str(root))
        self._mounted.add(root)
        with contextlib.suppress(OSError):
            (root / "lost+found").rmdir()  # e2fsck makes it again if it ever needs it
        if owner is not None:
            os.chown(root, owner, owner)
        log.info("%s: a %d MB disk of its own", root.name, size // MB)

    def release_all(self) -> None:
        """Unmount every workspace this worker mounted (it is stopping)."""
        for root in list(self._mounted):
            try:
                _run("umount", "--lazy", str(root))
            except (OSError, subprocess.SubprocessError) as error:
                log.warning("could not unmount %s: %s", root, error)
            self._mounted.discard(root)
