"""Every event of a notebook's events channel, one typed model each (as `kernels/messages.py`
types the worker protocol).

An event serialises to one flat JSON object, `{"type", "notebook_id", ...its fields}`, which
is what the events websocket sends and what can cross a broker between replicas:
`parse_event(event.model_dump_json()) == event`. The payloads that are another package's
public model (a member, a thread, a file, the runtime's status) travel as that model's JSON
form, already dumped by their owner, so this module stays below every domain package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_serializer

JsonObject = dict[str, Any]


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    notebook_id: str

    def to_json(self) -> JsonObject:
        """The message the events websocket sends."""
        return self.model_dump(mode="json")


# --- the notebook and who may open it ------------------------------------------------------


class MemberChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    role: str | None  # None: no access any more (their sockets close with 4403)


class MembersChanged(Event):
    """Someone's access changed (membership, a share link redeemed, revoked or expired)."""

    type: Literal["members.changed"] = "members.changed"
    members: list[JsonObject]  # MemberPublic, everyone as it is now
    changed: MemberChange


class SessionsEnded(Event):
    """Some of the person's sign-ins ended (they changed their password): their sockets
    close (1012) and reconnect with what they still hold; an ended session is refused.
    Never sent to clients."""

    type: Literal["sessions.ended"] = "sessions.ended"
    username: str


class NotebookRenamed(Event):
    type: Literal["notebook.renamed"] = "notebook.renamed"
    title: str


class NotebookDeleted(Event):
    """Every socket of the notebook closes with 4404; rooms, runtimes and files let go."""

    type: Literal["notebook.deleted"] = "notebook.deleted"


# --- the runtime ---------------------------------------------------------------------------


class RuntimeStatusChanged(Event):
    type: Literal["runtime.status"] = "runtime.status"
    runtime: JsonObject  # RuntimeStatus


class RuntimeLimitWarning(Event):
    """The runtime stops at `deadline` (a limit: idle timeout or maximum lifetime)."""

    type: Literal["runtime.warning"] = "runtime.warning"
    reason: str  # which limit: "idle" or "lifetime"
    seconds_left: int
    deadline: datetime

    @field_serializer("deadline")
    def _iso(self, deadline: datetime) -> str:
        return deadline.isoformat()


class InputRequested(Event):
    """A running cell called input(); only `username` (who ran it) may answer."""

    type: Literal["kernel.input_requested"] = "kernel.input_requested"
    cell_id: str
    username: str
    prompt: str
    password: bool


class InputAnswered(Event):
    type: Literal["kernel.input_answered"] = "kernel.input_answered"
    cell_id: str


class WidgetComm(Event):
    """A comm message of the kernel's widgets (ipywidgets): `comm_open`, `comm_msg`
    (`data.method` update, echo_update, custom) or `comm_close`, buffers base64-encoded.
    `seq` orders them against the snapshot at GET .../widgets; `parent_msg_id` is the
    person's msg_id that an echo_update answers."""

    type: Literal["widget.comm"] = "widget.comm"
    seq: int
    msg_type: str
    comm_id: str
    data: JsonObject
    metadata: JsonObject
    buffers: list[str]
    parent_msg_id: str


class WidgetsReset(Event):
    """The kernel the widgets belonged to is gone (restarted, stopped, lost)."""

    type: Literal["widget.reset"] = "widget.reset"
    seq: int


# --- comments -------------------------------------------------------------------------------


class ThreadCreated(Event):
    type: Literal["thread.created"] = "thread.created"
    thread: JsonObject  # ThreadPublic


class ThreadUpdated(Event):
    """A comment added, edited or deleted; the thread resolved, reopened or read."""

    type: Literal["thread.updated"] = "thread.updated"
    thread: JsonObject  # ThreadPublic


class ThreadsOrphaned(Event):
    """The cells these threads were on were deleted (their text is kept on the thread)."""

    type: Literal["thread.orphaned"] = "thread.orphaned"
    thread_ids: list[str]
    cell_ids: list[str]


class ThreadsRestored(Event):
    """The cells came back (undo): the threads are placed on them again."""

    type: Literal["thread.restored"] = "thread.restored"
    thread_ids: list[str]
    cell_ids: list[str]


# --- files ----------------------------------------------------------------------------------


class FileReplaced(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str
    by: str


FileAction = Literal["written", "folder", "moved", "deleted", "restored"]


class FilesChanged(Event):
    """Someone, or the runtime, changed the notebook's files. Which fields are there depends
    on `action`: written (`path`, `file`, `replaced` when it overwrote one), folder (`path`,
    `file`), moved (`path`, `to`), deleted (`path`, `paths`), restored (`version`)."""

    type: Literal["files.changed"] = "files.changed"
    action: FileAction
    by: str
    path: str | None = None
    file: JsonObject | None = None  # FilePublic
    replaced: FileReplaced | None = None
    to: str | None = None
    paths: list[str] | None = None
    version: str | None = None

    def to_json(self) -> JsonObject:
        # Absent, not null: clients have always seen only the fields of this action.
        return self.model_dump(mode="json", exclude_none=True)


class FilesRefused(Event):
    """A file the runtime wrote was not kept (over the quota, a name that is not UTF-8)."""

    type: Literal["files.refused"] = "files.refused"
    path: str
    reason: str


NotebookEvent = Annotated[
    MembersChanged
    | SessionsEnded
    | NotebookRenamed
    | NotebookDeleted
    | RuntimeStatusChanged
    | RuntimeLimitWarning
    | InputRequested
    | InputAnswered
    | WidgetComm
    | WidgetsReset
    | ThreadCreated
    | ThreadUpdated
    | ThreadsOrphaned
    | ThreadsRestored
    | FilesChanged
    | FilesRefused,
    Field(discriminator="type"),
]

_EVENT: TypeAdapter[NotebookEvent] = TypeAdapter(NotebookEvent)


def parse_event(data: str | bytes) -> NotebookEvent:
    """An event back from its JSON (from a broker); raises pydantic's ValidationError."""
    return _EVENT.validate_json(data)
