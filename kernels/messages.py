"""The worker protocol: JSON text frames between a worker and the server's gateway.

A worker dials in, says `hello` (what it has, which kernels it still runs), gets `welcome`,
then sends `heartbeat`s and kernel traffic; the server sends kernel commands. Every frame is
one of the models below, told apart by `type`; anything else is refused by `parse_*`.

    worker -> server: hello, heartbeat, kernel_progress, kernel_started, kernel_failed,
                      kernel_died, kernel_usage, output, input_request, execute_done,
                      complete_reply, inspect_reply, variables_reply, comm, comm_idle,
                      widget_output, widget_state
    server -> worker: welcome, start_kernel, execute, interrupt, input_reply,
                      shutdown_kernel, files_changed, complete, inspect, variables, ack, resume,
                      comm_msg, request_widgets

A kernel outlives its worker's connection by the server's reconnect grace: what a kernel
says that the server must not miss (`RELIABLE`: outputs, input requests, a cell's end, the
kernel starting, failing or dying) is numbered per kernel (`seq`) and kept by the worker
until the server `ack`s it (once it is stored). A reconnecting worker lists the kernels it
still runs in its `hello`; the server answers `resume` (send again what came after
`after_seq`) for those it takes back, `shutdown_kernel` for the others.

`complete` and `inspect` are the editor's Tab and Shift+Tab: the worker asks the kernel on
its shell channel and always answers with the same `request_id`, `status` "busy" when the
kernel did not answer in time (a cell is running), so the editor falls back at once.
`variables` (the variable inspector) is answered the same way, from a silent execution
that leaves no name behind in the kernel (`kernels/probe.py`).

`comm` carries the kernel's `comm_open` / `comm_msg` / `comm_close` (ipywidgets' models),
whoever caused them; `comm_msg` is a person's widget change going to the kernel's shell, and
`comm_idle` says the kernel has finished with it (the kernel's idle status for it), which
is what paces a widget's next change; `widget_output` is what a widget callback printed.
Binary buffers travel base64-encoded. `comm` and `widget_output` are `RELIABLE` like
outputs: what a kernel's widgets say while its worker is away reaches the server that
takes the kernel back. The widget state itself is the server's memory: a server that adopts
a kernel without its widgets (a restarted one, or one taking over from a killed replica)
sends `request_widgets`, and the worker rebuilds them as ipywidgets' own manager does for a
page opened against a running kernel: it asks the kernel which comms of target
`jupyter.widget` are open (`comm_info_request`), sends each a `comm_msg`
`{"method": "request_state"}`, and passes each answer (an `update` carrying the whole
state) up as `widget_state`, which makes the model when the server does not have it. At
most `max_widgets` comms are asked (the server's cap; `MAX_WIDGETS` at most), a few at a
time; each answer is capped as a `comm` is, all of them together at
`MAX_WIDGET_STATE_BYTES`; a kernel that does not answer (a cell runs) is waited for
`WIDGET_STATE_WAIT_SECONDS` in the background, holding nothing up.

A notebook's files travel over HTTP, not this socket (see `kernels/workspace.py`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

PROTOCOL_VERSION = 1
_ID = Field(min_length=1, max_length=64)
_SEQ = Field(default=0, ge=0)  # see RELIABLE
_TEXT = Field(default="", max_length=4096)
# Completion and inspection: the code around the cursor travels whole (Jupyter's protocol
# wants the cell), bounded; the answers are bounded too, whatever the kernel sends.
MAX_QUERY_CODE_CHARS = 1_000_000
MAX_MATCHES = 1000
MAX_MATCH_CHARS = 1000
MAX_INSPECT_CHARS = 64 * 1024
QueryStatus = Literal["ok", "busy", "error"]
# How long the worker waits for the kernel's answer before it says "busy": a kernel running
# a cell answers only once the cell ends, so the editor falls back soon; an idle one always
# answers, but its first completion can take seconds (jedi loading its caches).
QUERY_WAIT_BUSY_SECONDS = 1.0
QUERY_WAIT_IDLE_SECONDS = 5.0
# The variable inspector: at most this many variables, each described in a few short words.
MAX_VARIABLES = 500
MAX_VARIABLE_NAME_CHARS = 200
MAX_VARIABLE_TEXT_CHARS = 200


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gpu(_Message):
    index: int = Field(ge=0, le=1024)
    name: str = Field(max_length=200)
    memory_mb: int = Field(ge=0)
    uuid: str = Field(default="", max_length=100)


class Resources(_Message):
    cpus: int = Field(ge=1, le=100_000)
    memory_mb: int = Field(ge=0)
    gpus: list[Gpu] = Field(default_factory=list, max_length=64)


class Limits(_Message):
    """What one kernel may use; 0 means the worker's default (derived from its machine)."""

    memory_mb: int = Field(default=0, ge=0)
    cpus: float = Field(default=0, ge=0, le=100_000)
    max_processes: int = Field(default=0, ge=0, le=1_000_000)
    disk_mb: int = Field(default=0, ge=0)  # the working directory, /content


class Environment(_Message):
    """A Python environment kernels run on: ipykernel plus these packages, built once by the
    worker (a venv of its own, never the worker's or the server's environment)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    packages: list[str] = Field(default_factory=list, max_length=500)

    @field_validator("packages")
    @classmethod
    def _requirements(cls, packages: list[str]) -> list[str]:
        """Each is a PEP 508 requirement, never a pip option (`--index-url=...`)."""
        for package in packages:
            check_requirement(package)
        return packages


def check_requirement(text: str) -> None:
    try:
        Requirement(text)
    except InvalidRequirement:
        raise ValueError(f"not a package requirement: {text[:100]!r}") from None


class Sandbox(_Message):
    """How this worker isolates kernels, as the runtime badge shows it."""

    kind: Literal["bubblewrap", "none", "unavailable"]
    limits: str = Field(default="", max_length=200)  # what enforces the limits
    detail: str = Field(default="", max_length=1000)  # a warning, or why it is unavailable


# --- worker -> server ------------------------------------------------------------------


class HeldExecution(_Message):
    """The cell a held kernel is running: enough for a server that never saw it (a
    restarted one) to keep writing its outputs and answer its prompt."""

    execution_id: str = _ID
    cell_id: str = Field(default="", max_length=64)
    run_by: str = Field(default="", max_length=200)
    run_by_id: int = Field(default=0, ge=0)
    waiting_input: bool = False
    prompt: str = _TEXT
    password: bool = False


class HeldKernel(_Message):
    """A kernel a reconnecting worker still runs."""

    kernel_id: str = _ID
    workspace: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    gpus: list[int] = Field(default_factory=list, max_length=64)
    started: bool = True  # False while it is still starting
    execution: HeldExecution | None = None


class Hello(_Message):
    type: Literal["hello"] = "hello"
    version: int = PROTOCOL_VERSION
    name: str = Field(min_length=1, max_length=100)
    resources: Resources
    max_kernels: int = Field(ge=1, le=10_000)
    sandbox: Sandbox = Sandbox(kind="none", detail="an older worker")
    kernels: list[HeldKernel] = Field(default_factory=list, max_length=10_000)


class Heartbeat(_Message):
    type: Literal["heartbeat"] = "heartbeat"


class KernelStarted(_Message):
    type: Literal["kernel_started"] = "kernel_started"
    kernel_id: str = _ID
    seq: int = _SEQ


class KernelProgress(_Message):
    """What a kernel that is still starting waits for (its environment being built)."""

    type: Literal["kernel_progress"] = "kernel_progress"
    kernel_id: str = _ID
    detail: str = _TEXT


class KernelFailed(_Message):
    type: Literal["kernel_failed"] = "kernel_failed"
    kernel_id: str = _ID
    reason: str = _TEXT
    seq: int = _SEQ


class KernelDied(_Message):
    type: Literal["kernel_died"] = "kernel_died"
    kernel_id: str = _ID
    reason: str = _TEXT
    seq: int = _SEQ


class KernelUsage(_Message):
    """Sampled every few seconds while a kernel runs; the limits are those it runs under."""

    type: Literal["kernel_usage"] = "kernel_usage"
    kernel_id: str = _ID
    memory_bytes: int | None = Field(default=None, ge=0)
    disk_bytes: int | None = Field(default=None, ge=0)
    gpu_memory_bytes: int | None = Field(default=None, ge=0)
    limits: Limits = Limits()


OutputType = Literal[
    "stream",
    "display_data",
    "execute_result",
    "error",
    "clear_output",
    "update_display_data",
    "execute_input",
]
OUTPUT_TYPES: frozenset[str] = frozenset(get_args(OutputType))


class Output(_Message):
    """One IOPub message of an execution, of one of `OUTPUT_TYPES` (content as the kernel
    sent it)."""

    type: Literal["output"] = "output"
    kernel_id: str = _ID
    execution_id: str = _ID
    msg_type: OutputType
    content: dict[str, Any]
    seq: int = _SEQ
    # The kernel's msg_id of the request it answers: an ipywidgets Output widget captures
    # the outputs of the request its `msg_id` names (`with out:`).
    parent_msg_id: str = Field(default="", max_length=128)


class WidgetOutput(_Message):
    """An IOPub output of a widget callback: its parent is a person's `comm_msg`, not an
    execution (`interact` printing into its Output widget)."""

    type: Literal["widget_output"] = "widget_output"
    kernel_id: str = _ID
    parent_msg_id: str = Field(min_length=1, max_length=128)
    msg_type: OutputType
    content: dict[str, Any]
    seq: int = _SEQ


class InputRequest(_Message):
    type: Literal["input_request"] = "input_request"
    kernel_id: str = _ID
    execution_id: str = _ID
    prompt: str = _TEXT
    password: bool = False
    seq: int = _SEQ


class ExecuteDone(_Message):
    """Sent after the execute reply and the kernel's idle status: every output of the
    execution went before it on the same socket."""

    type: Literal["execute_done"] = "execute_done"
    kernel_id: str = _ID
    execution_id: str = _ID
    status: Literal["ok", "error", "aborted"]
    execution_count: int | None = None
    seq: int = _SEQ


class CompleteReply(_Message):
    """The kernel's completions of `code` at `cursor_pos`: `matches` replace
    code[cursor_start:cursor_end]; `types` is empty or one kind per match ("function",
    "module", ...). Positions count Unicode code points, as Jupyter's protocol does."""

    type: Literal["complete_reply"] = "complete_reply"
    kernel_id: str = _ID
    request_id: str = _ID
    status: QueryStatus
    matches: list[Annotated[str, Field(max_length=MAX_MATCH_CHARS)]] = Field(
        default_factory=list, max_length=MAX_MATCHES
    )
    types: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_MATCHES
    )
    cursor_start: int = Field(default=0, ge=0, le=MAX_QUERY_CODE_CHARS)
    cursor_end: int = Field(default=0, ge=0, le=MAX_QUERY_CODE_CHARS)


class InspectReply(_Message):
    """What the kernel knows of the name at the cursor: the text/plain of its answer with
    the ANSI colours taken out (a tooltip shows plain text), cut to `MAX_INSPECT_CHARS`."""

    type: Literal["inspect_reply"] = "inspect_reply"
    kernel_id: str = _ID
    request_id: str = _ID
    status: QueryStatus
    found: bool = False
    text: str = Field(default="", max_length=MAX_INSPECT_CHARS)


CommType = Literal["comm_open", "comm_msg", "comm_close"]
# One comm message, buffers included, is at most this big (a widget's state, an image's bytes).
MAX_COMM_BYTES = 10 * 1024 * 1024
MAX_COMM_BUFFERS = 64
_B64 = Annotated[str, Field(max_length=MAX_COMM_BYTES * 4 // 3 + 4)]
_MSG_ID = Field(default="", max_length=128)


class Comm(_Message):
    """A comm message the kernel sent on IOPub. `parent_msg_id` is the kernel message it
    answers (a person's `comm_msg`, or an execution): ipywidgets' `echo_update` names the
    change it echoes by it."""

    type: Literal["comm"] = "comm"
    kernel_id: str = _ID
    msg_type: CommType
    comm_id: str = _ID
    target_name: str = Field(default="", max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    buffers: list[_B64] = Field(default_factory=list, max_length=MAX_COMM_BUFFERS)
    parent_msg_id: str = _MSG_ID
    seq: int = _SEQ


WIDGET_TARGET = "jupyter.widget"
# Rebuilding a kernel's widgets (`request_widgets`): at most this many comms are asked for
# their state (what the server keeps of one kernel), their answers together at most this
# big, and the kernel's answers awaited this long (it answers once its running cell ends).
MAX_WIDGETS = 10_000
MAX_WIDGET_STATE_BYTES = 256 * 1024 * 1024
WIDGET_STATE_WAIT_SECONDS = 120.0


class WidgetState(_Message):
    """The whole state of one of the kernel's widgets, its answer to a `request_state` the
    worker sent it for `request_widgets`: `data` is the kernel's `update` (`state`,
    `buffer_paths`), buffers base64 as in `comm`."""

    type: Literal["widget_state"] = "widget_state"
    kernel_id: str = _ID
    comm_id: str = _ID
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    buffers: list[_B64] = Field(default_factory=list, max_length=MAX_COMM_BUFFERS)


class CommIdle(_Message):
    """The kernel is done with the `comm_msg` `msg_id` (its handlers ran)."""

    type: Literal["comm_idle"] = "comm_idle"
    kernel_id: str = _ID
    msg_id: str = Field(min_length=1, max_length=128)


_VARTEXT = Field(default="", max_length=MAX_VARIABLE_TEXT_CHARS)


class Variable(_Message):
    """One name of the kernel's user namespace: its type, shape or length, a short repr,
    and its size in bytes where that is cheap to know (None otherwise)."""

    name: str = Field(min_length=1, max_length=MAX_VARIABLE_NAME_CHARS)
    type: str = _VARTEXT
    shape: str = _VARTEXT
    repr: str = _VARTEXT
    size_bytes: int | None = Field(default=None, ge=0)


class VariablesReply(_Message):
    """The kernel's user variables, by name; `truncated` when some were left out (too
    many, or the probe ran out of time)."""

    type: Literal["variables_reply"] = "variables_reply"
    kernel_id: str = _ID
    request_id: str = _ID
    status: QueryStatus
    variables: list[Variable] = Field(default_factory=list, max_length=MAX_VARIABLES)
    truncated: bool = False


FromWorker = Annotated[
    Hello
    | Heartbeat
    | KernelStarted
    | KernelProgress
    | KernelFailed
    | KernelDied
    | KernelUsage
    | Output
    | InputRequest
    | ExecuteDone
    | CompleteReply
    | InspectReply
    | VariablesReply
    | Comm
    | CommIdle
    | WidgetOutput
    | WidgetState,
    Field(discriminator="type"),
]


# --- server -> worker ------------------------------------------------------------------


class Welcome(_Message):
    type: Literal["welcome"] = "welcome"
    worker_id: str = _ID
    heartbeat_seconds: float = Field(gt=0)
    # One output larger than this is replaced by a notice on the worker, before it travels.
    max_output_bytes: int = Field(gt=0)
    # How long the worker keeps its kernels running when the connection drops.
    reconnect_grace_seconds: float = Field(default=0, ge=0, le=86_400)


class StartKernel(_Message):
    type: Literal["start_kernel"] = "start_kernel"
    kernel_id: str = _ID
    # GPU indices given to this kernel alone; empty hides every GPU from it.
    gpus: list[int] = Field(default_factory=list, max_length=64)
    # Whose working directory (/content) this is: a restarted kernel of the same notebook
    # finds its files and its `%pip install` layer again.
    workspace: str = Field(
        default="scratch", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"
    )
    environment: Environment = Environment(name="default")
    limits: Limits = Limits()


class Execute(_Message):
    type: Literal["execute"] = "execute"
    kernel_id: str = _ID
    execution_id: str = _ID
    code: str
    # Who runs which cell: told back in a reconnecting worker's hello (HeldExecution).
    cell_id: str = Field(default="", max_length=64)
    run_by: str = Field(default="", max_length=200)
    run_by_id: int = Field(default=0, ge=0)


class Interrupt(_Message):
    type: Literal["interrupt"] = "interrupt"
    kernel_id: str = _ID


class InputReply(_Message):
    type: Literal["input_reply"] = "input_reply"
    kernel_id: str = _ID
    value: str = Field(max_length=1_000_000)


class ShutdownKernel(_Message):
    type: Literal["shutdown_kernel"] = "shutdown_kernel"
    kernel_id: str = _ID


class FilesChanged(_Message):
    """Someone changed the notebook's files on the server: mirror them into /content."""

    type: Literal["files_changed"] = "files_changed"
    workspace: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class Complete(_Message):
    """Complete `code` at `cursor_pos` (a code-point index into `code`)."""

    type: Literal["complete"] = "complete"
    kernel_id: str = _ID
    request_id: str = _ID
    code: str = Field(max_length=MAX_QUERY_CODE_CHARS)
    cursor_pos: int = Field(ge=0, le=MAX_QUERY_CODE_CHARS)


class Inspect(_Message):
    """Inspect the name at `cursor_pos`; detail 1 adds the source where the kernel has it."""

    type: Literal["inspect"] = "inspect"
    kernel_id: str = _ID
    request_id: str = _ID
    code: str = Field(max_length=MAX_QUERY_CODE_CHARS)
    cursor_pos: int = Field(ge=0, le=MAX_QUERY_CODE_CHARS)
    detail_level: Literal[0, 1] = 0


class CommMsg(_Message):
    """A person's message to the kernel's comm `comm_id` (a widget change), sent on the
    kernel's shell channel as a `comm_msg` whose msg_id is `msg_id`."""

    type: Literal["comm_msg"] = "comm_msg"
    kernel_id: str = _ID
    msg_id: str = Field(min_length=1, max_length=128)
    comm_id: str = _ID
    data: dict[str, Any]
    buffers: list[_B64] = Field(default_factory=list, max_length=MAX_COMM_BUFFERS)


class RequestWidgets(_Message):
    """The server adopted the kernel without its widgets: send the state of each (one
    `widget_state` per open `jupyter.widget` comm; see the module docstring)."""

    type: Literal["request_widgets"] = "request_widgets"
    kernel_id: str = _ID
    max_widgets: int = Field(default=MAX_WIDGETS, ge=1, le=MAX_WIDGETS)  # comms to ask


class Ack(_Message):
    """The server has stored everything of the kernel up to `seq`: the worker forgets it."""

    type: Literal["ack"] = "ack"
    kernel_id: str = _ID
    seq: int = Field(ge=0)


class Resume(_Message):
    """The server takes back a held kernel: send again what came after `after_seq`, then
    carry on as before."""

    type: Literal["resume"] = "resume"
    kernel_id: str = _ID
    after_seq: int = Field(ge=0)


class Variables(_Message):
    """List the kernel's user variables (a silent execution; see `kernels/probe.py`)."""

    type: Literal["variables"] = "variables"
    kernel_id: str = _ID
    request_id: str = _ID


FromServer = Annotated[
    Welcome
    | StartKernel
    | Execute
    | Interrupt
    | InputReply
    | ShutdownKernel
    | FilesChanged
    | Complete
    | Inspect
    | Ack
    | Resume
    | Variables
    | CommMsg
    | RequestWidgets,
    Field(discriminator="type"),
]

# What a kernel says that the server must not miss across a reconnect (numbered by `seq`).
Reliable = (
    KernelStarted | KernelFailed | KernelDied | Output | InputRequest | ExecuteDone | Comm
) | WidgetOutput
RELIABLE = (
    KernelStarted,
    KernelFailed,
    KernelDied,
    Output,
    InputRequest,
    ExecuteDone,
    Comm,
    WidgetOutput,
)

_from_worker: TypeAdapter[FromWorker] = TypeAdapter(FromWorker)
_from_server: TypeAdapter[FromServer] = TypeAdapter(FromServer)


class BadMessage(ValueError):
    """A frame that is not one of the protocol's messages. The text never quotes the frame."""


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")


def parse_from_worker(raw: str | bytes) -> FromWorker:
    try:
        return _from_worker.validate_json(raw)
    except ValidationError as error:
        raise BadMessage(_describe(error)) from None


def parse_from_server(raw: str | bytes) -> FromServer:
    try:
        return _from_server.validate_json(raw)
    except ValidationError as error:
        raise BadMessage(_describe(error)) from None


def encode(message: _Message) -> str:
    return message.model_dump_json()
