"""Fan-out of notebook events inside one server process, and out to the other replicas.

Publishers may be request threads (REST routes run in a thread pool) or the event loop;
subscribers are websocket handlers on the loop. When several replicas run, a relay
(`server.collab.redis_fanout`) is told every event published here and hands in, with
`deliver_remote`, those the other replicas published; so a role taken away on one replica
closes that person's sockets on all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from server.events.types import NotebookEvent

log = logging.getLogger(__name__)


Listener = Callable[[NotebookEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: dict[str, set[Listener]] = {}
        self._global: set[Listener] = set()
        self._relay: Listener | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, notebook_id: str, listener: Listener) -> Callable[[], None]:
        """Call `listener` on the event loop for every event of this notebook."""
        self._listeners.setdefault(notebook_id, set()).add(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(notebook_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[notebook_id]

        return unsubscribe

    def subscribe_all(self, listener: Listener) -> None:
        self._global.add(listener)

    def relay_to(self, relay: Listener) -> None:
        """Also hand every event published here to `relay` (on the event loop)."""
        self._relay = relay

    def publish(self, event: NotebookEvent) -> None:
        """Deliver `event`; safe to call from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._publish_here(event)
        else:
            loop.call_soon_threadsafe(self._publish_here, event)

    def deliver_remote(self, event: NotebookEvent) -> None:
        """An event another replica published: to this replica's listeners only."""
        self._deliver(event)

    def _publish_here(self, event: NotebookEvent) -> None:
        self._deliver(event)
        if self._relay is not None:
            try:
                self._relay(event)
            except Exception:
                log.exception("relaying %s failed", event.type)

    def _deliver(self, event: NotebookEvent) -> None:
        for listener in [*self._global, *self._listeners.get(event.notebook_id, ())]:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed for %s", event.type)
