"""GPU detection from recorded nvidia-smi output (and NVML where a GPU exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernels.resources import detect, detect_gpus, parse_nvidia_smi
from server.vocabulary import RuntimeType

DATA = Path(__file__).parent / "data"


def test_parse_two_h100s() -> None:
    gpus = parse_nvidia_smi((DATA / "nvidia-smi-h100x2.csv").read_text())
    assert [(g.index, g.name, g.memory_mb) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", 81559),
        (1, "NVIDIA H100 80GB HBM3", 81559),
    ]
    assert gpus[1].uuid.startswith("GPU-9a2e")


def test_rows_that_do_not_parse_are_skipped() -> None:
    text = (DATA / "nvidia-smi-mixed.csv").read_text()
    text += "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
    gpus = parse_nvidia_smi(text)
    assert [g.name for g in gpus] == ["Tesla T4", "NVIDIA A100-SXM4-40GB"]


def test_runtime_types_match_gpus_by_model_and_memory() -> None:
    t4, a100 = parse_nvidia_smi((DATA / "nvidia-smi-mixed.csv").read_text())
    assert RuntimeType(name="gpu", gpus=1).accepts(t4)
    assert RuntimeType(name="a100", gpus=1, gpu_model="a100").accepts(a100)
    assert not RuntimeType(name="a100", gpus=1, gpu_model="a100").accepts(t4)
    assert not RuntimeType(name="big", gpus=1, min_gpu_memory_mb=20000).accepts(t4)


def test_detect_reports_this_machine() -> None:
    resources = detect()
    assert resources.cpus >= 1
    assert resources.memory_mb > 0


def test_nvml_where_a_gpu_exists() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver on this machine")
    count = pynvml.nvmlDeviceGetCount()
    pynvml.nvmlShutdown()
    assert len(detect_gpus()) == count
