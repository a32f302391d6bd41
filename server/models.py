"""Every table, imported in one place so Alembic and the engine see the whole schema."""

from server.auth.models import ApiToken, User, WebSession
from server.collab.models import Snapshot, UpdateRecord
from server.gateway.models import WorkerToken
from server.notebooks.models import Membership, Notebook

__all__ = [
    "ApiToken",
    "Membership",
    "Notebook",
    "Snapshot",
    "UpdateRecord",
    "User",
    "WebSession",
    "WorkerToken",
]
