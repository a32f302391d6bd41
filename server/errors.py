"""The errors Tandem raises on purpose, each with its one HTTP status and websocket close code.

    TandemError                  500 / 1011
     ├── InvalidInput            400 / 1003   a request the server cannot act on
     │    ├── InvalidNotebook    422 / 1003   an .ipynb that nbformat rejects
     │    ├── UploadTooLarge     413 / 1009   over TANDEM_MAX_UPLOAD_MB or a files quota
     │    └── ProtocolError      400 / 1002   a malformed y-websocket frame
     │         ├── UnknownMessage 400 / 1003  a message type we do not speak
     │         ├── InvalidUpdate  400 / 1007  an update pycrdt cannot decode
     │         └── FrameTooLarge  413 / 1009  over TANDEM_MAX_FRAME_BYTES
     ├── NotAuthenticated        401 / 4401   no or bad credentials
     ├── PermissionDenied        403 / 4403   authenticated, but the role does not allow it
     ├── NotFound                404 / 4404   no such thing (or not visible to this person)
     ├── Conflict                409 / 4409   the request clashes with current state
     │    └── PreconditionFailed 412 / 4409  If-Match / If-None-Match did not hold
     └── TooManyRequests         429 / 4429   slow down (failed logins)

Messages are written for the person reading them and never carry secrets or tracebacks.
"""

from __future__ import annotations


class TandemError(Exception):
    status_code = 500
    close_code = 1011

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TandemError):
    status_code = 400
    close_code = 1003


class InvalidNotebook(InvalidInput):
    status_code = 422


class UploadTooLarge(InvalidInput):
    status_code = 413
    close_code = 1009


class ProtocolError(InvalidInput):
    close_code = 1002


class UnknownMessage(ProtocolError):
    close_code = 1003


class InvalidUpdate(ProtocolError):
    close_code = 1007


class FrameTooLarge(ProtocolError):
    status_code = 413
    close_code = 1009


class NotAuthenticated(TandemError):
    status_code = 401
    close_code = 4401


class PermissionDenied(TandemError):
    status_code = 403
    close_code = 4403


class NotFound(TandemError):
    status_code = 404
    close_code = 4404


class Conflict(TandemError):
    status_code = 409
    close_code = 4409


class PreconditionFailed(Conflict):
    status_code = 412


class TooManyRequests(TandemError):
    status_code = 429
    close_code = 4429
