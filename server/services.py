"""The long-lived parts of one running server, built once and shared by every route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from server.auth.throttle import LoginThrottle, SocketThrottle
from server.collab.presence import Presence
from server.collab.rooms import RoomManager
from server.collab.update_log import UpdateLog
from server.config import Settings
from server.events.bus import EventBus
from server.notebooks.access import SocketChecks

if TYPE_CHECKING:
    from server.comments.watch import CommentWatch
    from server.files.storage import FileStorage
    from server.gateway.gateway import Gateway


@dataclass
class Services:
    settings: Settings
    engine: Engine
    update_log: UpdateLog
    rooms: RoomManager
    bus: EventBus
    gateway: Gateway
    comments: CommentWatch
    files: FileStorage
    presence: Presence
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    socket_throttle: SocketThrottle = field(default_factory=lambda: SocketThrottle(None))
    socket_checks: SocketChecks = field(init=False)

    def __post_init__(self) -> None:
        self.socket_checks = SocketChecks(self.engine)
