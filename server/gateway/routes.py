"""REST and websockets of the gateway: run cells, interrupt, restart, input, runtime type,
completion, inspection and the variable inspector, widget state and widget messages;
worker tokens and the worker list (admins); the socket workers dial into."""

from __future__ import annotations

import base64
import contextlib
import logging

from fastapi import APIRouter, Response, WebSocket
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from kernels import messages as m
from server.deps import AdminUser, AppServices, CurrentUser, DbSession, Editable, Readable
from server.errors import CloseCode, InvalidInput, TandemError
from server.gateway import tokens
from server.gateway.gateway import WorkerGone
from server.gateway.models import (
    CompleteRequest,
    Completions,
    ExecuteAccepted,
    ExecuteRequest,
    InputValue,
    Inspection,
    InspectRequest,
    RuntimeChange,
    RuntimeStatus,
    VariableList,
    WidgetMessage,
    WidgetMessageDone,
    WidgetState,
    WorkerPublic,
    WorkerTokenCreate,
    WorkerTokenCreated,
    WorkerTokenPublic,
)
from server.protocol import read_state_vector
from server.services import Services
from server.sockets import GONE, Outbox, websocket_outbox

log = logging.getLogger(__name__)

router = APIRouter(tags=["gateway"])


# --- running cells ------------------------------------------------------------------------


@router.post("/api/notebooks/{notebook_id}/execute", status_code=202)
async def execute(
    request: ExecuteRequest, access: Editable, user: CurrentUser, services: AppServices
) -> ExecuteAccepted:
    """Queue cells to run (run-all sends every cell id). Markdown and raw cells are skipped.
    With `state_vector`, the run waits until the server holds all the caller's edits."""
    notebook, _ = access
    assert user.id is not None
    seen = None
    if request.state_vector:
        try:
            seen = read_state_vector(base64.b64decode(request.state_vector, validate=True))
        except (ValueError, TandemError):
            raise InvalidInput("state_vector is a base64 Yjs state vector") from None
    return await services.gateway.execute(
        notebook.id, request.cell_ids, user.username, user.id, seen
    )


@router.post("/api/notebooks/{notebook_id}/kernel/interrupt", status_code=204)
async def interrupt(access: Editable, services: AppServices) -> Response:
    await services.gateway.interrupt(access[0].id)
    return Response(status_code=204)


@router.post("/api/notebooks/{notebook_id}/kernel/restart", status_code=204)
async def restart(access: Editable, services: AppServices) -> Response:
    await services.gateway.restart(access[0].id)
    return Response(status_code=204)


@router.post("/api/notebooks/{notebook_id}/kernel/input", status_code=204)
async def answer_input(
    value: InputValue, access: Editable, user: CurrentUser, services: AppServices
) -> Response:
    """Answer the `input()` prompt of the cell the caller ran."""
    await services.gateway.answer_input(access[0].id, user.username, value.value)
    return Response(status_code=204)


@router.post("/api/notebooks/{notebook_id}/complete")
async def complete(
    request: CompleteRequest, access: Editable, services: AppServices
) -> Completions:
    """Tab: the kernel's completions at the cursor. 409 when no kernel runs (asking never
    starts one); status "busy" when the kernel is running a cell and did not answer."""
    return await services.gateway.complete(access[0].id, request)


@router.post("/api/notebooks/{notebook_id}/inspect")
async def inspect(request: InspectRequest, access: Editable, services: AppServices) -> Inspection:
    """Shift+Tab: the kernel's help on the name at the cursor, as plain text; 409 and
    "busy" as for completion."""
    return await services.gateway.inspect(access[0].id, request)


@router.get("/api/notebooks/{notebook_id}/widgets")
async def widget_state(access: Readable, services: AppServices) -> WidgetState:
    """The current state of every widget of the running kernel (empty when none runs)."""
    return WidgetState.model_validate(await services.gateway.widget_state(access[0].id))


@router.post("/api/notebooks/{notebook_id}/widgets/{comm_id}")
async def widget_message(
    comm_id: str, message: WidgetMessage, access: Editable, services: AppServices
) -> WidgetMessageDone:
    """An editor moves a slider, clicks a button: the message goes to the kernel's widget
    (404 when the running kernel has no such widget), and the answer comes once the kernel
    has handled it. Everyone's widget moves with the kernel's echo (`widget.comm`)."""
    idle = await services.gateway.widget_message(
        access[0].id, comm_id, message.msg_id, message.data, message.buffers
    )
    return WidgetMessageDone(idle=idle)


@router.post("/api/notebooks/{notebook_id}/variables")
async def variables(access: Editable, services: AppServices) -> VariableList:
    """The variable inspector: the kernel's user variables. Editors only (it runs code in
    the kernel); 409 when no kernel runs (asking never starts one); "busy" as for
    completion."""
    return await services.gateway.variables(access[0].id)


@router.get("/api/notebooks/{notebook_id}/runtime")
async def runtime_status(access: Readable, services: AppServices) -> RuntimeStatus:
    return await services.gateway.status(access[0].id)


@router.put("/api/notebooks/{notebook_id}/runtime")
async def change_runtime(
    change: RuntimeChange, access: Editable, db: DbSession, services: AppServices
) -> RuntimeStatus:
    """Change the runtime type; a running kernel restarts on a matching worker."""
    notebook, _ = access
    runtime_type = services.gateway.runtime_type(change.type)
    notebook.runtime_type = runtime_type.name
    db.add(notebook)
    db.commit()
    return await services.gateway.change_runtime(notebook.id, runtime_type)


# --- workers (admins) ---------------------------------------------------------------------


@router.get("/api/workers")
async def list_workers(_admin: AdminUser, services: AppServices) -> list[WorkerPublic]:
    """Every worker of the deployment (with several replicas, those of every replica)."""
    return await services.gateway.all_workers()


@router.post("/api/workers/tokens", status_code=201)
def create_worker_token(
    body: WorkerTokenCreate, admin: AdminUser, db: DbSession
) -> WorkerTokenCreated:
    record, raw = tokens.create(db, body.name, admin)
    db.commit()
    assert record.id is not None
    return WorkerTokenCreated(
        id=record.id, name=record.name, created_at=record.created_at, token=raw
    )


@router.get("/api/workers/tokens")
def list_worker_tokens(_admin: AdminUser, db: DbSession) -> list[WorkerTokenPublic]:
    return [
        WorkerTokenPublic(id=t.id, name=t.name, created_at=t.created_at)
        for t in tokens.all_tokens(db)
        if t.id is not None
    ]


@router.delete("/api/workers/tokens/{token_id}", status_code=204)
async def revoke_worker_token(token_id: int, _admin: AdminUser, services: AppServices) -> Response:
    """Revoke a worker token; workers connected with it are disconnected at once."""

    def revoke() -> None:
        with Session(services.engine) as db:
            tokens.revoke(db, token_id)
            db.commit()

    await run_in_threadpool(revoke)
    services.gateway.revoke(token_id)
    return Response(status_code=204)


# --- the socket workers dial into -----------------------------------------------------------


@router.websocket("/api/workers/connect")
async def worker_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    authorization = websocket.headers.get("authorization", "")
    scheme, _, raw = authorization.partition(" ")
    token = raw.strip() if scheme.lower() == "bearer" else websocket.query_params.get("token")
    try:
        token_id = await run_in_threadpool(services.gateway.authenticate, token)
    except TandemError as error:
        log.warning("refused a worker connection: %s", error.message)
        await websocket.send_denial_response(
            JSONResponse({"detail": error.message}, status_code=error.status_code)
        )
        return
    await websocket.accept()
    # Unbounded, as before: what the gateway sends a worker is its own work, not a stream.
    outbox: Outbox[str] = websocket_outbox(websocket, websocket.send_text, None)

    async def receive_text() -> str:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WorkerGone
        text = message.get("text")
        if text is None:
            return bytes(message.get("bytes") or b"").decode("utf-8", errors="replace")
        return str(text)

    outbox.start()
    try:
        await services.gateway.serve_worker(
            receive_text,
            outbox.send,
            lambda code, why: outbox.close(code, why, flush=True),
            token_id,
        )
    except (m.BadMessage, TimeoutError, WorkerGone) as error:
        log.warning("worker connection refused: %s", error or type(error).__name__)
        outbox.close(CloseCode.POLICY, "say hello first", flush=True)
    finally:
        with contextlib.suppress(*GONE):
            await outbox.stop(2)
