"""Worker tokens (stored hashed), runtime types, and the gateway's request/response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, StringConstraints, model_validator
from sqlmodel import Field, SQLModel

from kernels.messages import (
    MAX_COMM_BUFFERS,
    MAX_COMM_BYTES,
    MAX_QUERY_CODE_CHARS,
    Gpu,
    Limits,
    QueryStatus,
    Sandbox,
    Variable,
)
from server.timeutil import utcnow
from server.vocabulary import RuntimeType


class WorkerToken(SQLModel, table=True):
    __tablename__ = "worker_tokens"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(min_length=1, max_length=100)
    # SHA-256 of the token, as for API tokens: 256 random bits need no slow hash.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)


class WorkerTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class WorkerTokenPublic(BaseModel):
    id: int
    name: str
    created_at: datetime


class WorkerTokenCreated(WorkerTokenPublic):
    token: str  # shown once


class ExecuteRequest(BaseModel):
    cell_ids: list[str] = Field(min_length=1, max_length=10_000)
    # The caller's Yjs state vector (base64): the server runs the cells only once it has
    # everything the caller had, so keystrokes still on their way are not left out.
    state_vector: str | None = Field(default=None, max_length=1_000_000)


class ExecuteAccepted(BaseModel):
    queued: list[str]
    skipped: list[str]  # markdown and raw cells: nothing to run


class RuntimeChange(BaseModel):
    type: str = Field(min_length=1, max_length=64)


class InputValue(BaseModel):
    value: str = Field(max_length=1_000_000)


class CompleteRequest(BaseModel):
    """The editor's Tab: the cell's code and the cursor in it. Positions count Unicode code
    points (Python's string index), as Jupyter's protocol does, not JavaScript's UTF-16."""

    code: str = Field(max_length=MAX_QUERY_CODE_CHARS)
    cursor_pos: int = Field(ge=0)

    @model_validator(mode="after")
    def _cursor_in_code(self) -> CompleteRequest:
        if self.cursor_pos > len(self.code):
            raise ValueError("cursor_pos is past the end of code")
        return self


class InspectRequest(CompleteRequest):
    """Shift+Tab; `detail_level` 1 asks for the source too, where the kernel has it."""

    detail_level: Literal[0, 1] = 0


class Completions(BaseModel):
    """`matches` replace code[cursor_start:cursor_end]; `types` is empty or one kind per
    match ("function", "module", "instance", ...). "busy": the kernel is running a cell and
    did not answer in time; the editor falls back (word completion)."""

    status: QueryStatus
    matches: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    cursor_start: int = 0
    cursor_end: int = 0


class Inspection(BaseModel):
    """The kernel's help on the name at the cursor, as plain text (ANSI colours removed)."""

    status: QueryStatus
    found: bool = False
    text: str = ""


class WidgetMessage(BaseModel):
    """A person's message to a widget model: `data` is `{"method": "update", "state",
    "buffer_paths"}` or `{"method": "custom", "content"}`, as ipywidgets' manager sends it;
    `msg_id` is the page's own id for it (its echo_update comes back with it)."""

    msg_id: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    ]
    data: dict[str, Any]
    buffers: list[str] = Field(default_factory=list, max_length=MAX_COMM_BUFFERS)

    @model_validator(mode="after")
    def _bounded(self) -> WidgetMessage:
        if len(self.model_dump_json()) > MAX_COMM_BYTES * 4 // 3:
            raise ValueError("the widget message is too big")
        return self


class WidgetMessageDone(BaseModel):
    """`idle`: the kernel has handled the message; False: it did not say so in time."""

    idle: bool


class WidgetState(BaseModel):
    """The widget models of the running kernel. Each model: `comm_id`, `state`,
    `metadata`, `buffer_paths`, `buffers` (base64). `seq`: the number of the last
    `widget.comm` event applied; a page drops the events it receives up to it."""

    seq: int
    models: list[dict[str, Any]]


class VariableList(BaseModel):
    """The kernel's user variables (the variable inspector): name, type, shape or length, a
    short repr, size in bytes where cheap. "busy": a cell is running and the kernel did not
    answer in time; `truncated`: some were left out (too many, or the probe ran out of
    time)."""

    status: QueryStatus
    variables: list[Variable] = Field(default_factory=list)
    truncated: bool = False


class RuntimeStatus(BaseModel):
    type: str
    types: list[RuntimeType]
    # The types some connected worker could run (the chooser marks the others).
    available_types: list[str] = Field(default_factory=list)
    status: str  # a lifecycle.RuntimeState value: stopped, waiting, starting, idle, ...
    reason: str = ""
    queue_position: int | None = None  # while waiting for a worker
    worker: str | None = None
    gpus: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    idle_deadline: datetime | None = None
    lifetime_deadline: datetime | None = None
    queued_cells: list[str] = Field(default_factory=list)
    running_cell: str | None = None
    waiting_for_input: dict[str, Any] | None = None
    # How the kernel is isolated, and what it uses against its limits (bytes; None unknown).
    sandbox: Sandbox | None = None
    usage: RuntimeUsage | None = None
    # The server's clock when this was said: a page counts a running cell's time from the
    # start stored in the document, on the server's clock, not its own.
    now: datetime = Field(default_factory=utcnow)


class RuntimeUsage(BaseModel):
    memory_bytes: int | None = None
    disk_bytes: int | None = None
    gpu_memory_bytes: int | None = None
    limits: Limits


class WorkerPublic(BaseModel):
    id: str
    name: str
    cpus: int
    memory_mb: int
    gpus: list[Gpu]
    gpus_in_use: list[int]
    max_kernels: int
    sandbox: Sandbox
    kernels: list[dict[str, Any]]
    connected_at: datetime
    last_heartbeat: datetime
