"""Every table, imported in one place so Alembic and the engine see the whole schema."""

from server.audit.models import AccountEvent, AuditEvent
from server.auth.models import ApiToken, Invite, User, WebSession
from server.collab.models import RuntimeFence, Snapshot, UpdateRecord
from server.comments.models import Comment, CommentThread, Mention
from server.files.models import NotebookFile, VersionFile
from server.gateway.keys import ServerSecret
from server.gateway.models import WorkerToken
from server.history.models import Version
from server.notebooks.models import Membership, Notebook
from server.shares.models import LinkGrant, ShareLink

__all__ = [
    "AccountEvent",
    "ApiToken",
    "AuditEvent",
    "Comment",
    "CommentThread",
    "Invite",
    "LinkGrant",
    "Membership",
    "Mention",
    "Notebook",
    "NotebookFile",
    "RuntimeFence",
    "ServerSecret",
    "ShareLink",
    "Snapshot",
    "UpdateRecord",
    "User",
    "Version",
    "VersionFile",
    "WebSession",
    "WorkerToken",
]
