"""Runtimes across replicas, through Redis: which workers each replica holds, one owner per
notebook runtime (a lease with a fencing epoch), and commands carried to that owner.

A notebook's runtime lives on the replica its kernel's worker is connected to: that replica
holds the lease, places and talks to the kernel, and writes its outputs into the document
(which every replica's clients see). A command made at another replica is forwarded to it.

Keys and channels:
- `tandem:workers:{replica}`: the replica's workers (JSON list of `WorkerPublic`), written
  every beat, gone when the replica stops beating; `tandem:hosts:{replica}`: for each of
  their worker tokens, the notebooks whose files they may read and write (a worker's file
  requests may reach any replica through the balancer).
- `tandem:lease:{notebook}` = "{replica} {epoch}": expires after `runtime_lease_seconds`
  unless its holder renews it. `tandem:epoch:{notebook}` only grows: every new holder gets
  a higher epoch, and a renewal names the epoch it renews, so a replica that lost the lease
  (killed, cut off) cannot renew it again. The epoch is also a fencing token: a replica
  that takes the lease under a new one records it in the database (`record`) before it
  trusts the lease, and the database refuses the runtime writes of any lower epoch
  (`server/collab/fences.py`), so one that stalled past its lease cannot write either.
- `tandem:replica:{replica}`: a replica's channel: requests `{"id", "from", "op",
  "notebook_id", "args"}` and replies `{"reply", "status", "body"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from server.background import stop_tasks
from server.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TandemError,
    TooManyRequests,
)
from server.gateway.models import WorkerPublic
from server.vocabulary import RuntimeType

log = logging.getLogger(__name__)

# Take the lease when it is free (a new epoch), or extend it when it is already ours.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then
  local owner, epoch = string.match(held, '^(%S+) (%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(epoch)
  end
  return -1
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. epoch, 'PX', ARGV[2])
return epoch
"""
# Extend (ARGV[2] ms) or drop (ARGV[2] = 0) the lease, only if it is still this very one.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# A lease is trusted locally for this share of its length after the renewal was sent: it
# expires here before it can expire in Redis, so two owners never write at once.
_TRUSTED_SHARE = 0.8

_ERRORS: dict[int, type[TandemError]] = {
    400: InvalidInput,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}

Handler = Callable[[str, str, dict[str, Any]], Awaitable[Any]]


class OwnerUnreachable(TandemError):
    """The replica that owns the runtime did not answer in time."""

    status_code = 503


@dataclass
class Lease:
    epoch: int
    trusted_until: float  # time.monotonic()
    taken_at: float = field(default_factory=time.monotonic)


class Cluster:
    def __init__(
        self,
        redis_url: str,
        lease_seconds: float,
        forward_timeout: float,
        *,
        workers: Callable[[], list[WorkerPublic]],
        hosts: Callable[[], dict[str, list[str]]] = dict,
        wanted: Callable[[str], bool],
        lost: Callable[[str], None],
        handle: Handler,
        taken: Callable[[str, int], None] = lambda _notebook, _epoch: None,
        record: Callable[[str, int], Awaitable[None]] | None = None,
    ) -> None:
        self.replica = uuid.uuid4().hex[:12]
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._lease_ms = int(lease_seconds * 1000)
        self._beat_seconds = lease_seconds / 4
        self._forward_timeout = forward_timeout
        self._workers = workers  # this replica's workers, now
        self._hosts = hosts  # worker token id -> notebooks its workers here host
        self._hosted_elsewhere: dict[str, set[str]] = {}  # the same, of other replicas
        self._wanted = wanted  # whether this replica still needs a notebook's lease
        self._lost = lost  # a lease this replica held is gone
        self._taken = taken  # this replica took a notebook's lease, under a new epoch
        self._record = record  # stores a new epoch as the notebook's fence (raises if not)
        self._handle = handle  # a forwarded command: (op, notebook id, args) -> JSON
        self._leases: dict[str, Lease] = {}
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handling: set[asyncio.Task[None]] = set()
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)

    async def start(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel(self.replica))
        self._tasks = [
            asyncio.create_task(self._listen(pubsub)),
            asyncio.create_task(self._beat()),
        ]

    async def stop(self) -> None:
        """Hand back every lease (another replica may take its runtime over at once)."""
        await stop_tasks(self._tasks)
        for notebook_id in list(self._leases):
            await self.release(notebook_id)
        with contextlib.suppress(RedisError):
            await self._redis.delete(self._workers_key(self.replica))
        await self._redis.aclose()

    @staticmethod
    def _channel(replica: str) -> str:
        return f"tandem:replica:{replica}"

    @staticmethod
    def _workers_key(replica: str) -> str:
        return f"tandem:workers:{replica}"

    # --- leases --------------------------------------------------------------------------

    def holds(self, notebook_id: str) -> bool:
        """Whether this replica may act as the runtime's owner now (its fence)."""
        lease = self._leases.get(notebook_id)
        return lease is not None and time.monotonic() < lease.trusted_until

    def epoch(self, notebook_id: str) -> int | None:
        lease = self._leases.get(notebook_id)
        return lease.epoch if lease is not None else None

    async def acquire(self, notebook_id: str) -> bool:
        """Take the notebook's lease if it is free or ours; False when another holds it."""
        sent = time.monotonic()
        epoch = int(
            await self._acquire(
                keys=[f"tandem:lease:{notebook_id}", f"tandem:epoch:{notebook_id}"],
                args=[self.replica, self._lease_ms],
            )
        )
        if epoch < 0:
            return False
        trusted = sent + self._lease_ms / 1000 * _TRUSTED_SHARE
        lease = self._leases.get(notebook_id)
        if lease is not None and lease.epoch == epoch:
            lease.trusted_until = trusted
            return True
        if self._record is not None:
            try:
                await self._record(notebook_id, epoch)  # before anything is written under it
            except BaseException:
                with contextlib.suppress(RedisError):
                    await self._renew(
                        keys=[f"tandem:lease:{notebook_id}"], args=[f"{self.replica} {epoch}", 0]
                    )
                raise
        lease = self._leases.get(notebook_id)
        if lease is not None and lease.epoch == epoch:
            lease.trusted_until = trusted  # a concurrent acquire got here first
        else:
            self._leases[notebook_id] = Lease(epoch, trusted)
            self._taken(notebook_id, epoch)
        return True

    async def release(self, notebook_id: str) -> None:
        lease = self._leases.pop(notebook_id, None)
        if lease is None:
            return
        with contextlib.suppress(RedisError):
            await self._renew(
                keys=[f"tandem:lease:{notebook_id}"], args=[f"{self.replica} {lease.epoch}", 0]
            )

    async def owner(self, notebook_id: str) -> str | None:
        """The replica holding the notebook's lease, if any."""
        held = await self._redis.get(f"tandem:lease:{notebook_id}")
        if not held:
            return None
        text = held.decode() if isinstance(held, bytes) else str(held)
        return text.split(" ")[0]

    async def take_over(self, notebook_id: str, wait: float) -> bool:
        """Take the lease, waiting up to `wait` seconds for the holder's to lapse."""
        deadline = time.monotonic() + wait
        while not await self.acquire(notebook_id):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def _renew_all(self) -> None:
        for notebook_id, lease in list(self._leases.items()):
            # Kept a while even unwanted: the command that took it may not have started the
            # runtime yet.
            settled = time.monotonic() - lease.taken_at > self._lease_ms / 1000
            if settled and not self._wanted(notebook_id):
                await self.release(notebook_id)
                continue
            sent = time.monotonic()
            try:
                kept = await self._renew(
                    keys=[f"tandem:lease:{notebook_id}"],
                    args=[f"{self.replica} {lease.epoch}", self._lease_ms],
                )
            except RedisError as error:
                # Not renewed: still ours until it is no longer trusted.
                log.warning("could not renew the lease of %s: %s", notebook_id, error)
                if time.monotonic() < lease.trusted_until:
                    continue
                kept = 0
            if kept and self._leases.get(notebook_id) is lease:
                lease.trusted_until = sent + self._lease_ms / 1000 * _TRUSTED_SHARE
            elif not kept and self._leases.get(notebook_id) is lease:
                log.warning("notebook %s: this replica lost the runtime's lease", notebook_id)
                del self._leases[notebook_id]
                self._lost(notebook_id)

    async def _beat(self) -> None:
        while True:
            try:
                workers = [w.model_dump(mode="json") for w in self._workers()]
                await self._redis.set(
                    self._workers_key(self.replica),
                    json.dumps(workers),
                    px=max(self._lease_ms, 3000),
                )
                await self._share_hosts()
                await self._renew_all()
            except RedisError as error:
                log.warning("cluster heartbeat failed: %s", error)
            await asyncio.sleep(self._beat_seconds)

    # --- workers everywhere -------------------------------------------------------------

    async def _share_hosts(self) -> None:
        await self._redis.set(
            f"tandem:hosts:{self.replica}",
            json.dumps(self._hosts()),
            px=max(self._lease_ms, 3000),
        )
        found: dict[str, set[str]] = {}
        async for key in self._redis.scan_iter(match="tandem:hosts:*"):
            if key.decode().removeprefix("tandem:hosts:") == self.replica:
                continue
            raw = await self._redis.get(key)
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                for token_id, notebooks in json.loads(raw or b"{}").items():
                    found.setdefault(str(token_id), set()).update(map(str, notebooks))
        self._hosted_elsewhere = found

    def hosted_elsewhere(self, token_id: int, notebook_id: str) -> bool:
        """Whether a worker of this token hosts the notebook at another replica (as of the
        last beat)."""
        return notebook_id in self._hosted_elsewhere.get(str(token_id), set())

    async def all_workers(self) -> dict[str, list[WorkerPublic]]:
        """Every live replica's workers, by replica (this one's as it has them now)."""
        found: dict[str, list[WorkerPublic]] = {self.replica: self._workers()}
        async for key in self._redis.scan_iter(match="tandem:workers:*"):
            replica = key.decode().removeprefix("tandem:workers:")
            if replica == self.replica:
                continue
            raw = await self._redis.get(key)
            if raw is None:
                continue
            try:
                found[replica] = [WorkerPublic.model_validate(w) for w in json.loads(raw)]
            except (ValueError, ValidationError):
                log.warning("replica %s published workers that do not parse", replica)
        return found

    async def replica_offering(self, runtime: RuntimeType) -> str | None:
        """Another replica with a worker that could run `runtime`, one with a free slot
        first; None when no other replica has one."""
        best: tuple[bool, str] | None = None
        for replica, workers in (await self.all_workers()).items():
            if replica == self.replica:
                continue
            for worker in workers:
                accepted = [g.index for g in worker.gpus if runtime.accepts(g)]
                if len(accepted) < runtime.gpus:
                    continue
                free = len(worker.kernels) < worker.max_kernels and (
                    len([i for i in accepted if i not in worker.gpus_in_use]) >= runtime.gpus
                )
                if best is None or (free and not best[0]):
                    best = (free, replica)
        return best[1] if best is not None else None

    # --- commands to the owner ----------------------------------------------------------

    async def ask(self, replica: str, op: str, notebook_id: str, args: dict[str, Any]) -> Any:
        """Have `replica` run `op` for the notebook; its answer, or its error raised here."""
        request_id = uuid.uuid4().hex
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        request = {
            "id": request_id,
            "from": self.replica,
            "op": op,
            "notebook_id": notebook_id,
            "args": args,
        }
        try:
            heard = await self._redis.publish(self._channel(replica), json.dumps(request))
            if not heard:
                raise OwnerUnreachable("the replica running this notebook's kernel is gone")
            answer = await asyncio.wait_for(reply, self._forward_timeout)
        except (TimeoutError, RedisError):
            raise OwnerUnreachable(
                "the replica running this notebook's kernel did not answer; try again"
            ) from None
        finally:
            self._replies.pop(request_id, None)
        status = int(answer.get("status", 500))
        if status != 200:
            error = _ERRORS.get(status, TandemError)
            raise error(str(answer.get("body") or "the owning replica failed"))
        return answer.get("body")

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except RedisError as error:
                log.warning("cluster channel: %s; resubscribing", error)
                await asyncio.sleep(0.5)
                with contextlib.suppress(RedisError):
                    await pubsub.subscribe(self._channel(self.replica))
                continue
            if message is None:
                continue
            try:
                data = json.loads(message["data"])
            except (ValueError, TypeError):
                continue
            if not isinstance(data, dict):
                continue
            if "reply" in data:
                waiting = self._replies.get(str(data["reply"]))
                if waiting is not None and not waiting.done():
                    waiting.set_result(data)
                continue
            task = asyncio.create_task(self._serve(data))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _serve(self, request: dict[str, Any]) -> None:
        status, body = 200, None
        try:
            body = await self._handle(
                str(request["op"]), str(request["notebook_id"]), dict(request.get("args") or {})
            )
        except TandemError as error:
            status, body = error.status_code, error.message
        except Exception:
            log.exception("a forwarded %s failed", request.get("op"))
            status, body = 500, "the owning replica failed"
        reply = {"reply": request.get("id"), "status": status, "body": body}
        with contextlib.suppress(RedisError):
            await self._redis.publish(self._channel(str(request.get("from"))), json.dumps(reply))
