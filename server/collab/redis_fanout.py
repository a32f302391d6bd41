"""Fan-out between replicas over Redis pub/sub (`TANDEM_REDIS_URL`).

One channel per notebook, subscribed only while this replica holds its room, carries binary
messages: a kind byte, the sending replica's id (a replica skips its own), then

    U  seq (8 bytes, big-endian) + a stored update     apply and broadcast it
    A  an awareness message its clients sent           broadcast it, remember the states
    Q  (nothing)                                       answer with an A of our clients
    H  (nothing)                                       heal from the database now

and one Redis stream for the whole deployment carries the events of every notebook (`E` +
the event's JSON, `server.events.types`): a stream, not a channel, because events live
nowhere else (a revocation must close sockets on every replica), so a replica whose
connection dropped reads on from the last entry it saw, and a publish that failed is
retried until Redis takes it. For documents Redis is never the source of truth: an update
is published only once it is stored, and whatever Redis did not deliver (it restarted, a
connection dropped, a publish failed) is read back from the update log (`Room.heal`): on
every (re)subscription, on an `H` from a replica whose publishes failed once they work
again, and every `heal_seconds` anyway (a replica killed between commit and publish).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.background import stop_tasks
from server.collab.fanout import Fanout
from server.collab.room import Room
from server.events.bus import EventBus
from server.events.types import NotebookEvent, parse_event

log = logging.getLogger(__name__)

UPDATE, PRESENCE, ASK_PRESENCE, HEAL, EVENT = b"U", b"A", b"Q", b"H", b"E"
_ID = 16  # bytes of a replica id
_MAX_WAITING = 10_000  # messages queued while Redis is slow; past it, others heal instead
_JOIN_TIMEOUT = 2.0
_EVENTS_KEPT = 10_000  # entries of the events stream (about; trimmed as it grows)


def encode(kind: bytes, replica: bytes, body: bytes = b"") -> bytes:
    return kind + replica + body


def decode(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(kind, replica, body); raises ValueError on a message too short to be ours."""
    if len(data) < 1 + _ID:
        raise ValueError("short message")
    return data[:1], data[1 : 1 + _ID], data[1 + _ID :]


class RedisFanout(Fanout):
    def __init__(
        self, url: str, bus: EventBus, prefix: str = "tandem", heal_seconds: float = 30.0
    ) -> None:
        self.replica = uuid.uuid4().bytes
        self._heal_seconds = heal_seconds
        self._bus = bus
        self._prefix = prefix
        self._events = f"{prefix}:events".encode()  # the stream
        self._control = f"{prefix}:control".encode()  # a channel always subscribed
        # Publishing answers within seconds or counts as failed (the rooms heal instead);
        # the subscription waits as long as it takes for the next message.
        self._publisher = aioredis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        self._subscriber = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_keepalive=True,
            health_check_interval=15,
            retry=Retry(NoBackoff(), 0),
        )
        self._rooms: dict[str, Room] = {}
        self._joined: dict[str, asyncio.Event] = {}  # set once the subscription is confirmed
        self._early: dict[str, list[bytes]] = {}  # messages for a room still loading
        # Rooms whose subscription was confirmed before they were read, and not lost since.
        self._clean_join: set[str] = set()
        self._pubsub: PubSub | None = None
        self._outbox: deque[tuple[bytes, bytes]] = deque()
        self._wake = asyncio.Event()
        self._dirty: set[str] = set()  # rooms whose updates could not be published
        self._healing: dict[str, asyncio.Task[None]] = {}
        self._heal_again: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()  # the subscription is up (for tests and health)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._bus.relay_to(self._relay_event)
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-fanout-listen"),
            asyncio.create_task(self._read_events(), name="redis-fanout-events"),
            asyncio.create_task(self._publish(), name="redis-fanout-publish"),
            asyncio.create_task(self._heal_now_and_then(), name="redis-fanout-heal"),
        ]

    async def stop(self) -> None:
        await stop_tasks([*self._tasks, *self._healing.values()])
        with contextlib.suppress(Exception):
            await self._publisher.aclose()
        with contextlib.suppress(Exception):
            await self._subscriber.aclose()

    def _channel(self, notebook_id: str) -> bytes:
        return f"{self._prefix}:room:{notebook_id}".encode()

    def _notebook(self, channel: bytes) -> str:
        return channel.decode()[len(self._prefix) + len(":room:") :]

    # --- the Fanout contract --------------------------------------------------------------

    async def join(self, notebook_id: str) -> None:
        confirmed = self._joined.setdefault(notebook_id, asyncio.Event())
        self._early.setdefault(notebook_id, [])
        pubsub = self._pubsub
        if pubsub is None:
            return  # Redis is away: the room heals when the subscription comes back
        try:
            await pubsub.subscribe(self._channel(notebook_id))
            await asyncio.wait_for(confirmed.wait(), _JOIN_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("subscribing to %s failed: %s", notebook_id, type(error).__name__)
        else:
            self._clean_join.add(notebook_id)

    def attach(self, room: Room) -> None:
        notebook_id = room.notebook_id
        self._rooms[notebook_id] = room
        for data in self._early.pop(notebook_id, []):
            self._receive_room(room, data)
        if notebook_id not in self._clean_join:
            # Loaded without a subscription in place the whole time: what was published
            # meanwhile is only in the database.
            self._schedule_heal(notebook_id)
        self._clean_join.discard(notebook_id)
        # Who is connected to the other replicas: they answer with their clients' states.
        self._send(self._channel(notebook_id), ASK_PRESENCE, b"")

    async def leave(self, notebook_id: str) -> None:
        self._rooms.pop(notebook_id, None)
        self._joined.pop(notebook_id, None)
        self._early.pop(notebook_id, None)
        self._clean_join.discard(notebook_id)
        self._dirty.discard(notebook_id)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe(self._channel(notebook_id))

    def updated(self, notebook_id: str, seq: int, update: bytes) -> None:
        self._send(self._channel(notebook_id), UPDATE, seq.to_bytes(8, "big") + update)

    def presence(self, notebook_id: str, message: bytes) -> None:
        self._send(self._channel(notebook_id), PRESENCE, message)

    def _relay_event(self, event: NotebookEvent) -> None:
        self._send(self._events, EVENT, event.model_dump_json().encode())

    # --- publishing -----------------------------------------------------------------------

    def _send(self, channel: bytes, kind: bytes, body: bytes) -> None:
        if len(self._outbox) >= _MAX_WAITING:
            if kind == EVENT:
                log.warning("Redis is away too long: an event for the other replicas is lost")
            self._lost([(channel, encode(kind, self.replica, body))])
            return
        self._outbox.append((channel, encode(kind, self.replica, body)))
        self._wake.set()

    async def _publish(self) -> None:
        while True:
            if not self._outbox:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0 if self._dirty else None)
                if not self._outbox and self._dirty:
                    await self._ask_to_heal()
                continue
            batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 512))]
            try:
                if len(batch) == 1 and batch[0][0] != self._events:
                    await self._publisher.publish(*batch[0])
                else:
                    async with self._publisher.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            self._queue(pipe, channel, data)
                        await pipe.execute()
            except (RedisError, OSError) as error:
                log.warning("publishing to Redis failed: %s", type(error).__name__)
                self._lost(batch)
                # Events live nowhere else (a revocation must still close sockets on the
                # other replicas): they wait for Redis, first in line.
                events = [item for item in batch if item[1][:1] == EVENT]
                self._outbox.extendleft(reversed(events))
                await asyncio.sleep(0.5)
            else:
                if self._dirty:
                    await self._ask_to_heal()

    def _queue(self, pipe: Any, channel: bytes, data: bytes) -> None:
        if channel == self._events:
            pipe.xadd(self._events, {b"m": data}, maxlen=_EVENTS_KEPT, approximate=True)
        else:
            pipe.publish(channel, data)

    def _lost(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Updates that never reached the others: they heal from the database once Redis
        takes our messages again (awareness is renewed by the clients anyway)."""
        for channel, data in batch:
            if data[:1] == UPDATE:
                self._dirty.add(self._notebook(channel))

    async def _ask_to_heal(self) -> None:
        dirty, self._dirty = self._dirty, set()
        try:
            async with self._publisher.pipeline(transaction=False) as pipe:
                for notebook_id in dirty:
                    pipe.publish(self._channel(notebook_id), encode(HEAL, self.replica))
                await pipe.execute()
        except (RedisError, OSError):
            self._dirty |= {notebook_id for notebook_id in dirty if notebook_id in self._rooms}

    # --- receiving ------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                asked = set(self._joined)
                await pubsub.subscribe(self._control, *map(self._channel, asked))
                self._pubsub = pubsub
                # Rooms that joined while that subscription was on its way.
                if late := set(self._joined) - asked:
                    await pubsub.subscribe(*map(self._channel, late))
                async for message in pubsub.listen():
                    delay = 0.1
                    self._receive(message)
            except (RedisError, OSError) as error:
                if self.subscribed.is_set():
                    log.warning("lost the Redis subscription: %s", type(error).__name__)
            finally:
                self._pubsub = None
                self.subscribed.clear()
                self._clean_join.clear()
                for confirmed in self._joined.values():
                    confirmed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _receive(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if not isinstance(channel, bytes):
            return
        if message["type"] == "subscribe":
            self._subscribed(channel)
        elif message["type"] == "message" and isinstance(message.get("data"), bytes):
            notebook_id = self._notebook(channel)
            room = self._rooms.get(notebook_id)
            if room is not None:
                self._receive_room(room, message["data"])
            elif notebook_id in self._early:
                self._early[notebook_id].append(message["data"])

    def _subscribed(self, channel: bytes) -> None:
        if channel == self._control:
            self.subscribed.set()
            return
        notebook_id = self._notebook(channel)
        confirmed = self._joined.get(notebook_id)
        if confirmed is None:
            return
        confirmed.set()
        room = self._rooms.get(notebook_id)
        if room is not None:
            # A subscription back after a gap: read what went by; say who is here and ask
            # who is there (whichever replica subscribes second gets both ways).
            self._schedule_heal(notebook_id)
            if (message := room.local_presence_message()) is not None:
                self.presence(notebook_id, message)
            self._send(channel, ASK_PRESENCE, b"")

    async def _read_events(self) -> None:
        last: bytes | str = "$"  # from now on; after a drop, on from the last one read
        delay = 0.1
        while True:
            try:
                if last == "$":
                    # Pin "now" to an id, so a dropped connection resumes from it.
                    info = await self._subscriber.xinfo_stream(self._events)
                    last = info["last-generated-id"]
                entries: Any = await self._subscriber.xread(
                    {self._events: last}, count=256, block=5000
                )
                delay = 0.1
            except (RedisError, OSError) as error:
                if "no such key" in str(error).lower():
                    last = b"0-0"  # no stream yet: every entry will be new
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for _stream, items in entries or []:
                for entry_id, fields in items:
                    last = entry_id
                    self._receive_event(fields.get(b"m", b""))

    def _receive_event(self, data: bytes) -> None:
        try:
            kind, replica, body = decode(data)
            if kind != EVENT or replica == self.replica:
                return
            event = parse_event(body)
        except (ValueError, ValidationError):
            log.warning("ignored a malformed event from Redis")
            return
        self._bus.deliver_remote(event)

    def _receive_room(self, room: Room, data: bytes) -> None:
        try:
            kind, replica, body = decode(data)
        except ValueError:
            return
        if replica == self.replica:
            return
        try:
            if kind == UPDATE and len(body) > 8:
                room.apply_remote(int.from_bytes(body[:8], "big"), body[8:])
            elif kind == PRESENCE:
                room.remote_presence_message(body)
            elif kind == ASK_PRESENCE:
                message = room.local_presence_message()
                if message is not None:
                    self.presence(room.notebook_id, message)
            elif kind == HEAL:
                self._schedule_heal(room.notebook_id)
        except Exception:
            log.exception("a message from another replica failed for %s", room.notebook_id)

    # --- healing --------------------------------------------------------------------------

    async def _heal_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self._heal_seconds / 2)
            rooms = list(self._rooms)
            for notebook_id in rooms:  # spread over the other half: no burst of queries
                self._schedule_heal(notebook_id)
                await asyncio.sleep(self._heal_seconds / 2 / len(rooms))

    def _schedule_heal(self, notebook_id: str) -> None:
        if notebook_id in self._healing:
            self._heal_again.add(notebook_id)
            return
        self._healing[notebook_id] = asyncio.create_task(self._heal(notebook_id))

    async def _heal(self, notebook_id: str) -> None:
        try:
            attempt = 0
            while (room := self._rooms.get(notebook_id)) is not None:
                self._heal_again.discard(notebook_id)
                try:
                    await room.heal()
                except Exception as error:
                    # The database is away too: try again a little later.
                    attempt += 1
                    log.warning("healing %s failed: %s", notebook_id, type(error).__name__)
                    await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                    continue
                if notebook_id not in self._heal_again:
                    return
        finally:
            self._healing.pop(notebook_id, None)
