"""Logging set-up: one format, and no secret in any line.

uvicorn logs request lines with their query string and path: websocket clients that cannot
set headers pass `?token=...`, and a share link's secret is in its path (`/links/tdl_...`).
The filter here blanks such values, and any of our token kinds (`tdm_` API, `tdw_` worker,
`tdl_` link, `tdi_` invite) wherever they appear, before anything is written.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAM = re.compile(r"((?:token|password|session)=)[^&\s\"']+", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"\b(td[mwli]_)[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    return _SECRET_VALUE.sub(r"\1[redacted]", _SECRET_PARAM.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # uvicorn's "[accepted]" and websockets' "connection open" / "connection closed" are
    # three records per socket on this logger (~60 µs through the redaction filter, a few
    # per cent of a mass join's CPU). Above DEBUG it keeps warnings and errors; Tandem logs
    # its own start and stop and the sockets it refuses (server.app, server.deps).
    if logging.getLevelName(level) != logging.DEBUG:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    redactor = RedactSecrets()
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "server"):
        logger = logging.getLogger(name)
        logger.addFilter(redactor)
        for handler in logger.handlers:
            handler.addFilter(redactor)
