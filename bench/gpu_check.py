"""GPU check: a server and a worker on this machine, a CUDA matrix product in a cell.

Checks that the worker reports the machine's GPUs, that a notebook on the `gpu` runtime
gets one (`CUDA_VISIBLE_DEVICES`) and, inside its sandbox, that GPU's device node alone,
that torch computes on it, and that the runtime status names the same GPU as torch does.
The kernel's environment (`default-gpu`: torch) is built by the worker with pip: the
machine needs PyPI, or a wheelhouse named by PIP_FIND_LINKS with PIP_NO_INDEX=1.
Prints what it saw; exits 0 when every check passes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels.resources import detect_gpus
from tests.gateway.helpers import run, status, text_of
from tests.support import (
    Api,
    ServerProcess,
    WorkerProcess,
    YClient,
    make_people,
    notebook_with_code,
    sync_url,
)

CELL = """
import os, glob, time, torch
print("nodes:", " ".join(sorted(glob.glob("/dev/nvidia[0-9]*"))))
a = torch.randn(4096, 4096, device="cuda")
torch.cuda.synchronize()
started = time.perf_counter()
b = a @ a
torch.cuda.synchronize()
ms = (time.perf_counter() - started) * 1000
print("device:", torch.cuda.get_device_name(0))
print("visible:", os.environ.get("CUDA_VISIBLE_DEVICES"))
print("finite:", bool(torch.isfinite(b).all().item()))
print(f"matmul 4096x4096: {ms:.1f} ms")
"""


async def main() -> int:
    gpus = detect_gpus()
    print("worker sees:", [(g.index, g.name, g.memory_mb) for g in gpus])
    if not gpus:
        print("FAIL: no GPU detected (NVML and nvidia-smi found none)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        environments = json.dumps({"default": [], "default-gpu": ["torch"]})
        server = ServerProcess(Path(tmp) / "data", env={"TANDEM_ENVIRONMENTS": environments})
        server.start()
        admin = make_people(server.data_dir, ["admin"], admin=True)["admin"]
        api = Api(server, admin)
        token = api.client.post("/api/workers/tokens", json={"name": "gpu"}).json()["token"]
        worker = WorkerProcess(
            server, token, "gpu-node", env={"TANDEM_ENVIRONMENTS": environments}
        ).start()
        checks: dict[str, bool] = {}
        try:
            deadline = time.monotonic() + 60
            while not api.client.get("/api/workers").json():
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker did not connect:\n" + worker.log())
                await asyncio.sleep(0.2)
            listed = api.client.get("/api/workers").json()[0]
            checks["worker reports the GPUs"] = len(listed["gpus"]) == len(gpus)
            nb, ids = notebook_with_code(api, [CELL])
            assert api.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "gpu"}).is_success
            async with YClient(sync_url(server, nb, admin.token)) as client:
                await run(api, nb, ids, client, timeout=300)
                output = text_of(client, ids[0])
                print(output)
                runtime = status(api, nb)
                print("runtime status:", runtime["status"], runtime["worker"], runtime["gpus"])
                fields = dict(line.split(":", 1) for line in output.splitlines() if ":" in line)
                device = fields.get("device", "").strip()
                checks["cell ran on CUDA"] = "finite: True" in output
                visible = fields.get("visible", "").strip()
                checks["one GPU given to the kernel"] = visible.isdigit()
                checks["only its device node in the box"] = fields.get("nodes", "").split() == [
                    f"/dev/nvidia{visible}"
                ]
                checks["status names torch's GPU"] = bool(device) and device in runtime["gpus"]
        finally:
            worker.stop()
            server.stop()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    return 0 if checks and all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
