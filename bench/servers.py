"""Start the servers a benchmark compares: Tandem and its peers, each as its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "bench" / "node"
sys.path.insert(0, str(ROOT))

from tests.support import Api, ServerProcess, make_people  # noqa: E402


@dataclass
class Target:
    """One server under test, and where clients find a fresh room on it."""

    name: str
    process: subprocess.Popen[bytes] | None
    ws_base: str
    token: str | None = None
    make_room: object = None
    tandem: ServerProcess | None = None
    api: Api | None = None
    rooms_made: int = field(default=0)

    @property
    def pid(self) -> int:
        if self.tandem is not None:
            assert self.tandem.proc is not None
            return self.tandem.proc.pid
        assert self.process is not None
        return self.process.pid

    def room(self, label: str) -> str:
        """A new, empty room (a fresh notebook on Tandem)."""
        self.rooms_made += 1
        if self.api is not None:
            return f"{self.api.create(label)}/sync"
        return f"{label}-{self.rooms_made}"

    def stop(self) -> None:
        if self.api is not None:
            self.api.client.close()
        if self.tandem is not None:
            self.tandem.stop()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def usage(self) -> psutil.Process:
        return psutil.Process(self.pid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start_tandem(
    data_dir: Path, env: dict[str, str] | None = None, database_url: str = ""
) -> Target:
    server = ServerProcess(data_dir, env={"TANDEM_ROOM_GRACE_SECONDS": "30", **(env or {})})
    server.start()
    person = make_people(data_dir, ["bench"], database_url=database_url)["bench"]
    return Target(
        "tandem",
        None,
        f"{server.ws_url}/api/notebooks",
        person.token,
        tandem=server,
        api=Api(server, person),
    )


def start_pycrdt_websocket() -> Target:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "peers" / "pycrdt_websocket_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return Target("pycrdt-websocket", process, f"ws://127.0.0.1:{port}")


def start_node(script: str, name: str) -> Target:
    port = free_port()
    process = subprocess.Popen(
        ["node", script],
        cwd=NODE,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=subprocess.DEVNULL,
    )
    wait_port(port)
    return Target(name, process, f"ws://127.0.0.1:{port}")


def start_node_reference() -> Target:
    return start_node("node_modules/y-websocket-server-v1/bin/server.js", "node y-websocket")


def start_relay() -> Target:
    return start_node("relay.mjs", "byte relay")
