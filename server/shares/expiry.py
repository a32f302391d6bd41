"""Links that expire end by themselves: once a second, the ones whose time came are
announced like a revocation, so sockets opened through them close within a second.

With several replicas each one sweeps, and the first to claim an expired link (`claim`, a
Redis key set once) records and announces it; the announcement reaches every replica's
sockets through the events relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from server.audit import service as audit
from server.background import stop_tasks
from server.events.bus import EventBus
from server.notebooks.announce import access_changed
from server.notebooks.models import Notebook
from server.shares import service
from server.timeutil import utcnow

log = logging.getLogger(__name__)


class LinkExpiry:
    def __init__(
        self,
        engine: Engine,
        bus: EventBus,
        every: float = 0.5,
        claim: Callable[[str], bool] | None = None,
    ) -> None:
        self._engine = engine
        self._claim = claim
        self._bus = bus
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])

    async def _run(self) -> None:
        since = utcnow()
        while True:
            await asyncio.sleep(self._every)
            now = utcnow()
            try:
                await asyncio.to_thread(self._sweep, since, now)
            except OperationalError as error:
                # The database is away (restarting): one line each time, not a traceback
                # every half second.
                log.warning("expiring share links failed: %s", type(error.orig).__name__)
            except Exception:
                log.exception("expiring share links failed")
                continue
            since = now

    def _sweep(self, since: datetime, now: datetime) -> None:
        with Session(self._engine) as db:
            for link in service.expired_between(db, since, now):
                notebook = db.get(Notebook, link.notebook_id)
                if notebook is None:
                    continue
                if self._claim is not None and not self._claim(link.id):
                    continue  # another replica announces this one
                audit.record(db, notebook.id, "system", "link.expired", link=link.id)
                db.commit()
                access_changed(db, self._bus, notebook, service.holders(db, link))


def redis_claim(client: redis.Redis) -> Callable[[str], bool]:
    """Claim an expired link once across replicas; when Redis is away, claim it anyway (an
    audit row twice is better than sockets left open)."""

    def claim(link_id: str) -> bool:
        try:
            return bool(client.set(f"tandem:link-expired:{link_id}", b"1", nx=True, ex=86400))
        except RedisError:
            return True

    return claim
