"""One cell's run as the runtime tracks it (queued, running, done) and how it ended."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.gateway import outputs


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | error | aborted | lost
    execution_count: int | None = None
    reason: str = ""


@dataclass(eq=False)
class Execution:
    cell_id: str
    batch: str
    username: str
    user_id: int
    writer: outputs.CellWriter
    done: asyncio.Future[Outcome]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = 0.0
    started_at: datetime | None = None
    prompt: dict[str, Any] | None = None


# An output on its way into the document: the run it belongs to, its type, its content.
Output = tuple[Execution, str, dict[str, Any]]
