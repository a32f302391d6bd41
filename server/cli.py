"""The `tandem` command: serve, run a worker, and manage users and tokens."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session

from server.auth import service
from server.config import Settings
from server.db import make_engine, migrate
from server.errors import TandemError


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_worker", False):
        overrides["local_worker"] = False
    return Settings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.logs import configure

    settings = _settings(args)
    configure(args.log_level.upper())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        log_config=None,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def _session(args: argparse.Namespace) -> Session:
    engine = make_engine(_settings(args))
    migrate(engine)
    return Session(engine)


def _users_create(args: argparse.Namespace) -> int:
    password = args.password
    generated = False
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"Password for {args.name}: ")
        else:
            password, generated = secrets.token_urlsafe(12), True
    with _session(args) as db:
        user = service.create_user(db, args.name, password, is_admin=args.admin)
    role = "admin" if user.is_admin else "user"
    print(f"created {role} {user.username}")
    if generated:
        print(f"password: {password}")
    return 0


def _tokens_create(args: argparse.Namespace) -> int:
    with _session(args) as db:
        user = service.get_user(db, args.name)
        print(service.create_token(db, user, args.label))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from kernels.worker import Worker, WorkerRejected
    from server.logs import configure

    configure(args.log_level.upper())
    token = args.token or os.environ.get("TANDEM_WORKER_TOKEN", "")
    if not token:
        print("tandem: give --token or set TANDEM_WORKER_TOKEN", file=sys.stderr)
        return 2
    try:
        worker = Worker(
            args.server,
            token,
            name=args.name,
            max_kernels=args.max_kernels,
            kernel_name=args.kernel,
        )
    except ValueError as error:
        print(f"tandem: {error}", file=sys.stderr)
        return 2

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        await worker.run()

    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        return 0
    except WorkerRejected as error:
        logging.getLogger("tandem.worker").error("%s", error)
        return 3
    return 0


def _worker_tokens_create(args: argparse.Namespace) -> int:
    from server.gateway import tokens as worker_tokens

    with _session(args) as db:
        _, raw = worker_tokens.create(db, args.name, None)
    print(raw)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tandem", description="Collaborative notebook server")
    commands = root.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", type=Path, help="where the SQLite file lives")
        return p

    serve = with_data_dir(commands.add_parser("serve", help="run the server"))
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.add_argument(
        "--no-worker", action="store_true", help="do not start a worker on this machine"
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run kernels for a server (dials out to it)")
    worker.add_argument("--server", required=True, help="the server's URL, http://host:8000")
    worker.add_argument("--token", help="a worker token (or TANDEM_WORKER_TOKEN)")
    worker.add_argument("--name", help="shown to admins (default: the host name)")
    worker.add_argument("--max-kernels", type=int, help="default: two per CPU, at least 4")
    worker.add_argument("--kernel", default="python3", help="Jupyter kernel spec to run")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(run=_worker)

    workers = commands.add_parser("workers", help="manage worker tokens")
    workers_cmds = workers.add_subparsers(dest="action", required=True)
    create_worker_token = with_data_dir(
        workers_cmds.add_parser("create-token", help="print a new worker token")
    )
    create_worker_token.add_argument("name", help="what the token is for, e.g. gpu-node-1")
    create_worker_token.set_defaults(run=_worker_tokens_create)

    users = commands.add_parser("users", help="manage accounts")
    users_cmds = users.add_subparsers(dest="action", required=True)
    create_user = with_data_dir(users_cmds.add_parser("create", help="create an account"))
    create_user.add_argument("name")
    create_user.add_argument("--password", help="asked for (or generated) when left out")
    create_user.add_argument("--admin", action="store_true")
    create_user.set_defaults(run=_users_create)

    tokens = commands.add_parser("tokens", help="manage API tokens")
    tokens_cmds = tokens.add_subparsers(dest="action", required=True)
    create_token = with_data_dir(tokens_cmds.add_parser("create", help="print a new API token"))
    create_token.add_argument("name", help="the user the token acts for")
    create_token.add_argument("--label", default="", help="what the token is for")
    create_token.set_defaults(run=_tokens_create)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except TandemError as error:
        print(f"tandem: {error.message}", file=sys.stderr)
        return 2
    return result
