"""What this machine offers kernels: CPUs, memory and GPUs (from NVML, else `nvidia-smi`)."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import shutil
import subprocess

from kernels.messages import Gpu, Resources

log = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = [
    "--query-gpu=index,name,memory.total,uuid",
    "--format=csv,noheader,nounits",
]


def detect() -> Resources:
    return Resources(cpus=_cpus(), memory_mb=_memory_mb(), gpus=detect_gpus())


def _cpus() -> int:
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))  # what this process may use, cgroups included
    return os.cpu_count() or 1


def _memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return 0


def detect_gpus() -> list[Gpu]:
    gpus = _from_nvml()
    if gpus is None:
        gpus = _from_nvidia_smi()
    return gpus


def _from_nvml() -> list[Gpu] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None  # no driver here: not a GPU machine, or only nvidia-smi works
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                Gpu(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_mb=int(memory.total) // (1024 * 1024),
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                )
            )
        return gpus
    except pynvml.NVMLError as error:
        log.warning("NVML failed, trying nvidia-smi: %s", error)
        return None
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def _from_nvidia_smi() -> list[Gpu]:
    command = shutil.which("nvidia-smi")
    if command is None:
        return []
    try:
        result = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
            [command, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("nvidia-smi failed; no GPUs reported: %s", type(error).__name__)
        return []
    return parse_nvidia_smi(result.stdout)


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Parse `nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader,
    nounits`. Rows that do not parse (a driver message, "[N/A]") are skipped, not guessed."""
    gpus = []
    for row in csv.reader(io.StringIO(text), skipinitialspace=True):
        if len(row) < 3:
            continue
        index, name, memory = (cell.strip() for cell in row[:3])
        uuid = row[3].strip() if len(row) > 3 else ""
        try:
            gpus.append(Gpu(index=int(index), name=name, memory_mb=int(float(memory)), uuid=uuid))
        except ValueError:
            log.warning("skipping an nvidia-smi row that does not parse")
    return gpus


def gpu_memory_used(indices: list[int]) -> int | None:
    """Bytes in use on these GPUs (a kernel holds its GPUs alone), or None without NVML."""
    if not indices:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
    except (ImportError, Exception):  # no library, or no driver
        return None
    try:
        return sum(
            int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used)
            for i in indices
        )
    except pynvml.NVMLError:
        return None
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
