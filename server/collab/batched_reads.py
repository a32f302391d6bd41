"""Reads by key that arrive together are made together: one thread hop and one query for
all the keys asked for while the previous read ran (hundreds of rooms opening at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedReads(Generic[K, V]):
    """`await get(key)` gives `read_many(keys)[key]`, with `read_many` (blocking) run in a
    thread (of `executor`, else the loop's default) for up to `batch` keys at a time. A
    read that fails fails every caller in it."""

    def __init__(
        self,
        read_many: Callable[[list[K]], dict[K, V]],
        batch: int = 64,
        executor: Executor | None = None,
    ) -> None:
        self._read_many = read_many
        self._batch = batch
        self._executor = executor
        self._wanted: list[tuple[K, asyncio.Future[V]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._wanted.append((key, future))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        return await future

    async def _read(self) -> None:
        try:
            while self._wanted:
                batch, self._wanted = self._wanted[: self._batch], self._wanted[self._batch :]
                keys = list(dict.fromkeys(key for key, _ in batch))
                try:
                    found = await asyncio.get_running_loop().run_in_executor(
                        self._executor, self._read_many, keys
                    )
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                for key, future in batch:
                    if not future.done():
                        future.set_result(found[key])
        finally:
            self._reader = None
            for _, future in self._wanted:  # only when cancelled: nobody is left to read
                future.cancel()
            self._wanted = []
