"""Who has a notebook open (`GET .../presence`), by the servers' own view of the sockets.

`Presence` is one server's answer: the people connected to its room. With several replicas
`RedisPresence` adds everyone connected to the other replicas: each replica writes, every
`beat` seconds, what its rooms' `people()` are to `tandem:people:{notebook}:{replica}`
(JSON, expiring after `ttl` seconds unless renewed) and names itself in the set
`tandem:people:{notebook}`; an answer reads the set and those records. A replica that
stops (SIGKILLed, cut off from Redis) stops renewing, so its people drop out within `ttl`
seconds; one that leaves a room deletes its record at the next beat.

Why records of our own and not the awareness that already crosses replicas: awareness holds
what clients chose to publish (a script's client that never sets a state is not in it),
carries no role or guest flag, and a killed replica's states linger for y-protocols' 30 s;
the records are the sockets each server accepted and role-stamped, and lapse in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.background import stop_tasks
from server.collab.rooms import RoomManager

log = logging.getLogger(__name__)

Person = dict[str, Any]  # {"username", "role", "guest", "connections"}


class Presence:
    """This server's people only: the contract, and embedded mode (no Redis)."""

    def __init__(self, rooms: RoomManager) -> None:
        self._rooms = rooms

    def here(self, notebook_id: str) -> list[Person]:
        room = self._rooms.get(notebook_id)
        return room.people() if room is not None else []

    async def people(self, notebook_id: str) -> list[Person]:
        """Everyone with the notebook open, one entry a person, sorted by name."""
        return self.here(notebook_id)

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def merge(groups: list[list[Person]]) -> list[Person]:
    """One entry a person over several replicas' lists: the first list's role and guest
    flag win (this replica's, which applies a role change first), connections add up."""
    merged: dict[str, Person] = {}
    for group in groups:
        for person in group:
            username = person.get("username")
            if not isinstance(username, str):
                continue
            entry = merged.get(username)
            if entry is None:
                merged[username] = {
                    "username": username,
                    "role": str(person.get("role", "")),
                    "guest": bool(person.get("guest", False)),
                    "connections": int(person.get("connections", 0)),
                }
            else:
                entry["connections"] += int(person.get("connections", 0))
    return sorted(merged.values(), key=lambda entry: str(entry["username"]))


class RedisPresence(Presence):
    def __init__(
        self,
        rooms: RoomManager,
        url: str,
        *,
        beat: float = 1.0,
        ttl: float = 5.0,
        prefix: str = "tandem",
    ) -> None:
        super().__init__(rooms)
        self.replica = uuid.uuid4().hex[:12]
        self._redis = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._beat = beat
        self._ttl_ms = int(ttl * 1000)
        self._prefix = prefix
        # notebook -> (the JSON last written, monotonic time of that write)
        self._written: dict[str, tuple[str, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def _set(self, notebook_id: str) -> str:
        return f"{self._prefix}:people:{notebook_id}"

    def _record(self, notebook_id: str, replica: str) -> str:
        return f"{self._prefix}:people:{notebook_id}:{replica}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis-presence")

    async def stop(self) -> None:
        """Take this replica's records away at once (its people left with it)."""
        if self._task is not None:
            await stop_tasks([self._task])
        with contextlib.suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=False) as pipe:
                for notebook_id in self._written:
                    pipe.delete(self._record(notebook_id, self.replica))
                    pipe.srem(self._set(notebook_id), self.replica)
                await pipe.execute()
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def people(self, notebook_id: str) -> list[Person]:
        here = self.here(notebook_id)
        try:
            replicas = [
                r.decode() if isinstance(r, bytes) else str(r)
                for r in await self._redis.smembers(self._set(notebook_id))
            ]
            others = [r for r in replicas if r != self.replica]
            records = (
                await self._redis.mget([self._record(notebook_id, r) for r in others])
                if others
                else []
            )
        except (RedisError, OSError) as error:
            log.warning("presence from the other replicas is unavailable: %s", type(error).__name__)
            return merge([here])
        groups, gone = [here], []
        for replica, record in zip(others, records, strict=True):
            if record is None:
                gone.append(replica)  # its record lapsed: that replica is gone
                continue
            with contextlib.suppress(ValueError, TypeError):
                found = json.loads(record)
                if isinstance(found, list):
                    groups.append([p for p in found if isinstance(p, dict)])
        if gone:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.srem(self._set(notebook_id), *gone)
        return merge(groups)

    async def _run(self) -> None:
        while True:
            try:
                await self._write()
                if self._failing:
                    log.info("presence records are written to Redis again")
                self._failing = False
            except (RedisError, OSError) as error:
                if not self._failing:
                    log.warning("could not write presence to Redis: %s", type(error).__name__)
                self._failing = True
                self._written.clear()  # write them all again once Redis is back
            await asyncio.sleep(self._beat)

    async def _write(self) -> None:
        """Write the records that changed or will expire before the next beat but one;
        delete those of rooms nobody is in any more."""
        now = time.monotonic()
        current = {
            room.notebook_id: json.dumps(people)
            for room in self._rooms.open_rooms()
            if (people := room.people())
        }
        renew_after = self._ttl_ms / 1000 - 2 * self._beat
        changed = {
            notebook_id: record
            for notebook_id, record in current.items()
            if (written := self._written.get(notebook_id)) is None
            or written[0] != record
            or now - written[1] >= renew_after
        }
        left = [notebook_id for notebook_id in self._written if notebook_id not in current]
        if not changed and not left:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for notebook_id, record in changed.items():
                pipe.set(self._record(notebook_id, self.replica), record, px=self._ttl_ms)
                pipe.sadd(self._set(notebook_id), self.replica)
                pipe.pexpire(self._set(notebook_id), self._ttl_ms)
            for notebook_id in left:
                pipe.delete(self._record(notebook_id, self.replica))
                pipe.srem(self._set(notebook_id), self.replica)
            await pipe.execute()
        for notebook_id, record in changed.items():
            self._written[notebook_id] = (record, now)
        for notebook_id in left:
            del self._written[notebook_id]
