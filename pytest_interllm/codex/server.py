"""One `codex mcp-server` child process and its MCP client session."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path
from typing import Any, TextIO

from pytest_interllm.codex import mcp_import, process, stdio
from pytest_interllm.codex.events import CallResult, event_from_params
from pytest_interllm.outcome import CodexEvent
from pytest_interllm.runtime import collector_paused

_FINAL_EVENTS = frozenset({"task_complete", "turn_aborted", "error", "stream_error"})


class CodexServerError(RuntimeError):
    """The codex MCP server could not be started or talked to."""


class CodexServer:
    """A running `codex mcp-server`; `call` sends one `codex` tool call and collects its events."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path, stderr_path: Path) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.stderr_path = stderr_path
        self.server_info: dict[str, Any] = {}
        self._session: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        # Calls run concurrently on one server; codex tags every event with the call's JSON-RPC request id.
        self._calls: dict[str, tuple[list[CodexEvent], asyncio.Event]] = {}
        self._stderr: TextIO | None = None
        self._dispatcher: Any = None
        self._ids = itertools.count(1)
        self.pid: int | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Spawn codex and complete the MCP handshake."""
        self._stderr = self.stderr_path.open("a", encoding="utf-8")
        self._task = asyncio.create_task(self._serve())
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self._task in done and self._task.exception() is not None:
                raise CodexServerError(
                    f"codex mcp-server failed to start: {self._task.exception()!r}; stderr: {self.stderr_tail()}"
                )
            await self.stop()
            raise CodexServerError(f"codex mcp-server did not answer the MCP handshake within {timeout:.0f}s")

    async def _serve(self) -> None:
        assert self._stderr is not None
        # codex first: it starts on another core while mcp is imported below (codex/stdio.py)
        server = await stdio.spawn(self.command, ["mcp-server"], self.env, self.cwd, self._stderr)
        self.pid = server.pid
        with collector_paused(), mcp_import.models_built_on_first_use():
            mcp_import.defer_package_inits()  # mcp's client side only, its models built when used (mcp_import.py)
            from mcp.client.extension import NotificationBinding
            from mcp.client.session import ClientSession
            from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
            from pydantic import BaseModel, ConfigDict

        class CodexEventParams(BaseModel):
            """Params of a `codex/event` notification; codex adds fields freely, so all are kept."""

            model_config = ConfigDict(extra="allow")

        async with stdio.streams(server) as (read, write):
            binding = NotificationBinding(method="codex/event", params_type=CodexEventParams, handler=self._on_event)
            # Our own dispatcher, so that each call can be sent under an id of ours (mcp's public per-call
            # `request_id`): codex tags the events of concurrent calls with it.
            self._dispatcher = JSONRPCDispatcher(read, write)
            async with ClientSession(dispatcher=self._dispatcher, notification_bindings=[binding]) as session:
                init = await session.initialize()
                info = getattr(init, "server_info", None)
                self.server_info = info.model_dump() if info is not None else {}
                self._session = session
                self._ready.set()
                await self._stop.wait()

    async def _on_event(self, params: Any) -> None:
        event = event_from_params(time.time(), params.model_dump())
        call = self._calls.get(str(event.request_id))
        if call is not None:
            call[0].append(event)
            if event.type in _FINAL_EVENTS:
                call[1].set()

    @property
    def alive(self) -> bool:
        """Whether the server task is still running and its process exists."""
        running = self._task is not None and not self._task.done()
        return running and (self.pid is None or process.alive(self.pid))

    def kill(self) -> None:
        """SIGKILL the codex process (the `crash` fault)."""
        if self.pid is not None:
            process.kill(self.pid)

    async def call(self, arguments: dict[str, Any], timeout: float) -> CallResult:
        """One `codex` tool call (others may run at the same time); its events are collected until it returns,
        fails or times out."""
        result = CallResult()
        final = asyncio.Event()
        request_id = ""
        try:
            if not self.alive or self._session is None:
                raise CodexServerError("the codex MCP server is not running")
            from mcp import types

            request_id = f"interllm-{next(self._ids)}"  # not an integer: unique for the whole session
            self._calls[request_id] = (result.events, final)
            params = {"name": "codex", "arguments": arguments}
            async with asyncio.timeout(timeout):
                raw = await self._dispatcher.send_raw_request("tools/call", params, {"request_id": request_id})
            response = types.CallToolResult.model_validate(raw)  # the model mcp's call_tool validates against
            result.is_error = bool(getattr(response, "is_error", False))
            result.structured = getattr(response, "structured_content", None)
            result.text = "\n".join(str(getattr(part, "text", "")) for part in getattr(response, "content", None) or [])
        except TimeoutError:
            result.timed_out = True
            result.error = f"no answer from codex within {timeout:g}s"
        except Exception as exc:  # the evidence is kept; classification happens later
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            # Notifications may still be on the wire: wait for the turn's last event, briefly.
            if not any(e.type in _FINAL_EVENTS for e in result.events) and not result.timed_out:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(final.wait(), 0.5)
            self._calls.pop(request_id, None)
        return result

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines codex wrote to stderr."""
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, timeout: float = 10.0) -> None:
        """Close the MCP session and end the codex process."""
        self._stop.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self._task, timeout)
            except (TimeoutError, Exception):
                self._task.cancel()
        self._session = None
        if self.pid is not None and process.alive(self.pid):
            process.kill(self.pid)  # it ignored the closed pipe and SIGTERM: no orphan may outlive the run
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
