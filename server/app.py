"""The ASGI application: wires settings, database, update log, rooms and routes together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect

from server import __version__
from server.auth.admin import router as admin_router
from server.auth.routes import router as auth_router
from server.auth.service import hash_secret
from server.auth.throttle import (
    FailureCounter,
    LoginThrottle,
    RedisFailureCounter,
    SocketThrottle,
)
from server.collab.fanout import Fanout
from server.collab.presence import Presence, RedisPresence
from server.collab.redis_fanout import RedisFanout
from server.collab.room import RoomLimits
from server.collab.rooms import RoomManager
from server.collab.routes import router as collab_router
from server.collab.update_log import SqlUpdateLog
from server.comments.routes import router as comments_router
from server.comments.watch import CommentWatch
from server.config import Settings
from server.db import make_engine, migrate
from server.errors import TandemError
from server.events.bus import EventBus
from server.events.routes import router as events_router
from server.files.routes import router as files_router
from server.files.storage import FileStorage, make_store
from server.files.worker_routes import router as worker_files_router
from server.gateway.gateway import Gateway
from server.gateway.local_worker import LocalWorker
from server.gateway.routes import router as gateway_router
from server.gateway.tokens import new_secret
from server.history.checkpoints import Checkpoints
from server.history.routes import router as history_router
from server.notebooks.activity import EditActivity, RedisEditClaims
from server.notebooks.routes import router as notebooks_router
from server.services import Services
from server.shares.expiry import LinkExpiry, redis_claim
from server.shares.routes import router as shares_router
from server.web.routes import STATIC_DIR
from server.web.routes import router as web_router

log = logging.getLogger(__name__)


def socket_throttle_for(settings: Settings) -> SocketThrottle:
    """Failed socket sign-ins counted in memory, or across replicas in Redis; none when
    turned off."""
    limit, window = settings.socket_auth_max_failures, settings.socket_auth_window_seconds
    if limit == 0:
        return SocketThrottle(None)
    if settings.redis_url:
        return SocketThrottle(RedisFailureCounter(settings.redis_url, "socket", limit, window))
    return SocketThrottle(FailureCounter(limit, window))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        await asyncio.to_thread(migrate, engine)
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        update_log = SqlUpdateLog(engine, settings.max_batch_updates)
        await update_log.start()
        limits = RoomLimits(
            max_frame_bytes=settings.max_frame_bytes,
            max_awareness_bytes=settings.max_awareness_bytes,
            compact_after_updates=settings.compact_after_updates,
            compact_after_bytes=settings.compact_after_bytes,
        )
        # Several replicas: rooms, presence, events and throttles cross Redis.
        fanout: Fanout = Fanout()
        shared: redis.Redis | None = None
        login_throttle = LoginThrottle()
        socket_throttle = socket_throttle_for(settings)
        if settings.redis_url:
            fanout = RedisFanout(settings.redis_url, bus)
            await fanout.start()
            shared = redis.Redis.from_url(
                settings.redis_url, socket_timeout=2, socket_connect_timeout=2
            )
            login_throttle = LoginThrottle.in_redis(settings.redis_url)
        rooms = RoomManager(update_log, bus, limits, settings.room_grace_seconds, fanout)
        presence = (
            RedisPresence(rooms, settings.redis_url) if settings.redis_url else Presence(rooms)
        )
        presence.start()
        gateway = Gateway(settings, engine, rooms, bus)
        await gateway.start()
        files = FileStorage(settings, engine, bus, await asyncio.to_thread(make_store, settings))
        files.start()
        files.on_change = gateway.files_changed
        comments = CommentWatch(engine, rooms, bus)
        checkpoints = Checkpoints(engine, rooms, update_log, settings.checkpoint_seconds)
        checkpoints.start()
        activity = EditActivity(
            engine, rooms, claims=RedisEditClaims(shared) if shared is not None else None
        )
        activity.start()
        app.state.services = Services(
            settings,
            engine,
            update_log,
            rooms,
            bus,
            gateway,
            comments,
            files,
            presence,
            login_throttle,
            socket_throttle,
        )
        link_expiry = LinkExpiry(
            engine, bus, claim=redis_claim(shared) if shared is not None else None
        )
        link_expiry.start()
        local_worker = None
        if settings.local_worker:
            secret = new_secret()
            gateway.local_token_hash = hash_secret(secret)
            any_address = settings.host in ("0.0.0.0", "::", "")  # noqa: S104  (a comparison)
            host = "127.0.0.1" if any_address else settings.host
            url = f"http://{host}:{settings.port}"
            local_worker = LocalWorker(url, secret, settings)
            local_worker.start()
        log.info("Tandem %s serving on http://%s:%d", __version__, settings.host, settings.port)
        try:
            yield
        finally:
            await link_expiry.stop()
            await gateway.shutdown()
            if local_worker is not None:
                await local_worker.stop()
            await presence.stop()
            await rooms.shutdown()
            await checkpoints.stop()
            await activity.stop()
            await comments.stop()
            await files.stop()
            await update_log.stop()
            if isinstance(fanout, RedisFanout):
                await fanout.stop()
            if shared is not None:
                shared.close()
            login_throttle.close()
            socket_throttle.close()
            engine.dispose()
            log.info("Tandem stopped")

    app = FastAPI(title="Tandem", version=__version__, lifespan=lifespan)

    @app.exception_handler(TandemError)
    async def tandem_error(_request: Request, error: TandemError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    @app.exception_handler(OperationalError)
    async def database_away(request: Request, error: OperationalError) -> JSONResponse:
        # The database cannot be reached (a restart, a failover): the client may retry;
        # one line in the log, no traceback, no SQL in the answer.
        log.warning(
            "%s %s: the database is unavailable (%s)",
            request.method,
            request.url.path,
            type(error.orig).__name__,
        )
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(ClientDisconnect)
    async def went_away(request: Request, _error: ClientDisconnect) -> Response:
        # An upload cut off mid-way: what it sent was dropped (see files/transfer.py), and
        # nobody is left to read an answer.
        log.info(
            "%s %s: the client went away before the body ended", request.method, request.url.path
        )
        return Response(status_code=400)

    @app.exception_handler(RecursionError)
    async def too_deep(_request: Request, _error: RecursionError) -> JSONResponse:
        # A JSON body nested thousands deep: the parser gives up; so do we, politely.
        return JSONResponse({"detail": "JSON nested too deeply"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the offending input by default; a password or token must never
        # come back in a response, so only the place and the reason are returned.
        details = [
            {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type")}
            for item in error.errors()
        ]
        return JSONResponse({"detail": details}, status_code=422)

    @app.middleware("http")
    async def no_referrer(request: Request, call_next: Any) -> Any:
        # Pages may be opened through a share link whose secret is in the URL: it must
        # never travel on to another site in a Referer header.
        response = await call_next(request)
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/api/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Routes are tried in order, and every socket of a mass join is routed: the sockets'
    # routers first (no other path matches theirs).
    app.include_router(collab_router)
    app.include_router(events_router)
    app.include_router(auth_router)
    app.include_router(admin_router)
    app.include_router(notebooks_router)
    app.include_router(gateway_router)
    app.include_router(shares_router)
    app.include_router(comments_router)
    app.include_router(history_router)
    app.include_router(files_router)
    app.include_router(worker_files_router)
    app.include_router(web_router)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
