"""`tandem serve`'s local worker is bound to the server that started it.

A `kill -9` of the server takes the local worker and its kernels along, so a restarted
server on the same data directory runs exactly one local worker; the worker's token travels
on its standard input, never on its command line or in its environment.

A dial-in worker (`tandem worker`, started on its own) is not bound to whatever started it:
it outlives a server restart and dials in again, which
tests/gateway/test_workers.py::test_worker_reconnects_after_a_server_restart covers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.gateway.conftest import Cluster
from tests.gateway.helpers import run, text_of
from tests.support import ServerProcess, YClient, eventually, notebook_with_code, sync_url

TOKEN_PREFIX = "tdw_"  # every worker token starts so (server/gateway/tokens.py)


def local_workers(data_dir: Path) -> list[psutil.Process]:
    """Every `server worker` process on this machine that is the local worker of a server
    on `data_dir` (its state directory is in there), whoever its parent is now."""
    state_dir = str((data_dir / "worker").resolve())
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            cmdline = proc.cmdline()
            if (
                cmdline[1:4] == ["-m", "server", "worker"]
                and state_dir in cmdline
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
    return found


def argument(proc: psutil.Process, flag: str) -> str:
    cmdline = proc.cmdline()
    assert flag in cmdline, cmdline
    return str(cmdline[cmdline.index(flag) + 1])


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def descendants(server: ServerProcess) -> list[psutil.Process]:
    assert server.proc is not None
    return list(psutil.Process(server.proc.pid).children(recursive=True))


def kernel_tree(server: ServerProcess) -> tuple[psutil.Process, list[psutil.Process]]:
    """The server's local worker, and everything under it: its sandboxes and kernels."""
    below = descendants(server)
    workers = [p for p in below if p.cmdline()[1:4] == ["-m", "server", "worker"]]
    assert len(workers) == 1, [p.cmdline() for p in below]
    kernels = [p for p in below if "ipykernel_launcher" in p.cmdline()]
    assert kernels, [p.cmdline() for p in below]
    return workers[0], below


@contextlib.contextmanager
def reaped(procs: list[psutil.Process]) -> Iterator[list[psutil.Process]]:
    """On the way out, SIGKILL whatever of `procs` survived (a failing test leaks nothing)."""
    try:
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                if not gone(proc):
                    proc.kill()


async def run_a_cell(server: ServerProcess, cluster: Cluster, source: str) -> str:
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, [source])
    async with YClient(sync_url(server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        return text_of(client, ids[0])


async def test_a_killed_server_takes_its_local_worker_and_kernels_along(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, env={"TANDEM_LOCAL_WORKER": "true"})
    server.start()
    cluster = Cluster(server)
    with reaped([]) as recorded:
        try:
            await eventually(lambda: len(cluster.workers_online()) == 1, 30)
            assert await run_a_cell(server, cluster, "6 * 7") == "42"
            _, below = kernel_tree(server)
            recorded += below
            server.kill()
            # However the server ended, the worker and every process under it end too.
            await eventually(lambda: all(gone(p) for p in recorded), 10, interval=0.1)

            # A server started again on the same data directory runs one local worker:
            # its own, and no survivor of the killed one.
            server.start()
            assert server.proc is not None
            new_pid = server.proc.pid
            await eventually(lambda: len(cluster.workers_online()) == 1, 30)
            assert await run_a_cell(server, cluster, "'again'") == "'again'"
            recorded += descendants(server)
            workers = local_workers(data_dir)
            assert len(workers) == 1, [p.cmdline() for p in workers]
            assert workers[0].ppid() == new_pid
            assert argument(workers[0], "--parent-pid") == str(new_pid)
            assert len(cluster.workers_online()) == 1
        finally:
            cluster.close()
            server.stop()
        # A clean stop takes them along as well.
        await eventually(lambda: all(gone(p) for p in recorded), 15, interval=0.1)
    assert local_workers(data_dir) == []
    assert "Traceback" not in server.log(), server.log()[-3000:]


async def test_the_local_worker_token_is_on_stdin_only(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"TANDEM_LOCAL_WORKER": "true"})
    server.start()
    cluster = Cluster(server)
    try:
        await eventually(lambda: len(cluster.workers_online()) == 1, 30)
        assert await run_a_cell(server, cluster, "1 + 1") == "2"
        worker, below = kernel_tree(server)
        cmdline = worker.cmdline()
        assert argument(worker, "--token-file") == "-"
        assert "--token" not in cmdline
        # Neither the worker nor anything it started (sandbox, kernel) shows the token.
        for proc in below:
            shown = " ".join(proc.cmdline())
            assert TOKEN_PREFIX not in shown, shown
            environ = proc.environ()
            assert "TANDEM_WORKER_TOKEN" not in environ, proc.cmdline()
            assert not any(TOKEN_PREFIX in value for value in environ.values()), proc.cmdline()
    finally:
        cluster.close()
        server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]
