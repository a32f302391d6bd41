"""Per-kernel resource limits through the kernel's own cgroup (v2, or v1 where the host has
only that), with hard rlimits as the weaker fallback when no cgroup can be made.

    LimitsBackend            what a kernel's limits are enforced with
     +- CgroupV2             /sys/fs/cgroup/<worker's cgroup>/kernels/<id>
     +- CgroupV1             /sys/fs/cgroup/{memory,pids,cpu}/<worker's cgroup>/tandem-kernels/<id>
     +- RlimitOnly           RLIMIT_DATA / RLIMIT_NPROC / RLIMIT_FSIZE: per process, not per kernel

A backend gives each kernel a `KernelCgroup`: the files the kernel joins before it starts
(see `sandbox_enter.py`), its memory use, whether it was OOM-killed, and `destroy`, which
kills whatever the kernel left running (a fork bomb's children included).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from kernels.messages import Limits

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("memory", "pids", "cpu")
_CPU_PERIOD_US = 100_000


@dataclass
class KernelCgroup:
    """One kernel's cgroup (one directory per v1 controller, one in v2)."""

    dirs: list[Path]
    memory_dir: Path | None
    version: int
    rlimits: dict[str, int] = field(default_factory=dict)

    def join_files(self) -> list[Path]:
        return [directory / "cgroup.procs" for directory in self.dirs]

    def memory_bytes(self) -> int | None:
        if self.memory_dir is None:
            return None
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((self.memory_dir / name).read_text())
        return None

    def oom_kills(self) -> int:
        if self.memory_dir is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            for line in (self.memory_dir / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def destroy(self) -> None:
        """Kill every process left in the cgroup, then remove it."""
        for _ in range(50):
            pids = self._pids()
            if not pids:
                break
            if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (self.dirs[0] / "cgroup.kill").write_text("1")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for directory in self.dirs:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # the last processes are still exiting

    def _pids(self) -> list[int]:
        pids: set[int] = set()
        for directory in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return sorted(pids)


class LimitsBackend:
    """Makes a `KernelCgroup` for each kernel. `describe` says what enforces the limits."""

    version = 0

    def describe(self) -> str:
        return "rlimits only (weaker: per process, not per kernel)"

    def create(self, kernel_id: str, limits: Limits) -> KernelCgroup:
        return KernelCgroup([], None, 0, rlimits_for(limits))

    def close(self) -> None:
        """Remove what the worker made (its kernels' cgroups are gone by then)."""


class CgroupV1(LimitsBackend):
    version = 1

    def __init__(self, parents: dict[str, Path]) -> None:
        self._parents = parents  # controller -> this worker's tandem-kernels dir

    def describe(self) -> str:
        return "cgroup v1 (memory, pids, cpu)"

    def close(self) -> None:
        for parent in self._parents.values():
            with contextlib.suppress(OSError):
                parent.rmdir()

    def create(self, kernel_id: str, limits: Limits) -> KernelCgroup:
        dirs = {name: parent / kernel_id for name, parent in self._parents.items()}
        for directory in dirs.values():
            directory.mkdir(exist_ok=True)
        memory = dirs["memory"]
        if limits.memory_mb:
            value = str(limits.memory_mb * 1024 * 1024)
            (memory / "memory.limit_in_bytes").write_text(value)
            # With swap accounting, the same value again: a kernel does not swap past it.
            with contextlib.suppress(OSError):
                (memory / "memory.memsw.limit_in_bytes").write_text(value)
            # v1 does not charge socket buffers to memory.limit (v2 does).
            with contextlib.suppress(OSError):
                (memory / "memory.kmem.tcp.limit_in_bytes").write_text(value)
        if limits.max_processes:
            (dirs["pids"] / "pids.max").write_text(str(limits.max_processes))
        if limits.cpus:
            (dirs["cpu"] / "cpu.cfs_period_us").write_text(str(_CPU_PERIOD_US))
            quota = int(limits.cpus * _CPU_PERIOD_US)
            (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
        fsize = {"fsize": limits.disk_mb * 1024 * 1024} if limits.disk_mb else {}
        return KernelCgroup(list(dirs.values()), memory, 1, fsize)


class CgroupV2(LimitsBackend):
    version = 2

    def __init__(self, parent: Path) -> None:
        self._parent = parent  # this worker's kernels dir, controllers enabled below it

    def describe(self) -> str:
        return "cgroup v2 (memory, pids, cpu)"

    def create(self, kernel_id: str, limits: Limits) -> KernelCgroup:
        directory = self._parent / kernel_id
        directory.mkdir(exist_ok=True)
        if limits.memory_mb:
            (directory / "memory.max").write_text(str(limits.memory_mb * 1024 * 1024))
            with contextlib.suppress(OSError):
                (directory / "memory.swap.max").write_text("0")
        if limits.max_processes:
            (directory / "pids.max").write_text(str(limits.max_processes))
        if limits.cpus:
            quota = int(limits.cpus * _CPU_PERIOD_US)
            (directory / "cpu.max").write_text(f"{quota} {_CPU_PERIOD_US}")
        fsize = {"fsize": limits.disk_mb * 1024 * 1024} if limits.disk_mb else {}
        return KernelCgroup([directory], directory, 2, fsize)


def rlimits_for(limits: Limits) -> dict[str, int]:
    """What the fallback can do: cap each process's data segment, the uid's process count
    and the largest file."""
    rlimits: dict[str, int] = {}
    if limits.memory_mb:
        rlimits["data"] = limits.memory_mb * 1024 * 1024
    if limits.max_processes:
        rlimits["nproc"] = limits.max_processes
    if limits.disk_mb:
        rlimits["fsize"] = limits.disk_mb * 1024 * 1024
    return rlimits


def own_cgroup_paths(text: str) -> dict[str, str]:
    """Parse /proc/self/cgroup: controller name (or "" for v2) -> path."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def detect(root: Path = CGROUP_ROOT) -> tuple[LimitsBackend, str]:
    """The best backend this worker may use, and why a better one was not possible."""
    try:
        own = own_cgroup_paths(Path("/proc/self/cgroup").read_text())
    except OSError as error:
        return LimitsBackend(), f"cannot read /proc/self/cgroup ({error.strerror})"
    problems: list[str] = []
    if (root / "cgroup.controllers").exists():
        try:
            return _setup_v2(root / own.get("", "/").lstrip("/")), ""
        except OSError as error:
            problems.append(f"cgroup v2: {error.strerror or error}")
    elif all((root / name).is_dir() for name in _V1_CONTROLLERS):
        try:
            return _setup_v1(root, own), ""
        except OSError as error:
            problems.append(f"cgroup v1: {error.strerror or error}")
    else:
        problems.append("no cgroup v2 or v1 hierarchy with memory, pids and cpu")
    return LimitsBackend(), "; ".join(problems)


def _setup_v1(root: Path, own: dict[str, str]) -> CgroupV1:
    parents: dict[str, Path] = {}
    for name in _V1_CONTROLLERS:
        path = own.get(name) or own.get("cpu,cpuacct") or "/"
        parent = root / name / path.lstrip("/") / f"tandem-kernels-{os.getpid()}"
        parent.mkdir(parents=True, exist_ok=True)
        parents[name] = parent
    return CgroupV1(parents)


def _setup_v2(own: Path) -> CgroupV2:
    """v2 forbids processes in a cgroup that hands controllers down, so the worker moves
    into a leaf of its own first (as a systemd-delegated service does)."""
    available = set((own / "cgroup.controllers").read_text().split())
    missing = {"memory", "pids"} - available
    if missing:
        raise OSError(f"controllers {sorted(missing)} are not delegated to {own}")
    leaf = own / "tandem-worker"
    leaf.mkdir(exist_ok=True)
    for pid in (own / "cgroup.procs").read_text().split():
        with contextlib.suppress(OSError):  # a process that exited meanwhile
            (leaf / "cgroup.procs").write_text(pid)
    wanted = [name for name in ("memory", "pids", "cpu") if name in available]
    (own / "cgroup.subtree_control").write_text(" ".join(f"+{name}" for name in wanted))
    kernels = own / "tandem-kernels"
    kernels.mkdir(exist_ok=True)
    (kernels / "cgroup.subtree_control").write_text(" ".join(f"+{name}" for name in wanted))
    return CgroupV2(kernels)
