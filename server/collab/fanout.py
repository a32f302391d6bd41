"""How a room's changes reach the other replicas that hold the same notebook.

`Fanout` states the contract and is itself the in-process fan-out of one server: there is
nobody else to tell, so every method does nothing. `RedisFanout` (`redis_fanout`) carries
them over Redis when several replicas run. Either way the update log stays the source of
truth: a fan-out only makes others see a stored update sooner than a heal would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.collab.room import Room


class Fanout:
    """Contract:

    - `join(notebook_id)` runs before a room is read from the database, `attach(room)` once
      it is loaded: whatever is published for the notebook after `join` returns reaches the
      room (applied in `attach` if it came in between), so load + fan-out miss nothing.
    - `leave(notebook_id)` when the room is unloaded.
    - `updated(notebook_id, seq, update)` after an update is stored and applied here;
      `presence(notebook_id, message)` with an awareness message this replica accepted.
    """

    async def join(self, notebook_id: str) -> None:
        return None

    def attach(self, room: Room) -> None:
        return None

    async def leave(self, notebook_id: str) -> None:
        return None

    def updated(self, notebook_id: str, seq: int, update: bytes) -> None:
        return None

    def presence(self, notebook_id: str, message: bytes) -> None:
        return None
