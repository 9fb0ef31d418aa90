"""`codex mcp-server` spawned before mcp is imported, and mcp's session streams over its pipes.

Importing mcp's client side takes about a third of a second of the plugin's start-up (its protocol types; its
server side, which its packages' `__init__`s would import, is left out: codex/mcp_import.py), and codex takes
about a tenth of a second to start and answer. mcp's own
`stdio_client` spawns the server only once mcp is imported; here codex is spawned first, so it starts on another
core while mcp is imported, and `streams` then carries mcp's `SessionMessage`s over its pipes, newline-delimited
JSON-RPC as mcp's stdio transport does (its public message types, nothing private), for mcp's `ClientSession`.
Shutdown follows MCP's stdio sequence: stdin closed, a grace period, then the process and what it started
killed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import Process

from pytest_interllm.codex import process as processes

# What mcp's stdio transport passes on to a server from the environment on POSIX, under the server's own env.
_INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
_GRACE = 2.0  # seconds a server has to exit once its stdin is closed


async def spawn(command: str, args: list[str], env: dict[str, str], cwd: Path, errlog: TextIO) -> Process:
    """Start the server in a session of its own, with pipes for stdin and stdout."""
    inherited = {k: v for k in _INHERITED if (v := os.environ.get(k)) is not None and not v.startswith("()")}
    return await anyio.open_process(
        [command, *args], env=inherited | env, stderr=errlog, cwd=cwd, start_new_session=True
    )


@contextlib.asynccontextmanager
async def streams(server: Process) -> AsyncIterator[tuple[Any, Any]]:
    """mcp's read and write streams of `SessionMessage`s over the server's stdout and stdin."""
    from anyio.streams.text import TextReceiveStream
    from mcp import types
    from mcp.shared.message import SessionMessage

    assert server.stdout is not None and server.stdin is not None
    stdout, stdin = server.stdout, server.stdin
    incoming_writer, incoming = anyio.create_memory_object_stream[Any](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[Any](0)

    async def read() -> None:
        buffer = ""
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, ConnectionError, OSError):
            async with incoming_writer:
                async for chunk in TextReceiveStream(stdout, encoding="utf-8"):
                    *lines, buffer = (buffer + chunk).split("\n")
                    for line in lines:
                        try:
                            message: Any = SessionMessage(types.jsonrpc_message_adapter.validate_json(line))
                        except ValueError as exc:  # the session surfaces a line that is no JSON-RPC message
                            message = exc
                        await incoming_writer.send(message)

    async def write() -> None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            async with outgoing_reader:
                async for message in outgoing_reader:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await stdin.send((text + "\n").encode())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        try:
            yield incoming, outgoing
        finally:
            with anyio.CancelScope(shield=True):
                await stop(server)
                for stream in (incoming, outgoing, incoming_writer, outgoing_reader):
                    await stream.aclose()
            tasks.cancel_scope.cancel()


async def stop(server: Process) -> None:
    """Kill what the server started (a command still running would be orphaned by its exit), close its stdin, give
    it `_GRACE` seconds to exit, then kill it."""
    if server.returncode is None:
        processes.kill(server.pid, below_only=True)
    with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        if server.stdin is not None:
            await server.stdin.aclose()
    if not await _exited(server):
        processes.kill(server.pid)
        await _exited(server)
    with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        if server.stdout is not None:
            await server.stdout.aclose()


async def _exited(server: Process) -> bool:
    """Whether the server exits within `_GRACE` seconds (by its return code, not `wait()`: a child holding its pipes
    would make that hang)."""
    with anyio.move_on_after(_GRACE):
        while server.returncode is None:
            await anyio.sleep(0.01)
    return server.returncode is not None
