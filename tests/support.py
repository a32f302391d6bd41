"""What the tests share: a real server process, people with tokens, and real Yjs clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from pycrdt import Array, Doc, Provider
from sqlalchemy import Connection, text
from sqlmodel import Session

from server.auth import service as auth
from server.config import Settings
from server.db import make_engine, migrate

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "node"
CORPUS = ROOT.parent / "shared" / "corpus"
# Workers of every test share built runtime environments (built once per machine), and the
# environments hold ipykernel alone unless a test asks for the scientific stack.
ENVS_DIR = (ROOT / ".test-envs").resolve()  # kernels report the real path, not a link
KERNEL_ENV = {
    "TANDEM_ENVS_DIR": str(ENVS_DIR),
    "TANDEM_ENVIRONMENTS": json.dumps({"default": [], "default-gpu": []}),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kill_now(proc: subprocess.Popen[bytes] | None) -> None:
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def terminate(proc: subprocess.Popen[bytes] | None, grace: float, group: bool = False) -> None:
    """SIGTERM, then SIGKILL (the whole process group with `group`) after `grace` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(5)


@dataclass
class ServerProcess:
    """`tandem serve` in a child process, as a user would run it."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "server.log"
        # Tests start the workers they need themselves, unless they ask for the local one.
        env = {
            **os.environ,
            **KERNEL_ENV,
            "TANDEM_ROOM_GRACE_SECONDS": "1",
            # A killed worker's runtime is lost after 2 s, not a minute (tests that need a
            # worker to come back set their own).
            "TANDEM_WORKER_RECONNECT_GRACE_SECONDS": "2",
            "TANDEM_LOCAL_WORKER": "false",
            **self.env,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child process owns it)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing. What is stored is what survives."""
        kill_now(self.proc)

    def stop(self) -> None:
        terminate(self.proc, grace=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@dataclass
class Person:
    username: str
    password: str
    token: str


def make_people(
    data_dir: Path, names: list[str], *, admin: bool = False, database_url: str = ""
) -> dict[str, Person]:
    """People with tokens, in the server's database (its data dir's SQLite by default)."""
    engine = make_engine(Settings(data_dir=data_dir, database_url=database_url))
    migrate(engine)
    people = {}
    with Session(engine) as db:
        for name in names:
            password = f"{name}-password"
            user = auth.create_user(db, name, password, is_admin=admin)
            people[name] = Person(name, password, auth.create_token(db, user, "tests"))
        db.commit()
    engine.dispose()
    return people


def start_with_alice(server: ServerProcess, **env: str) -> tuple[Person, Api]:
    """Start a server of the test's own with these TANDEM_* settings; alice owns it."""
    server.env.update(env)
    server.start()
    database_url = server.env.get("TANDEM_DATABASE_URL", "")
    alice = make_people(server.data_dir, ["alice"], database_url=database_url)["alice"]
    return alice, Api(server, alice)


@contextlib.contextmanager
def stored(server: ServerProcess) -> Iterator[Connection]:
    """A connection to the server's database, whichever back end it is on; what the block
    did is committed when it ends."""
    url = server.env.get("TANDEM_DATABASE_URL", "")
    engine = make_engine(Settings(data_dir=server.data_dir, database_url=url))
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def update_log_rows(server: ServerProcess) -> int:
    """How many updates wait in the log (not yet folded into a snapshot)."""
    with stored(server) as database:
        return int(database.execute(text("SELECT count(*) FROM update_log")).scalar_one())


class Api:
    """REST calls as one person (bearer token)."""

    def __init__(self, server: ServerProcess, person: Person) -> None:
        self.server = server
        self.person = person
        self.client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {person.token}"}, timeout=30
        )

    def create(self, title: str = "Untitled") -> str:
        response = self.client.post("/api/notebooks", json={"title": title})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def upload(self, name: str, raw: bytes, title: str | None = None) -> httpx.Response:
        data = {"title": title} if title else None
        return self.client.post("/api/notebooks", files={"file": (name, raw)}, data=data)

    def share(self, notebook_id: str, username: str, role: str) -> None:
        response = self.client.put(
            f"/api/notebooks/{notebook_id}/members/{username}", json={"role": role}
        )
        assert response.status_code == 200, response.text

    def export(self, notebook_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/notebooks/{notebook_id}/export")
        assert response.status_code == 200, response.text
        return dict(response.json())


def sync_url(server: ServerProcess, notebook_id: str, token: str | None) -> str:
    url = f"{server.ws_url}/api/notebooks/{notebook_id}/sync"
    return f"{url}?token={token}" if token else url


@dataclass(frozen=True)
class Handshake:
    """How a server answered one websocket handshake: 101 (the socket then closed at once),
    or the status of its refusal and the refusal's Retry-After header."""

    status: int
    retry_after: str | None = None


async def handshake(
    url: str, forwarded_for: str | None = None, local_host: str | None = None
) -> Handshake:
    """Open a websocket and close it, as sent through a proxy that says the client is
    `forwarded_for` (believed only from TANDEM_TRUSTED_PROXIES), or from `local_host`."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    bound: dict[str, Any] = {"local_addr": (local_host, 0)} if local_host else {}
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=30, **bound):
            return Handshake(101)
    except websockets.InvalidStatus as refused:
        response = refused.response
        return Handshake(response.status_code, response.headers.get("Retry-After"))


def bad_token() -> str:
    """An API token of the right shape that was never made: only a look-up can refuse it."""
    return auth.TOKEN_PREFIX + secrets.token_urlsafe(32)


async def bad_sign_ins(
    server: ServerProcess, notebook_id: str, forwarded_for: str, times: int
) -> list[int]:
    """Open the notebook's sync socket `times` with a bad token, one after the other, as
    the client a trusted proxy names; how each was answered."""
    url = sync_url(server, notebook_id, None)
    answers = [await handshake(f"{url}?token={bad_token()}", forwarded_for) for _ in range(times)]
    return [answer.status for answer in answers]


class _Channel:
    """pycrdt's Provider speaks to this; it keeps the non-sync messages for the test."""

    def __init__(self, ws: websockets.ClientConnection, others: list[bytes]) -> None:
        self._ws = ws
        self._others = others

    @property
    def path(self) -> str:
        return "sync"

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                message = await self._ws.recv()
            except websockets.ConnectionClosed:
                raise StopAsyncIteration from None
            assert isinstance(message, bytes)
            if message and message[0] == 0:
                return message
            self._others.append(message)

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ws.send(message)

    async def recv(self) -> bytes:
        return await self.__anext__()


class YClient:
    """A pycrdt document kept in sync with the server by pycrdt's own Provider."""

    def __init__(self, url: str, doc: Doc[Any] | None = None) -> None:
        self.url = url
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self.others: list[bytes] = []
        self.ws: websockets.ClientConnection | None = None
        self.provider: Provider | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, wait: bool = True) -> YClient:
        self.others.clear()
        self.ws = await websockets.connect(self.url, max_size=None)
        self.provider = Provider(self.doc, _Channel(self.ws, self.others))
        # The provider's task group lives in a task of its own, so a dying connection
        # cancels the provider, never the test.
        self._task = asyncio.create_task(self._run(self.provider, self.ws))
        if wait:
            await asyncio.wait_for(self.provider.synced.wait(), 20)
        return self

    @staticmethod
    async def _run(provider: Provider, ws: websockets.ClientConnection) -> None:
        async with provider:
            await ws.wait_closed()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def __aenter__(self) -> YClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def cells(self) -> Array[Any]:
        return self.doc.get("cells", type=Array)

    def denials(self) -> list[bytes]:
        return [m for m in self.others if m[:2] == b"\x02\x00"]

    async def wait_closed(self, timeout: float = 5) -> int | None:
        assert self.ws is not None
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.ws.close_code


def state_vector(sv: bytes) -> dict[int, int]:
    from server.protocol import read_var_uint

    count, pos = read_var_uint(sv, 0)
    result = {}
    for _ in range(count):
        client, pos = read_var_uint(sv, pos)
        clock, pos = read_var_uint(sv, pos)
        result[client] = clock
    return result


async def eventually(check: Any, timeout: float = 10, interval: float = 0.02) -> None:
    """Wait until `check()` is true (the network is asynchronous; sleeps are not)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class NodeClient:
    """yjs + y-websocket in Node: the stock client, driven line by line."""

    def __init__(self, server: ServerProcess, notebook_id: str, token: str, seed: int) -> None:
        self.options = {
            "server": f"{server.ws_url}/api/notebooks",
            "notebook": notebook_id,
            "token": token,
            "seed": seed,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> NodeClient:
        self.proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DIR / "client.mjs"),
            json.dumps(self.options),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=NODE_DIR,
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_for("synced")
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_for(self, event: str, after: int = 0, timeout: float = 20) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events[after:] if e.get("event") == event), None)

        await eventually(lambda: found() is not None, timeout)
        result = found()
        assert result is not None
        return result

    async def request(self, command: dict[str, Any], event: str) -> dict[str, Any]:
        mark = len(self.events)
        await self.send(command)
        return await self.wait_for(event, after=mark)

    async def state(self) -> dict[str, Any]:
        return await self.request({"cmd": "state"}, "state")

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.request({"cmd": "exit"}, "done")
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


@contextlib.asynccontextmanager
async def node_client(
    server: ServerProcess, notebook_id: str, token: str, seed: int = 1
) -> AsyncIterator[NodeClient]:
    client = NodeClient(server, notebook_id, token, seed)
    try:
        yield await client.start()
    finally:
        await client.stop()


@dataclass
class WorkerProcess:
    """`tandem worker` in a child process, dialling into a test server."""

    server: ServerProcess
    token: str
    name: str
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log_path = self.server.data_dir / f"worker-{self.name}.log"
        env = {**os.environ, **KERNEL_ENV, **self.env}
        if self.token:
            env["TANDEM_WORKER_TOKEN"] = self.token
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "server", "worker"),
                    *("--server", self.server.url, "--name", self.name, *self.args),
                    *("--state-dir", str(self.state_dir)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,  # its kernels too can be killed as one group
            )
        return self

    @property
    def state_dir(self) -> Path:
        return self.server.data_dir / f"worker-{self.name}"

    def log(self) -> str:
        return (self.server.data_dir / f"worker-{self.name}.log").read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker alone (its kernels notice their parent is gone)."""
        kill_now(self.proc)

    def stop(self) -> None:
        terminate(self.proc, grace=20, group=True)


def notebook_with_code(api: Api, sources: list[str], title: str = "Runs") -> tuple[str, list[str]]:
    """A notebook of code cells with these sources; returns its id and the cell ids."""
    cells = [
        {
            "cell_type": "code",
            "id": f"cell-{index}",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }
        for index, source in enumerate(sources)
    ]
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": cells,
    }
    response = api.upload("runs.ipynb", json.dumps(notebook).encode(), title=title)
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), [cell["id"] for cell in cells]
