"""The attacks an editor's kernel tried before kernels were sandboxed, as regression tests.

Everything runs through a real server and a real worker whose kernels are boxed by
bubblewrap, with small limits so the machine stays safe.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kernels.environments import SCIENTIFIC_STACK
from tests.gateway.conftest import Cluster, running_cluster, wait_for_workers
from tests.gateway.helpers import cell, run, status, text_of
from tests.support import (
    ENVS_DIR,
    WorkerProcess,
    YClient,
    eventually,
    notebook_with_code,
    sync_url,
)

RUNTIME_TYPES = [
    {"name": "cpu", "label": "CPU", "memory_mb": 400, "max_processes": 48},
]


@pytest.fixture(scope="module")
def boxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("sandbox"),
        {"boxer": ["--max-kernels", "16"]},
        TANDEM_RUNTIME_TYPES=json.dumps(RUNTIME_TYPES),
    ) as cluster:
        yield cluster


def probe(cluster: Cluster, code: str) -> tuple[str, list[str]]:
    api = cluster.api("ann")
    return notebook_with_code(api, [code])


async def run_and_read(cluster: Cluster, code: str, timeout: float = 90) -> str:
    api = cluster.api("ann")
    nb, ids = notebook_with_code(api, [code])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(api, nb, ids, client, timeout=timeout)
        return text_of(client, ids[0])


def worker_pid(cluster: Cluster) -> int:
    proc = cluster.workers[0].proc
    assert proc is not None
    return proc.pid


async def test_a_kernel_cannot_reach_the_server_the_worker_or_their_files(boxed: Cluster) -> None:
    server_proc = boxed.server.proc
    assert server_proc is not None
    data_dir = boxed.server.data_dir.resolve()
    token = boxed.workers[0].token
    code = f"""
import os, glob, signal
found = []
for path in [{str(data_dir)!r}, {str(data_dir / "tandem.db")!r},
             {str(ENVS_DIR.parent / "pyproject.toml")!r}, {str(ENVS_DIR.parent / "server")!r},
             {str(boxed.workers[0].state_dir)!r}, "/home", "/var/lib", "/etc/shadow"]:
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1)
        found.append(path)
    except OSError:
        pass
print("reachable:", found)
pids = [p for p in os.listdir("/proc") if p.isdigit()]
leaks = []
for pid in pids:
    for name in ("environ", "cmdline"):
        try:
            data = open(f"/proc/{{pid}}/{{name}}", "rb").read()
        except OSError:
            continue
        if {token!r}.encode() in data or b"TANDEM_" in data or b"server" in data:
            leaks.append((pid, name))
print("leaks:", leaks)
print("processes:", len(pids))
for target in ({server_proc.pid}, {worker_pid(boxed)}):
    try:
        os.kill(target, signal.SIGTERM)
        print("signalled", target)
    except ProcessLookupError:
        pass
print("env:", sorted(k for k in os.environ if k.startswith("TANDEM")))
caps = [line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff")]
print("uid:", os.getuid(), "caps:", caps[0])
for target in ["/usr/lib/tandem-was-here", os.path.join(os.__file__.rsplit("/", 1)[0], "x"),
               os.path.join(__import__("sys").prefix, "x")]:
    try:
        open(target, "w").write("x")
        print("wrote", target)
    except OSError:
        pass
"""
    out = await run_and_read(boxed, code)
    assert "reachable: []" in out, out
    assert "leaks: []" in out, out
    assert "signalled" not in out and "wrote" not in out, out
    assert "env: []" in out, out
    uid = int(out.split("uid: ")[1].split()[0])
    assert uid not in (0, os.getuid()), out  # neither root nor the worker's user
    assert "caps: 0000000000000000" in out, out
    processes = int(out.split("processes: ")[1].split()[0])
    assert processes < 10, out  # its own PID namespace: bwrap's init and the kernel's own
    assert server_proc.poll() is None and boxed.workers[0].proc.poll() is None  # type: ignore[union-attr]


async def test_kernels_cannot_reach_each_other(boxed: Cluster) -> None:
    """The old attack: read a sibling kernel's connection file (its HMAC key) and run code
    in it. Now each kernel's files are out of the other's sight, and its channels are unix
    sockets in its own run directory, not TCP ports another kernel could connect to."""
    secret_code = (
        "import ipykernel.connect, os\nSECRET = 'hunter2'\n"
        "print(ipykernel.connect.get_connection_file())\nprint(os.getcwd())"
    )
    victim = await run_and_read(boxed, secret_code)
    connection_file = victim.splitlines()[0]
    assert json.loads(Path(connection_file).read_text())["transport"] == "ipc"
    workspaces = boxed.workers[0].state_dir / "workspaces"
    code = f"""
import os
for path in [{connection_file!r}, {str(Path(connection_file).parent)!r}, {str(workspaces)!r}]:
    print(path, os.path.exists(path))
print("content:", sorted(os.listdir("/content")))
"""
    out = await run_and_read(boxed, code)
    assert out.count(" False") == 3, out
    listing = out.split("content: ")[1].strip()
    assert set(json.loads(listing.replace("'", '"'))) <= {".local", ".ipython", ".cache"}, out


async def test_memory_limit_kills_only_that_kernel(boxed: Cluster) -> None:
    api = boxed.api("ann")
    bystander, (b_cell,) = notebook_with_code(api, ["x = 41\nx + 1"])
    hog, (h_cell,) = notebook_with_code(api, ["x = bytearray(1200 * 1024 * 1024)"])
    token = boxed.person("ann").token
    async with (
        YClient(sync_url(boxed.server, bystander, token)) as b_client,
        YClient(sync_url(boxed.server, hog, token)) as h_client,
    ):
        await run(api, bystander, [b_cell], b_client)
        await run(api, hog, [h_cell], h_client, timeout=60)
        message = text_of(h_client, h_cell)
        assert "out of memory: limit 400 MB" in message, message
        assert cell(h_client, h_cell)["execution_state"] == "idle"
        await run(api, bystander, [b_cell], b_client)  # the other kernel lives on
        assert text_of(b_client, b_cell) == "42"
    assert boxed.server.proc is not None and boxed.server.proc.poll() is None


async def test_a_fork_loop_stops_at_max_processes(boxed: Cluster) -> None:
    code = """
import os, time
children, error = [], None
for _ in range(200):  # bounded: the limit is 48
    try:
        pid = os.fork()
    except OSError as e:
        error = e
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(len(children), type(error).__name__)
"""
    out = await run_and_read(boxed, code)
    forked, error = out.split()
    assert int(forked) < 48 and error == "BlockingIOError", out


async def test_usage_and_sandbox_are_in_the_runtime_status(boxed: Cluster) -> None:
    api = boxed.api("ann")
    nb, ids = notebook_with_code(api, ["open('data.bin', 'wb').write(b'x' * 3_000_000)"])
    async with YClient(sync_url(boxed.server, nb, boxed.person("ann").token)) as client:
        await run(api, nb, ids, client)

        def reported() -> bool:
            usage = status(api, nb).get("usage") or {}
            return (usage.get("disk_bytes") or 0) >= 3_000_000

        await eventually(reported, 15)
    runtime = status(api, nb)
    assert runtime["sandbox"]["kind"] == "bubblewrap"
    assert runtime["usage"]["memory_bytes"] > 10_000_000
    assert runtime["usage"]["limits"]["memory_mb"] == 400
    assert runtime["usage"]["limits"]["max_processes"] == 48
    workers = boxed.admin_api.client.get("/api/workers").json()
    assert workers[0]["sandbox"]["kind"] == "bubblewrap"


def tiny_wheel(name: str, version: str, body: str) -> bytes:
    """A pure-Python wheel with one module, made in memory."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": body,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tandem-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


async def test_pip_install_lands_in_the_notebooks_layer_and_survives_a_restart(
    boxed: Cluster,
) -> None:
    wheel = base64.b64encode(tiny_wheel("tandem_probe", "1.0", "ANSWER = 42\n")).decode()
    api = boxed.api("ann")
    nb, ids = notebook_with_code(
        api,
        [
            f"import base64\nopen('tandem_probe-1.0-py3-none-any.whl', 'wb')"
            f".write(base64.b64decode({wheel!r}))",
            "%pip install --no-index --no-deps ./tandem_probe-1.0-py3-none-any.whl",
            "import tandem_probe\nprint(tandem_probe.ANSWER, tandem_probe.__file__)",
        ],
    )
    async with YClient(sync_url(boxed.server, nb, boxed.person("ann").token)) as client:
        await run(api, nb, ids, client, timeout=120)
        assert "Successfully installed tandem-probe-1.0" in text_of(client, ids[1]), text_of(
            client, ids[1]
        )
        assert text_of(client, ids[2]).startswith("42 /content/.local/lib/python")
        response = api.client.post(f"/api/notebooks/{nb}/kernel/restart")
        assert response.status_code in (200, 202, 204), response.text
        await eventually(lambda: status(api, nb)["status"] == "idle", 60)
        await run(api, nb, [ids[2]], client)
        assert text_of(client, ids[2]).startswith("42 ")
    # Nothing reached the environment, and another notebook does not see the package.
    assert not list(ENVS_DIR.glob("*/lib/python*/site-packages/tandem_probe*"))
    other = await run_and_read(
        boxed,
        "import importlib.util\nprint(importlib.util.find_spec('tandem_probe'))",
    )
    assert other == "None\n"


async def test_the_data_dir_is_private(boxed: Cluster) -> None:
    data_dir = boxed.server.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "tandem.db").stat().st_mode) == 0o600


async def test_no_sandbox_no_kernel_and_the_reason_in_one_line(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        cluster.start_worker("no-bwrap", env={"PATH": "/nonexistent"})
        wait_for_workers(cluster, 1)
        sandbox = cluster.workers_online()[0]["sandbox"]
        assert sandbox["kind"] == "unavailable"
        assert "bwrap" in sandbox["detail"] and "\n" not in sandbox["detail"]
        api = cluster.api("ann")
        nb, ids = notebook_with_code(api, ["print('never')"])
        assert api.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids}).is_success
        await eventually(lambda: status(api, nb)["status"] == "disconnected", 60)
        assert "not found: install bubblewrap" in status(api, nb)["reason"]
        assert status(api, nb)["sandbox"]["kind"] == "unavailable"  # the badge can say why


async def test_unsandboxed_is_explicit_and_shown(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        cluster.start_worker("laptop", args=["--unsafe-no-sandbox"])
        wait_for_workers(cluster, 1)
        api = cluster.api("ann")
        nb, ids = notebook_with_code(api, ["import sys\nprint(sys.prefix)"])
        async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
            await run(api, nb, ids, client)
            assert str(ENVS_DIR) in text_of(client, ids[0])  # still not the server's Python
        sandbox = status(api, nb)["sandbox"]
        assert sandbox["kind"] == "none" and "UNSANDBOXED" in sandbox["detail"]
        assert "UNSANDBOXED" in cluster.workers[0].log()


@pytest.mark.timeout(900)
async def test_the_default_environment_has_the_scientific_stack(tmp_path: Path) -> None:
    """What Colab users import on first contact, in the sandbox (built once per machine)."""
    environments = json.dumps({"default": SCIENTIFIC_STACK})
    with running_cluster(
        tmp_path / "data", {"stack": []}, TANDEM_ENVIRONMENTS=environments
    ) as cluster:
        out = await run_and_read(
            cluster,
            "import numpy, pandas, matplotlib, scipy, sklearn, seaborn, plotly, ipywidgets\n"
            "import tqdm, requests, PIL, sys, joblib, tempfile\n"
            "assert joblib.cpu_count() >= 1 and tempfile.mkstemp()\n"
            "import matplotlib.pyplot as plt\n"
            "plt.plot([1, 2]); plt.savefig('plot.png')\n"
            "print(pandas.DataFrame({'a': numpy.arange(3)}).a.sum(), sys.prefix)",
            timeout=840,
        )
        assert out.startswith("3 ") and str(ENVS_DIR) in out, out


async def test_a_worker_reads_its_token_from_a_file_and_hands_it_to_no_kernel(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        token = cluster.worker_token("filed")
        token_file = tmp_path / "worker-token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        worker = WorkerProcess(
            cluster.server, "", "filed", args=["--token-file", str(token_file)]
        ).start()
        cluster.workers.append(worker)
        wait_for_workers(cluster, 1)
        assert token not in " ".join(psutil.Process(worker.proc.pid).cmdline())  # type: ignore[union-attr]
        out = await run_and_read(
            cluster,
            f"import os\nprint(os.path.exists({str(token_file)!r}), "
            f"any({token!r} in v for v in os.environ.values()))",
        )
        assert out == "False False\n"


async def test_what_an_editor_plants_in_content_does_not_reach_the_worker_or_later_kernels(
    boxed: Cluster, tmp_path: Path
) -> None:
    """Review findings: a symlink in place of the pip layer made the root worker chown
    any host directory; IPython startup files in /content ran in every later kernel."""
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    api = boxed.api("ann")
    plant = (
        "import os, shutil\nshutil.rmtree('/content/.local')\n"
        f"os.symlink({str(victim)!r}, '/content/.local')\n"
        "startup = '/content/.ipython/profile_default/startup'\nos.makedirs(startup)\n"
        "open(startup + '/00-x.py', 'w').write('PLANTED = 1')"
    )
    nb, ids = notebook_with_code(api, [plant, "print('PLANTED' in globals())"])
    async with YClient(sync_url(boxed.server, nb, boxed.person("ann").token)) as client:
        await run(api, nb, [ids[0]], client)
        response = api.client.post(f"/api/notebooks/{nb}/kernel/restart")
        assert response.status_code in (200, 202, 204), response.text
        await run(api, nb, [ids[1]], client)
        assert text_of(client, ids[1]) == "False\n"
    assert victim.stat().st_uid == os.getuid() and list(victim.iterdir()) == []
