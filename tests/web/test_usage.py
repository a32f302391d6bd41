"""The runtime badge's formatting (static/src/usage.js), a pure module, run under Node."""

from __future__ import annotations

from typing import Any

from tests.support_web import run_module

MiB = 2**20


def call(function: str, *args: Any) -> Any:
    return run_module("usage.js", f"m.{function}(...args)", *args)


def usage(memory: int | None, disk: int | None, gpu: int | None, **limits: float) -> dict[str, Any]:
    return {
        "memory_bytes": memory,
        "disk_bytes": disk,
        "gpu_memory_bytes": gpu,
        "limits": {"memory_mb": 0, "cpus": 0, "max_processes": 0, "disk_mb": 0, **limits},
    }


def test_bytes_read_as_mb_then_gb() -> None:
    assert [call("formatBytes", n) for n in (0, 312 * MiB, 1536 * MiB, 200 * 1024 * MiB)] == [
        "0 MB",
        "312 MB",
        "1.5 GB",
        "200 GB",
    ]


def test_meters_against_limits_and_without() -> None:
    meters = call("usageMeters", usage(312 * MiB, 5 * MiB, 2048 * MiB, memory_mb=400, disk_mb=0))
    assert [(m["name"], m["label"], m["text"], m["fraction"]) for m in meters] == [
        ("ram", "RAM", "312 MB / 400 MB", 0.78),
        ("disk", "Disk", "5 MB", None),
        ("gpu", "GPU", "2.0 GB", None),
    ]
    assert meters[0]["detail"] == ("RAM: 312 MB of 400 MB (78%) · 327,155,712 of 419,430,400 bytes")
    assert meters[1]["detail"] == "Disk: 5 MB, no limit · 5,242,880 bytes"
    assert meters[2]["detail"].startswith("GPU memory: 2.0 GB, no limit")
    # Over the limit the bar is full, not past it; an unmeasured figure has no meter.
    over = call("usageMeters", usage(500 * MiB, None, None, memory_mb=400, disk_mb=100))
    assert [(m["name"], m["fraction"]) for m in over] == [("ram", 1)]
    assert call("usageMeters", None) == []


def test_detail_names_every_limit() -> None:
    detail = call("usageDetail", usage(None, 0, None, cpus=1.5, max_processes=256, disk_mb=10))
    assert detail.split("\n") == [
        "Disk: 0 MB of 10 MB (0%) · 0 of 10,485,760 bytes",
        "RAM: not measured",
        "CPUs: 1.5",
        "Processes: at most 256",
    ]
    assert call("usageDetail", None) == ""


def test_sandbox_marks() -> None:
    assert call("sandboxMark", None) is None
    loud = call("sandboxMark", {"kind": "none", "limits": "none", "detail": "UNSANDBOXED: why"})
    assert loud == {
        "kind": "none",
        "text": "UNSANDBOXED",
        "level": "danger",
        "title": "UNSANDBOXED: why",
    }
    broken = call("sandboxMark", {"kind": "unavailable", "limits": "", "detail": "no userns"})
    assert broken["text"] == "Kernels cannot start: no userns"
    assert broken["level"] == "danger"
    quiet = call("sandboxMark", {"kind": "bubblewrap", "limits": "cgroup v2", "detail": "note"})
    assert quiet["text"] == "sandboxed"
    assert quiet["level"] == "quiet"
    assert quiet["title"] == (
        "Kernels run in a bubblewrap sandbox.\nLimits enforced by cgroup v2.\nnote"
    )
    # A kind this page does not know is taken as the worst: no sandbox.
    assert call("sandboxMark", {"kind": "chroot", "limits": "", "detail": ""})["level"] == "danger"
