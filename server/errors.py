"""The errors Tandem raises on purpose, each with its one HTTP status and websocket close code.

    TandemError                  500 / 1011
     ├── InvalidInput            400 / 1003   a request the server cannot act on
     │    ├── InvalidNotebook    422 / 1003   an .ipynb that nbformat rejects
     │    ├── UploadTooLarge     413 / 1009   over TANDEM_MAX_UPLOAD_MB or a files quota
     │    ├── UnknownMention     422 / 1003   a comment @mentions no one who can read it
     │    └── ProtocolError      400 / 1002   a malformed y-websocket frame
     │         ├── UnknownMessage 400 / 1003  a message type we do not speak
     │         ├── InvalidUpdate  400 / 1007  an update pycrdt cannot decode
     │         └── FrameTooLarge  413 / 1009  over TANDEM_MAX_FRAME_BYTES
     ├── NotAuthenticated        401 / 4401   no or bad credentials
     ├── PermissionDenied        403 / 4403   authenticated, but the role does not allow it
     ├── NotFound                404 / 4404   no such thing (or not visible to this person)
     ├── Conflict                409 / 4409   the request clashes with current state
     │    ├── PreconditionFailed 412 / 4409  If-Match / If-None-Match did not hold
     │    └── FencedOut          409 / 4409  a runtime write under a lease epoch since taken
     └── TooManyRequests         429 / 4429   slow down (failed logins)

Messages are written for the person reading them and never carry secrets or tracebacks.
Every websocket close code the server sends is one `CloseCode`; `CONTRACT` is the public
part of that table (DESIGN.md's list, which clients rely on).
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000  # the client's own close, echoed
    MALFORMED = 1002  # a frame that does not parse
    UNKNOWN_TYPE = 1003  # a message type we do not speak (or a text frame on sync)
    UNDECODABLE_UPDATE = 1007  # an update pycrdt cannot decode or the schema refuses
    POLICY = 1008  # a worker that did not say hello
    TOO_BIG = 1009  # over TANDEM_MAX_FRAME_BYTES or a files quota
    COULD_NOT_STORE = 1011  # the update log refused the write: reconnect, resend
    RESTARTING = 1012  # the server is stopping, or a sign-in ended: reconnect
    TOO_FAR_BEHIND = 1013  # a client that does not read: reconnect to resync
    NOT_AUTHENTICATED = 4401  # no or bad credentials; a revoked worker token
    ACCESS_REMOVED = 4403  # a role taken away, a share link revoked or expired
    DELETED = 4404  # the notebook was deleted
    NO_HEARTBEAT = 4408  # a worker that went quiet
    CONFLICT = 4409
    TOO_MANY_REQUESTS = 4429


# What DESIGN.md promises clients, word for word.
CONTRACT: dict[CloseCode, str] = {
    CloseCode.MALFORMED: "malformed",
    CloseCode.UNKNOWN_TYPE: "unknown type",
    CloseCode.UNDECODABLE_UPDATE: "undecodable update",
    CloseCode.TOO_BIG: "too big",
    CloseCode.COULD_NOT_STORE: "could not store",
    CloseCode.RESTARTING: "restarting",
    CloseCode.TOO_FAR_BEHIND: "too far behind",
    CloseCode.ACCESS_REMOVED: "access removed",
    CloseCode.DELETED: "deleted",
}


class TandemError(Exception):
    status_code = 500
    close_code: CloseCode = CloseCode.COULD_NOT_STORE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TandemError):
    status_code = 400
    close_code = CloseCode.UNKNOWN_TYPE


class InvalidNotebook(InvalidInput):
    status_code = 422


class UploadTooLarge(InvalidInput):
    status_code = 413
    close_code = CloseCode.TOO_BIG


class UnknownMention(InvalidInput):
    status_code = 422


class ProtocolError(InvalidInput):
    close_code = CloseCode.MALFORMED


class UnknownMessage(ProtocolError):
    close_code = CloseCode.UNKNOWN_TYPE


class InvalidUpdate(ProtocolError):
    close_code = CloseCode.UNDECODABLE_UPDATE


class FrameTooLarge(ProtocolError):
    status_code = 413
    close_code = CloseCode.TOO_BIG


class NotAuthenticated(TandemError):
    status_code = 401
    close_code = CloseCode.NOT_AUTHENTICATED


class PermissionDenied(TandemError):
    status_code = 403
    close_code = CloseCode.ACCESS_REMOVED


class NotFound(TandemError):
    status_code = 404
    close_code = CloseCode.DELETED


class Conflict(TandemError):
    status_code = 409
    close_code = CloseCode.CONFLICT


class FencedOut(Conflict):
    """A runtime's write carried a lease epoch lower than the notebook's stored fence:
    another replica owns the runtime now, so the write was not stored."""


class PreconditionFailed(Conflict):
    status_code = 412


class TooManyRequests(TandemError):
    status_code = 429
    close_code = CloseCode.TOO_MANY_REQUESTS
