"""When a notebook was last changed, for the list's "Updated": its edits and runs, not only
renames. Rooms are polled (as checkpoints are) and the changed ones written in one UPDATE,
at most every `every` seconds and when a room closes — never a write per keystroke.

With several replicas each replica holding the notebook's room sees every edit; each write
is claimed first (`EditClaims`; `RedisEditClaims` keeps the highest seq recorded per
notebook in Redis), so the edits up to a seq are recorded by the first replica that gets
there, and the others skip them."""

from __future__ import annotations

import asyncio
import logging

import redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from server.background import stop_tasks
from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.notebooks.models import Notebook
from server.timeutil import utcnow

log = logging.getLogger(__name__)

# Raise the notebook's recorded seq to ARGV[1] if it is higher; 1 when it was.
_CLAIM = """
local had = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= had then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# Give a claim back (the write failed) if nobody claimed more since.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
_CLAIM_KEPT_MS = 86_400_000  # a notebook edited again after a day is simply recorded again


class EditClaims:
    """Contract: `claim(notebook, seq)` says whether this replica records the notebook's
    edits up to `seq` (no other replica recorded them); `release` gives a claim back when
    the write failed, so the next round (here or elsewhere) writes it. One server records
    everything it sees: always yes."""

    def claim(self, notebook_id: str, seq: int) -> bool:
        return True

    def release(self, notebook_id: str, seq: int) -> None:
        return None


class RedisEditClaims(EditClaims):
    """Claims shared by every replica in Redis; when Redis is away, claim anyway (a
    timestamp written twice is better than none). Called from a worker thread."""

    def __init__(self, client: redis.Redis) -> None:
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _key(notebook_id: str) -> str:
        return f"tandem:edited:{notebook_id}"

    def claim(self, notebook_id: str, seq: int) -> bool:
        try:
            return bool(self._claim(keys=[self._key(notebook_id)], args=[seq, _CLAIM_KEPT_MS]))
        except RedisError:
            return True

    def release(self, notebook_id: str, seq: int) -> None:
        try:
            self._release(keys=[self._key(notebook_id)], args=[seq])
        except RedisError:
            log.warning("could not give back the claim on %s's edits", notebook_id)


class EditActivity:
    def __init__(
        self,
        engine: Engine,
        rooms: RoomManager,
        every: float = 30.0,
        claims: EditClaims | None = None,
    ) -> None:
        self._engine = engine
        self._claims = claims or EditClaims()
        self._rooms = rooms
        self._every = every
        self._seen: dict[str, int] = {}  # notebook -> the room's last seq already written
        self._task: asyncio.Task[None] | None = None
        rooms.on_load(self._on_load)
        rooms.on_unload(self._on_unload)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])

    def _on_load(self, room: Room) -> None:
        self._seen[room.notebook_id] = room.last_seq

    async def _on_unload(self, room: Room) -> None:
        seen = self._seen.pop(room.notebook_id, room.last_seq)
        if room.last_seq > seen:
            await self._write({room.notebook_id: room.last_seq})
        self._seen.pop(room.notebook_id, None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            changed = {
                room.notebook_id: room.last_seq
                for room in self._rooms.open_rooms()
                if room.last_seq > self._seen.get(room.notebook_id, room.last_seq)
            }
            if changed:
                await self._write(changed)

    async def _write(self, changed: dict[str, int]) -> None:
        claims = self._claims

        def write() -> None:
            claimed = {
                notebook_id: seq
                for notebook_id, seq in changed.items()
                if claims.claim(notebook_id, seq)
            }
            if not claimed:
                return
            try:
                with Session(self._engine) as db:
                    db.exec(
                        update(Notebook)
                        .where(col(Notebook.id).in_(list(claimed)))
                        .values(updated_at=utcnow())
                    )
                    db.commit()
            except Exception:
                for notebook_id, seq in claimed.items():
                    claims.release(notebook_id, seq)
                raise

        try:
            await asyncio.to_thread(write)
        except Exception as error:  # the database away: the next round tries again
            log.warning("could not record when notebooks changed: %s", type(error).__name__)
            return
        for notebook_id, seq in changed.items():
            if notebook_id in self._seen:
                self._seen[notebook_id] = seq
