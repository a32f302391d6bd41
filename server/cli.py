"""The `tandem` command: serve, run a worker, and manage users and tokens."""

from __future__ import annotations

import argparse
import asyncio
import gc
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
    if getattr(args, "unsafe_no_sandbox", False):
        overrides["unsafe_no_sandbox"] = True
    return Settings(**overrides)


def _tune_gc() -> None:
    """Fewer, cheaper cyclic collections for a server that holds many long-lived objects.

    With CPython's defaults (700, 10, 10) a join of 1,000 sockets (bench/rooms.py) ran
    ~400 young collections and three full ones: half a second of CPU, a sixth of the
    server's. Young collections now come every 50,000 allocations, and what start-up made
    (modules, routes, SQLAlchemy's metadata) is frozen out of the full ones.
    """
    gc.set_threshold(50_000, 20, 10)
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.logs import configure

    settings = _settings(args)
    configure(args.log_level.upper())
    app = create_app(settings)
    _tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        # Levels are set by `configure` (uvicorn's would put back its per-socket lines).
        log_config=None,
        timeout_graceful_shutdown=5,
        # X-Forwarded-For only from proxies the operator names: uvicorn's default trusts
        # 127.0.0.1, from where anyone on the machine (a kernel) could pick its address.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
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
        role, username = "admin" if user.is_admin else "user", user.username
        db.commit()
    print(f"created {role} {username}")
    if generated:
        print(f"password: {password}")
    return 0


def _tokens_create(args: argparse.Namespace) -> int:
    with _session(args) as db:
        user = service.get_user(db, args.name)
        raw = service.create_token(db, user, args.label)
        db.commit()
        print(raw)
    return 0


def _read_worker_token(args: argparse.Namespace) -> str:
    """--token, else --token-file (a path, or - for standard input), else the environment
    variable, which is then removed from this process's environment so nothing the worker
    starts (an environment build, a kernel) inherits it."""
    token = os.environ.pop("TANDEM_WORKER_TOKEN", "")
    if args.token_file == "-":  # noqa: S105  (a file name, not a secret)
        token = sys.stdin.readline().strip()
    elif args.token_file:
        token = Path(args.token_file).read_text().strip()
    return str(args.token or token)


def _worker(args: argparse.Namespace) -> int:
    from kernels import cgroups, lifeline
    from kernels.environments import EnvironmentStore
    from kernels.messages import Limits
    from kernels.resources import detect
    from kernels.sandbox import Sandboxer
    from kernels.worker import Worker, WorkerRejected
    from server.logs import configure

    configure(args.log_level.upper())
    if args.parent_pid:
        lifeline.bind_to_parent(args.parent_pid)
    try:
        token = _read_worker_token(args)
    except OSError as error:
        print(f"tandem: cannot read the token file: {error.strerror}", file=sys.stderr)
        return 2
    if not token:
        print("tandem: give --token, --token-file or TANDEM_WORKER_TOKEN", file=sys.stderr)
        return 2
    state_dir = (args.state_dir or _default_worker_state_dir()).resolve()
    envs_dir = _envs_dir(args, state_dir)
    log = logging.getLogger("tandem.worker")
    limits, limits_note = cgroups.detect()
    if limits_note:
        log.warning("kernel limits are weaker than a cgroup: %s", limits_note)
    machine = detect()
    sandboxer = Sandboxer(
        "none" if args.unsafe_no_sandbox else "bubblewrap",
        limits,
        state_dir=state_dir,
        kernel_uid=args.kernel_uid,
        hide=[Path(p).resolve() for p in args.hide],
        defaults=Limits(
            memory_mb=machine.memory_mb * 8 // 10,
            cpus=machine.cpus,
            max_processes=1024,
        ),
        limits_note=limits_note,
    )
    sandboxer.probe()
    described = sandboxer.describe()
    if described.kind == "none":
        log.warning("UNSANDBOXED (--unsafe-no-sandbox): kernels can read what this user can")
    elif described.kind == "unavailable":
        log.error("no kernel will start: %s", described.detail)
    else:
        log.info("kernels are sandboxed with bubblewrap; limits by %s", described.limits)
    try:
        worker = Worker(
            args.server,
            token,
            sandboxer=sandboxer,
            environments=EnvironmentStore(envs_dir, args.python),
            name=args.name,
            max_kernels=args.max_kernels,
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
        if args.parent_pid:
            watch = asyncio.create_task(lifeline.watch_parent(args.parent_pid))
            watch.add_done_callback(lambda _: task.cancel())
        await worker.run()

    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        return 0
    except WorkerRejected as error:
        log.error("%s", error)
        return 3
    finally:
        limits.close()
    return 0


def _default_worker_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/tandem-worker")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tandem-worker"


def _envs_dir(args: argparse.Namespace, state_dir: Path) -> Path:
    """--envs-dir, else TANDEM_ENVS_DIR, else the worker state dir's envs/."""
    return Path(args.envs_dir or os.environ.get("TANDEM_ENVS_DIR") or state_dir / "envs").resolve()


def _envs_build(args: argparse.Namespace) -> int:
    """Build a runtime environment ahead of time (a worker image does this at build time)."""
    from kernels.environments import DEFAULT_ENVIRONMENTS, EnvironmentStore
    from kernels.messages import Environment
    from server.logs import configure

    configure("INFO")
    packages = DEFAULT_ENVIRONMENTS.get(args.name)
    if packages is None and not args.package:
        print(f"tandem: no environment {args.name!r}; give its --package list", file=sys.stderr)
        return 2
    spec = Environment(name=args.name, packages=args.package or packages or [])
    envs_dir = _envs_dir(args, _default_worker_state_dir())
    built = asyncio.run(EnvironmentStore(envs_dir, args.python).get(spec))
    print(built.prefix)
    return 0


def _worker_tokens_create(args: argparse.Namespace) -> int:
    from server.gateway import tokens as worker_tokens

    with _session(args) as db:
        _, raw = worker_tokens.create(db, args.name, None)
        db.commit()
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
    serve.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="the local worker runs kernels WITHOUT a sandbox (a single-user laptop only)",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run kernels for a server (dials out to it)")
    worker.add_argument("--server", required=True, help="the server's URL, http://host:8000")
    worker.add_argument("--token", help="a worker token (or TANDEM_WORKER_TOKEN)")
    worker.add_argument("--token-file", help="read the token from this file (- for stdin)")
    worker.add_argument("--name", help="shown to admins (default: the host name)")
    worker.add_argument("--max-kernels", type=int, help="default: two per CPU, at least 4")
    worker.add_argument(
        "--state-dir",
        type=Path,
        help="workspaces and run files (default /var/lib/tandem-worker as root, else "
        "~/.local/share/tandem-worker)",
    )
    worker.add_argument(
        "--envs-dir", type=Path, help="runtime environments (TANDEM_ENVS_DIR; default STATE/envs)"
    )
    worker.add_argument("--python", help="the interpreter environments are made from")
    worker.add_argument(
        "--kernel-uid", type=int, default=64000, help="kernels' user when the worker is root"
    )
    worker.add_argument(
        "--hide", action="append", default=[], help="a path kernels must never see (repeatable)"
    )
    worker.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run kernels WITHOUT a sandbox, as this user (a single-user laptop only)",
    )
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(run=_worker)

    envs = commands.add_parser("envs", help="runtime environments")
    envs_cmds = envs.add_subparsers(dest="action", required=True)
    build = envs_cmds.add_parser("build", help="build an environment now (default: default)")
    build.add_argument("name", nargs="?", default="default")
    build.add_argument("--package", action="append", help="its packages (default: the stack)")
    build.add_argument("--envs-dir", type=Path, help="where (TANDEM_ENVS_DIR)")
    build.add_argument("--python", help="the interpreter it is made from")
    build.set_defaults(run=_envs_build)

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
