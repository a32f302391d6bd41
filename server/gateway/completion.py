"""Completion, inspection (the editor's Tab and Shift+Tab) and the variable inspector's
list, asked of a notebook's kernel.

A question goes to the worker that runs the kernel under a fresh request id, and the answer
comes back through the gateway's dispatch. The worker always answers, "busy" when the
kernel ran a cell past its wait (`kernels/messages.py` says how long); when no answer
comes at all within `ANSWER_SECONDS` (a worker far away, or one too old to know the
message) the editor hears "busy" as well: both mean "fall back to word completion now".
"""

from __future__ import annotations

import asyncio
import uuid

from kernels import messages as m
from server.gateway.models import (
    CompleteRequest,
    Completions,
    Inspection,
    InspectRequest,
    VariableList,
)
from server.gateway.registry import Placement

ANSWER_SECONDS = m.QUERY_WAIT_IDLE_SECONDS + 1.0

Reply = m.CompleteReply | m.InspectReply | m.VariablesReply


class KernelQueries:
    """The questions sent to workers and not yet answered, by request id."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[str, type[Reply], asyncio.Future[Reply]]] = {}

    async def ask(
        self,
        placement: Placement,
        question: m.Complete | m.Inspect | m.Variables,
        answer: type[Reply],
    ) -> Reply | None:
        """The worker's answer, or None when none came in time."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[question.request_id] = (placement.kernel_id, answer, future)
        try:
            placement.worker.send(question)
            return await asyncio.wait_for(future, ANSWER_SECONDS)
        except TimeoutError:
            return None
        finally:
            del self._waiting[question.request_id]

    def answer(self, reply: Reply) -> None:
        """A worker's reply; one to no question of ours, or from another kernel, is dropped."""
        waiting = self._waiting.get(reply.request_id)
        if waiting is None:
            return  # asked too long ago
        kernel_id, answer, future = waiting
        if reply.kernel_id == kernel_id and isinstance(reply, answer) and not future.done():
            future.set_result(reply)


async def complete(
    queries: KernelQueries, placement: Placement, request: CompleteRequest
) -> Completions:
    question = m.Complete(
        kernel_id=placement.kernel_id,
        request_id=uuid.uuid4().hex,
        code=request.code,
        cursor_pos=request.cursor_pos,
    )
    reply = await queries.ask(placement, question, m.CompleteReply)
    if not isinstance(reply, m.CompleteReply):
        return Completions(status="busy")
    return Completions(
        status=reply.status,
        matches=reply.matches,
        types=reply.types,
        cursor_start=reply.cursor_start,
        cursor_end=reply.cursor_end,
    )


async def inspect(
    queries: KernelQueries, placement: Placement, request: InspectRequest
) -> Inspection:
    question = m.Inspect(
        kernel_id=placement.kernel_id,
        request_id=uuid.uuid4().hex,
        code=request.code,
        cursor_pos=request.cursor_pos,
        detail_level=request.detail_level,
    )
    reply = await queries.ask(placement, question, m.InspectReply)
    if not isinstance(reply, m.InspectReply):
        return Inspection(status="busy")
    return Inspection(status=reply.status, found=reply.found, text=reply.text)


async def variables(queries: KernelQueries, placement: Placement) -> VariableList:
    question = m.Variables(kernel_id=placement.kernel_id, request_id=uuid.uuid4().hex)
    reply = await queries.ask(placement, question, m.VariablesReply)
    if not isinstance(reply, m.VariablesReply):
        return VariableList(status="busy")
    return VariableList(
        status=reply.status,
        variables=list(reply.variables),
        truncated=reply.truncated,
    )
