"""Fan-out of notebook events inside one server process.

Publishers may be request threads (REST routes run in a thread pool) or the event loop;
subscribers are websocket handlers on the loop. A Redis-backed broker can replace this
class behind the same three methods when several replicas run.
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
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: NotebookEvent) -> None:
        for listener in [*self._global, *self._listeners.get(event.notebook_id, ())]:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed for %s", event.type)
