"""A TCP load balancer in front of two replicas, for tests: it sends every new connection to
its current target, and switching the target drops the connections it carries (as a
replica that goes away, or a balancer that moves a client, would)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from tests.support import free_port


class SwitchingProxy:
    def __init__(self, target: int) -> None:
        self.port = free_port()
        self.target = target
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> SwitchingProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for each in (writer, up_writer):
                self._writers.discard(each)
                each.close()

    def switch(self, target: int) -> None:
        """New connections go to `target`; the ones open now are cut."""

        def cut() -> None:
            self.target = target
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(cut)

    def stop(self) -> None:
        def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.contextmanager
def switching_proxy(target: int) -> Iterator[SwitchingProxy]:
    proxy = SwitchingProxy(target).start()
    try:
        yield proxy
    finally:
        proxy.stop()
