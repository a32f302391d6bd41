"""One Jupyter kernel run by the worker in its sandbox, spoken to with jupyter_client over
ZMQ on unix sockets in the kernel's run directory (see `sandbox.py`).

The kernel's messages are turned into worker-protocol messages: IOPub outputs tagged with
the server's execution id, stdin prompts, and `execute_done` once both the execute reply
and the kernel's idle status arrived (so every output of a cell went out before it).
Completion and inspection go on the same shell channel; their replies are matched to the
waiting request by the kernel's msg_id. Comm messages (ipywidgets) go both ways whatever
caused them: the kernel's comm_open / comm_msg / comm_close go up as `comm`, a person's
widget change comes down as a shell `comm_msg`, and its idle status goes up as `comm_idle`.
`report_widgets` asks the kernel for the full state of each of its widgets (for a server
that adopted it without them); the answers go up as `widget_state`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import signal
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from kernels import messages as m
from kernels import probe
from kernels.resources import gpu_memory_used
from kernels.sandbox import Launch

log = logging.getLogger(__name__)

Send = Callable[[m.FromWorker], Awaitable[None]]
USAGE_EVERY_SECONDS = 2.0
MAX_FRAME_BYTES = 128 * 1024 * 1024
MAX_COMM_WAITING = 10_000
# Rebuilding the widgets: how many request_state messages wait in the kernel's queue at once.
WIDGET_STATES_IN_FLIGHT = 32


class _OneSpec(KernelSpecManager):
    """The kernel spec of one launch (its command is the sandbox's), under any name."""

    def __init__(self, spec: KernelSpec) -> None:
        super().__init__()
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


@dataclass
class _Execution:
    execution_id: str
    replied: bool = False
    idle: bool = False
    status: str = "ok"
    execution_count: int | None = None


class RunningKernel:
    def __init__(
        self,
        kernel_id: str,
        gpus: list[int],
        send: Send,
        *,
        launch: Launch,
        max_output_bytes: int,
        before_done: Callable[[], Awaitable[None]] | None = None,
        disk_usage: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.kernel_id = kernel_id
        # Runs after a cell ends, before the server hears of it (the files it wrote go up).
        self._before_done = before_done
        # /content's size, as the files mirror last measured it (one walk, not two).
        self._disk_usage = disk_usage
        self.gpus = gpus
        self._send = send
        self._launch = launch
        self._max_output_bytes = max_output_bytes
        self._manager: AsyncKernelManager | None = None
        self._client: AsyncKernelClient | None = None
        self._executions: dict[str, _Execution] = {}  # by the kernel's msg_id
        self._waiting_input: str | None = None
        self._queries: dict[str, asyncio.Future[dict[str, Any]]] = {}  # by the kernel's msg_id
        # Asked, given up on, still in the kernel's queue: while any is, the kernel is busy
        # and no new question joins it (Tab pressed 20 times during a long cell must not
        # leave 20 completions to run before the next cell).
        self._unanswered: set[str] = set()
        self._comm_msgs: set[str] = set()  # msg_ids of comm_msgs sent, until their idle
        # `report_widgets`: the msg_ids of the request_state messages not yet answered, and
        # how many bytes of answers may still go up.
        self._state_requests: set[str] = set()
        self._state_in_flight: set[str] = set()  # ... not yet done with (the kernel's idle)
        self._state_progress = asyncio.Event()  # one of those is done
        self._state_budget = 0
        self._reporting_widgets = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._context: zmq.asyncio.Context | None = None

    async def start(self) -> None:
        launch = self._launch
        spec = KernelSpec(
            argv=launch.argv,
            display_name="Python 3",
            language="python",
            # SIGINT cannot cross the sandbox's session and PID namespace: ipykernel
            # interrupts itself when asked on the control channel.
            interrupt_mode="message",
        )
        # A kernel can send one frame of any size (an mmap of zero pages costs it nothing):
        # past this the worker drops the connection instead of buffering it all.
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, max(MAX_FRAME_BYTES, 4 * self._max_output_bytes))
        self._context = context
        manager = AsyncKernelManager(
            kernel_name="tandem", kernel_spec_manager=_OneSpec(spec), context=context
        )
        manager.transport = "ipc"  # unix sockets in the run dir: no port another kernel reaches
        manager.ip = launch.ipc_prefix
        manager.connection_file = str(launch.rundir / "kernel.json")
        self._manager = manager
        # The kernel's stdio is never the worker's (for the local worker, the server's
        # terminal): stdin is empty, stderr is read, escaped and capped here.
        await manager.start_kernel(
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        process = getattr(manager.provisioner, "process", None)
        if process is not None and process.stderr is not None:
            threading.Thread(
                target=_drain, args=(process.stderr, self.kernel_id), daemon=True
            ).start()
        client = manager.client()
        client.start_channels()
        self._client = client
        await client.wait_for_ready(timeout=60)
        self._tasks = [
            asyncio.create_task(self._pump_iopub(client)),
            asyncio.create_task(self._pump_shell(client)),
            asyncio.create_task(self._pump_stdin(client)),
            asyncio.create_task(self._watch(manager)),
            asyncio.create_task(self._report_usage()),
        ]

    def execute(self, execution_id: str, code: str) -> None:
        assert self._client is not None
        msg_id = self._client.execute(code, allow_stdin=True, stop_on_error=False)
        self._executions[msg_id] = _Execution(execution_id)

    def comm_msg(self, message: m.CommMsg) -> None:
        """A person's widget change to the kernel's comm, on the shell channel."""
        client = self._client
        if client is None:
            return
        try:
            buffers = [base64.b64decode(b, validate=True) for b in message.buffers]
        except (binascii.Error, ValueError):
            log.info("kernel %s: a comm_msg with a bad buffer dropped", self.kernel_id[:8])
            return
        header = client.session.msg_header("comm_msg")
        header["msg_id"] = message.msg_id
        msg = client.session.msg(
            "comm_msg", content={"comm_id": message.comm_id, "data": message.data}, header=header
        )
        msg["buffers"] = buffers
        if len(self._comm_msgs) >= MAX_COMM_WAITING:
            self._comm_msgs.clear()  # a kernel that never answers must not grow this
        self._comm_msgs.add(message.msg_id)
        client.shell_channel.send(msg)

    async def report_widgets(self, max_widgets: int = m.MAX_WIDGETS) -> int:
        """Ask each open widget comm of the kernel for its whole state, as ipywidgets'
        manager does for a page opened against a running kernel; the answers go up as
        `widget_state` while the kernel sends them. At most `WIDGET_STATES_IN_FLIGHT`
        questions wait in the kernel's queue at once (a cell run meanwhile waits behind few
        of them, and the worker's loop is never held by thousands of sends), and all of it
        ends after `WIDGET_STATE_WAIT_SECONDS`. How many comms were asked."""
        client = self._client
        if client is None or self._reporting_widgets:
            return 0  # one report at a time
        self._reporting_widgets = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + m.WIDGET_STATE_WAIT_SECONDS
        asked = 0
        try:
            content = await self._comm_info(client, deadline - loop.time())
            self._state_budget = m.MAX_WIDGET_STATE_BYTES
            for comm_id in widget_comm_ids(content or {}, max_widgets):
                while len(self._state_in_flight) >= WIDGET_STATES_IN_FLIGHT:
                    self._state_progress.clear()
                    await asyncio.wait_for(self._state_progress.wait(), deadline - loop.time())
                header = client.session.msg_header("comm_msg")
                data = {"method": "request_state"}
                msg = client.session.msg(
                    "comm_msg", content={"comm_id": comm_id, "data": data}, header=header
                )
                self._state_requests.add(header["msg_id"])
                self._state_in_flight.add(header["msg_id"])
                client.shell_channel.send(msg)
                asked += 1
        except TimeoutError:
            log.info("kernel %s: its widgets did not all answer in time", self.kernel_id[:8])
        finally:
            self._reporting_widgets = False
            # Whatever is not answered by now is not waited for (a kernel that never answers).
            loop.call_later(max(deadline - loop.time(), 0), self._forget_state_requests)
        return asked

    def _forget_state_requests(self) -> None:
        if not self._reporting_widgets:
            self._state_requests.clear()
            self._state_in_flight.clear()

    async def _comm_info(self, client: AsyncKernelClient, wait: float) -> dict[str, Any] | None:
        """The kernel's comm_info_reply content for its widget comms."""
        msg_id = client.comm_info(target_name=m.WIDGET_TARGET)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queries[msg_id] = future
        try:
            return await asyncio.wait_for(future, wait)
        finally:
            del self._queries[msg_id]

    async def complete(self, request: m.Complete) -> m.CompleteReply:
        client = self._client
        content = await self._ask(
            None if client is None else lambda: client.complete(request.code, request.cursor_pos)
        )
        return completion_reply(self.kernel_id, request.request_id, content)

    async def inspect(self, request: m.Inspect) -> m.InspectReply:
        client = self._client
        content = await self._ask(
            None
            if client is None
            else lambda: client.inspect(request.code, request.cursor_pos, request.detail_level)
        )
        return inspection_reply(self.kernel_id, request.request_id, content)

    async def variables(self, request: m.Variables) -> m.VariablesReply:
        """The user's variables, from a silent execution that runs `probe.PROBE`."""
        client = self._client
        content = await self._ask(
            None
            if client is None
            else lambda: client.execute(
                "",
                silent=True,
                store_history=False,
                user_expressions={"variables": probe.expression()},
                allow_stdin=False,
                stop_on_error=False,
            )
        )
        return probe.variables_reply(self.kernel_id, request.request_id, content)

    async def _ask(self, send: Callable[[], str] | None) -> dict[str, Any] | None:
        """The content of the kernel's reply to what `send` sent, or None when the kernel is
        busy: it did not answer in time, or an earlier question still waits in its queue."""
        if send is None or self._unanswered:
            return None
        running = bool(self._executions)
        wait = m.QUERY_WAIT_BUSY_SECONDS if running else m.QUERY_WAIT_IDLE_SECONDS
        msg_id = send()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queries[msg_id] = future
        try:
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            self._unanswered.add(msg_id)
            return None
        finally:
            del self._queries[msg_id]

    async def interrupt(self) -> None:
        if self._manager is not None:
            await self._manager.interrupt_kernel()

    def reply_input(self, value: str) -> None:
        if self._client is not None and self._waiting_input is not None:
            self._waiting_input = None
            self._client.input(value)

    async def shutdown(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            self._client.stop_channels()
        if self._manager is not None:
            with contextlib.suppress(Exception):
                await self._manager.shutdown_kernel(now=True)
        if self._context is not None:
            self._context.destroy(linger=0)
        # Whatever the kernel left running (forks, daemons) goes with its cgroup.
        await asyncio.to_thread(self._launch.cleanup)

    # --- the kernel's channels ---------------------------------------------------------

    async def _pump_iopub(self, client: AsyncKernelClient) -> None:
        while True:
            msg = await client.get_iopub_msg()
            parent_id = msg["parent_header"].get("msg_id", "")
            msg_type = msg["msg_type"]
            if msg_type == "comm_msg" and parent_id in self._state_requests:
                self._state_requests.discard(parent_id)
                await self._send_widget_state(msg)
                continue
            if msg_type in ("comm_open", "comm_msg", "comm_close"):
                await self._send_comm(msg)
                continue
            if msg_type == "status" and parent_id in self._state_in_flight:
                if msg["content"].get("execution_state") == "idle":
                    self._state_in_flight.discard(parent_id)
                    self._state_progress.set()
                continue
            if msg_type == "status" and parent_id in self._comm_msgs:
                if msg["content"].get("execution_state") == "idle":
                    self._comm_msgs.discard(parent_id)
                    await self._send(m.CommIdle(kernel_id=self.kernel_id, msg_id=parent_id))
                continue
            execution = self._executions.get(parent_id)
            if execution is None:
                if msg_type in m.OUTPUT_TYPES and parent_id in self._comm_msgs:
                    await self._send(
                        m.WidgetOutput(
                            kernel_id=self.kernel_id,
                            parent_msg_id=parent_id,
                            msg_type=msg_type,
                            content=cap_output(msg_type, msg["content"], self._max_output_bytes),
                        )
                    )
                continue  # output of no execution of ours (a thread printing later, say)
            if msg_type in m.OUTPUT_TYPES:
                await self._send(
                    m.Output(
                        kernel_id=self.kernel_id,
                        execution_id=execution.execution_id,
                        msg_type=msg_type,
                        content=cap_output(msg_type, msg["content"], self._max_output_bytes),
                        parent_msg_id=parent_id[:128],
                    )
                )
            elif msg_type == "status" and msg["content"].get("execution_state") == "idle":
                execution.idle = True
                await self._finish_if_done(msg["parent_header"]["msg_id"], execution)

    async def _send_comm(self, msg: dict[str, Any]) -> None:
        message = comm_message(self.kernel_id, msg, self._max_output_bytes)
        if message is None:
            log.info(
                "kernel %s: a %s too big or malformed dropped", self.kernel_id[:8], msg["msg_type"]
            )
            return
        await self._send(message)

    async def _send_widget_state(self, msg: dict[str, Any]) -> None:
        """One widget's answer to `report_widgets`, capped as any comm message is, and all
        of them together at `MAX_WIDGET_STATE_BYTES`."""
        comm = comm_message(self.kernel_id, msg, self._max_output_bytes)
        size = comm_size(comm) if comm is not None else 0
        if comm is None or size > self._state_budget:
            log.info("kernel %s: a widget state too big or malformed dropped", self.kernel_id[:8])
            return
        self._state_budget -= size
        await self._send(
            m.WidgetState(
                kernel_id=self.kernel_id,
                comm_id=comm.comm_id,
                data=comm.data,
                metadata=comm.metadata,
                buffers=comm.buffers,
            )
        )

    async def _pump_shell(self, client: AsyncKernelClient) -> None:
        while True:
            msg = await client.get_shell_msg()
            msg_id = msg["parent_header"].get("msg_id", "")
            if msg["msg_type"] in ("complete_reply", "inspect_reply", "comm_info_reply") or (
                # The variable inspector's silent execution answers with an execute_reply.
                msg["msg_type"] == "execute_reply"
                and (msg_id in self._queries or msg_id in self._unanswered)
            ):
                self._unanswered.discard(msg_id)
                query = self._queries.get(msg_id)
                if query is not None and not query.done():
                    query.set_result(msg["content"])
                continue
            execution = self._executions.get(msg_id)
            if execution is None or msg["msg_type"] != "execute_reply":
                continue
            execution.replied = True
            status = msg["content"].get("status", "ok")
            execution.status = status if status in ("ok", "error", "aborted") else "error"
            count = msg["content"].get("execution_count")
            execution.execution_count = count if isinstance(count, int) else None
            await self._finish_if_done(msg_id, execution)

    async def _pump_stdin(self, client: AsyncKernelClient) -> None:
        while True:
            msg = await client.get_stdin_msg()
            execution = self._executions.get(msg["parent_header"].get("msg_id", ""))
            if execution is None or msg["msg_type"] != "input_request":
                continue
            self._waiting_input = execution.execution_id
            content = msg["content"]
            await self._send(
                m.InputRequest(
                    kernel_id=self.kernel_id,
                    execution_id=execution.execution_id,
                    prompt=str(content.get("prompt", ""))[:4096],
                    password=bool(content.get("password", False)),
                )
            )

    async def _finish_if_done(self, msg_id: str, execution: _Execution) -> None:
        if not (execution.replied and execution.idle):
            return
        del self._executions[msg_id]
        self._waiting_input = None
        if self._before_done is not None:
            try:
                await self._before_done()
            except Exception:
                # The cell's end is reported whatever happened to its files.
                log.exception("kernel %s: after-cell work failed", self.kernel_id[:8])
        await self._send(
            m.ExecuteDone(
                kernel_id=self.kernel_id,
                execution_id=execution.execution_id,
                status=execution.status,
                execution_count=execution.execution_count,
            )
        )

    async def _watch(self, manager: AsyncKernelManager) -> None:
        while await manager.is_alive():  # noqa: ASYNC110  (no event to wait on: we poll)
            await asyncio.sleep(0.5)
        if self._stopping:
            return
        reason = _exit_reason(manager)
        if self._launch.cgroup.oom_kills() > 0:
            reason = f"out of memory: limit {self._launch.limits.memory_mb} MB"
        await self._send(m.KernelDied(kernel_id=self.kernel_id, reason=reason))

    async def _report_usage(self) -> None:
        """Memory (the kernel's cgroup), working-dir size and GPU memory, as Colab's RAM and
        Disk bars show them; sent when they change."""
        last: tuple[int | None, ...] = ()
        while True:
            memory = self._launch.cgroup.memory_bytes()
            disk = self._disk_usage()
            gpu = await asyncio.to_thread(gpu_memory_used, self.gpus)
            now = tuple(None if v is None else v >> 20 for v in (memory, disk, gpu))
            if now != last:
                last = now
                await self._send(
                    m.KernelUsage(
                        kernel_id=self.kernel_id,
                        memory_bytes=memory,
                        disk_bytes=disk,
                        gpu_memory_bytes=gpu,
                        limits=self._launch.limits,
                    )
                )
            await asyncio.sleep(USAGE_EVERY_SECONDS)


def _drain(stream: IO[bytes], kernel_id: str, keep: int = 50) -> None:
    """Log the first lines a kernel writes to stderr (escaped, cut), discard the rest."""
    for number, line in enumerate(stream):
        if number < keep:
            log.info("kernel %s stderr: %r", kernel_id[:8], line[:300].decode(errors="replace"))
    stream.close()


def _exit_reason(manager: AsyncKernelManager) -> str:
    process = getattr(manager.provisioner, "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "the kernel stopped responding"
    # bubblewrap reports a kernel killed by signal N as status 128 + N.
    signum = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else 0
    if signum:
        with contextlib.suppress(ValueError):
            name = signal.Signals(signum).name
            if name == "SIGKILL":
                return "the kernel was killed (SIGKILL; often out of memory)"
            return f"the kernel died ({name})"
    return f"the kernel exited (status {code})"


# CSI (colours, cursor), OSC (titles, links) and two-character escapes.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def completion_reply(
    kernel_id: str, request_id: str, content: dict[str, Any] | None
) -> m.CompleteReply:
    """The kernel's complete_reply content as the protocol carries it (None: busy); what is
    too long or malformed is dropped, never passed on."""
    if content is None or content.get("status") != "ok":
        status: m.QueryStatus = "busy" if content is None else "error"
        return m.CompleteReply(kernel_id=kernel_id, request_id=request_id, status=status)
    raw = content.get("matches")
    matches = [x for x in raw if isinstance(x, str)] if isinstance(raw, list) else []
    metadata = content.get("metadata")
    typed = metadata.get("_jupyter_types_experimental") if isinstance(metadata, dict) else None
    kinds: list[str] = []
    # ipykernel lists one typed completion per match, in the same order.
    if isinstance(typed, list) and [t.get("text") for t in typed if isinstance(t, dict)] == matches:
        kinds = [str(t.get("type") or "")[:64] for t in typed]
    kept = [i for i, match in enumerate(matches) if len(match) <= m.MAX_MATCH_CHARS]
    kept = kept[: m.MAX_MATCHES]
    return m.CompleteReply(
        kernel_id=kernel_id,
        request_id=request_id,
        status="ok",
        matches=[matches[i] for i in kept],
        types=[kinds[i] for i in kept] if kinds else [],
        cursor_start=_position(content.get("cursor_start")),
        cursor_end=_position(content.get("cursor_end")),
    )


def _position(value: object) -> int:
    return min(max(value, 0), m.MAX_QUERY_CODE_CHARS) if isinstance(value, int) else 0


def inspection_reply(
    kernel_id: str, request_id: str, content: dict[str, Any] | None
) -> m.InspectReply:
    """The text/plain of the kernel's inspect_reply, ANSI stripped, cut to the limit."""
    if content is None or content.get("status") != "ok":
        status: m.QueryStatus = "busy" if content is None else "error"
        return m.InspectReply(kernel_id=kernel_id, request_id=request_id, status=status)
    data = content.get("data")
    text = data.get("text/plain", "") if isinstance(data, dict) else ""
    text = strip_ansi(text) if isinstance(text, str) else ""
    limit = m.MAX_INSPECT_CHARS
    if len(text) > limit:
        note = "\n[cut: the rest is too long to show]"
        text = text[: limit - len(note)] + note
    return m.InspectReply(
        kernel_id=kernel_id,
        request_id=request_id,
        status="ok",
        found=bool(content.get("found")) and bool(text),
        text=text,
    )


def comm_message(kernel_id: str, msg: dict[str, Any], limit: int) -> m.Comm | None:
    """The kernel's comm message as the protocol carries it; None when it is malformed or
    bigger than `limit` (or the protocol's own cap), which a widget cannot be shown without."""
    content = msg.get("content")
    if not isinstance(content, dict):
        return None
    comm_id, data = content.get("comm_id"), content.get("data", {})
    raw_buffers = msg.get("buffers") or []
    if not isinstance(comm_id, str) or not isinstance(data, dict):
        return None
    if len(raw_buffers) > m.MAX_COMM_BUFFERS:
        return None
    buffers = [bytes(b) for b in raw_buffers]
    size = len(json.dumps(data, ensure_ascii=False).encode()) + sum(len(b) for b in buffers)
    if size > min(limit, m.MAX_COMM_BYTES):
        return None
    metadata = msg.get("metadata")
    target = content.get("target_name", "")
    try:
        return m.Comm(
            kernel_id=kernel_id,
            msg_type=msg["msg_type"],
            comm_id=comm_id,
            target_name=target if isinstance(target, str) else "",
            data=data,
            metadata=metadata if isinstance(metadata, dict) else {},
            buffers=[base64.b64encode(b).decode() for b in buffers],
            parent_msg_id=str(msg.get("parent_header", {}).get("msg_id", ""))[:128],
        )
    except ValueError:
        return None


def widget_comm_ids(content: dict[str, Any], limit: int = m.MAX_WIDGETS) -> list[str]:
    """The widget comms a kernel's comm_info_reply lists, at most `limit` of them
    (a kernel may list any number, or other targets' comms, or ids no comm has)."""
    comms = content.get("comms")
    if content.get("status") != "ok" or not isinstance(comms, dict):
        return []
    ids: list[str] = []
    for comm_id, info in comms.items():
        if len(ids) >= min(limit, m.MAX_WIDGETS):
            break
        if (
            isinstance(comm_id, str)
            and 0 < len(comm_id) <= 64
            and isinstance(info, dict)
            and info.get("target_name") == m.WIDGET_TARGET
        ):
            ids.append(comm_id)
    return ids


def comm_size(comm: m.Comm) -> int:
    """About the bytes a comm message holds: its data as JSON and its buffers, decoded."""
    data = len(json.dumps(comm.data, ensure_ascii=False).encode())
    return data + sum(len(b) * 3 // 4 for b in comm.buffers)


def cap_output(msg_type: str, content: dict[str, Any], limit: int) -> dict[str, Any]:
    """Replace an output bigger than `limit` bytes by a notice before it travels: one 50 MB
    image must not cross the network only to be dropped by the server (and no frame may
    outgrow what the server's websocket accepts)."""
    if msg_type == "stream":
        text = content.get("text", "")
        if isinstance(text, str) and len(text) * 4 > limit:  # cheap test first
            raw = text.encode()
            if len(raw) > limit:
                kept = raw[:limit].decode("utf-8", errors="ignore")
                note = f"\n[{len(raw) - limit:,} bytes of output not shown]\n"
                return {**content, "text": kept + note}
        return content
    size = len(json.dumps(content, ensure_ascii=False).encode())
    if size <= limit:
        return content
    if msg_type == "error":
        traceback = [str(line) for line in content.get("traceback", [])]
        kept_lines: list[str] = []
        budget = limit // 2
        for line in reversed(traceback):  # the end of a traceback says the most
            budget -= len(line.encode())
            if budget < 0:
                break
            kept_lines.insert(0, line)
        dropped = len(traceback) - len(kept_lines)
        return {
            **content,
            "evalue": str(content.get("evalue", ""))[: limit // 4],
            "traceback": [f"[{dropped} traceback lines not shown]", *kept_lines],
        }
    data = content.get("data")
    kinds = ", ".join(sorted(str(key) for key in data)) if isinstance(data, dict) else msg_type
    notice = (
        f"[output not shown: {size / 1e6:.1f} MB of {kinds} is over the "
        f"{limit / 1e6:.1f} MB limit for one output]"
    )
    return {**content, "data": {"text/plain": notice}, "metadata": {}}
