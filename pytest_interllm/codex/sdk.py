"""`codex app-server` through OpenAI's Python SDK (`openai-codex`), and the only place that reaches into it.

The SDK's public API gives no access to four things the app-server transport needs: the raw thread/start
response (the session's sandbox, approval policy and cwd), the process (its pid, and the pipes its `close()`
leaves open), reading notifications that belong to no turn, and waking requests stranded when the app-server
dies. Each is reached by `_private`, which names the library and version when a path is gone, and
`tests/test_sdk.py` checks every path against the installed SDK, so an SDK release that moves one fails there.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_interllm.codex import process
from pytest_interllm.runtime import collector_paused

CALL_TIMEOUT = 60.0  # any single SDK request; a dead app-server must never hang a scenario
# The private paths used here, from an `AsyncCodex`: what each is for.
PRIVATE = {
    "_client.thread_start": "the raw thread/start response (the public thread_start drops sandbox and cwd)",
    "_client.next_notification": "notifications that belong to no turn",
    "_client._sync._proc": "the app-server process: its pid and pipes",
    "_client._sync._router.fail_all": "waking requests stranded when the app-server died",
}


class SdkChanged(RuntimeError):
    """The installed openai-codex no longer has a private attribute this plugin relies on."""


def _private(obj: Any, path: str) -> Any:
    """`obj.<path>` (dotted), or `SdkChanged` naming the library, its version and what the attribute was for."""
    value = obj
    for part in path.split("."):
        if not hasattr(value, part):
            version = metadata.version("openai-codex")
            why = PRIVATE.get(path, path)
            raise SdkChanged(
                f"openai-codex {version} has no AsyncCodex.{path} ({why}): pytest-interllm needs an update for "
                "this SDK release"
            )
        value = getattr(value, part)
    return value


def payload(note: Any) -> dict[str, Any]:
    """A notification's params as plain JSON data (an unknown notification keeps its raw params)."""
    params = getattr(note.payload, "params", None)
    if isinstance(params, dict):
        return params
    dumped: dict[str, Any] = note.payload.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped


class AppServer:
    """One `codex app-server` process through the SDK's `AsyncCodex`."""

    def __init__(self, codex_bin: str, env: dict[str, str], cwd: Path, stderr_path: Path) -> None:
        with collector_paused():
            from openai_codex import AsyncCodex, CodexConfig

        # CodexConfig.env is merged into os.environ (secrets included): launch through `env -i` instead, and
        # let a shell append stderr to our file (the SDK keeps only an in-memory tail). `exec` keeps the pid.
        argv = (
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            "/bin/sh",
            "-c",
            'f=$1; shift; exec "$@" 2>>"$f"',
            "sh",
            str(stderr_path),
            codex_bin,
            "app-server",
            "--listen",
            "stdio://",
        )
        self.codex = AsyncCodex(CodexConfig(launch_args_override=argv, cwd=str(cwd)))
        self.drainer: asyncio.Task[None] | None = None
        self._pid: int | None = None  # kept: the SDK forgets its process on close, even when it is still alive

    async def start(self) -> None:
        await asyncio.wait_for(self.codex.__aenter__(), CALL_TIMEOUT)
        self._pid = _private(self.codex, "_client._sync._proc").pid
        self.drainer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        """Notifications that belong to no turn (thread/started, warnings, ...): read, so none pile up."""
        from openai_codex import CodexError

        next_notification = _private(self.codex, "_client.next_notification")
        while True:
            try:
                await next_notification()
            except (CodexError, OSError, RuntimeError):
                return

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def alive(self) -> bool:
        return self._pid is not None and process.alive(self._pid)

    def kill(self) -> None:
        """SIGKILL the app-server (the `crash` fault)."""
        if self._pid is not None:
            process.kill(self._pid)

    async def thread_start(self, params: Any) -> tuple[Any, Any]:
        """thread/start with the whole response kept (the public `thread_start` returns only the thread)."""
        from openai_codex.api import AsyncThread

        started = await asyncio.wait_for(_private(self.codex, "_client.thread_start")(params), CALL_TIMEOUT)
        return AsyncThread(self.codex, started.thread.id), started

    async def stop(self, timeout: float) -> None:
        """End the app-server; after a crash the SDK's first close() raises, and requests written before the
        pipe closed are never answered: wake them."""
        from openai_codex import TransportClosedError

        if self.drainer is not None:
            self.drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.drainer
        if self._pid is not None and process.alive(self._pid):  # a command still running would be orphaned by its exit
            process.kill(self._pid, below_only=True)
        popen = _private(self.codex, "_client._sync._proc")
        fail_all = _private(self.codex, "_client._sync._router.fail_all")
        for _ in range(2):
            try:
                await asyncio.wait_for(self.codex.close(), timeout)
                break
            except (OSError, TimeoutError, RuntimeError):
                continue
        if popen is not None:  # the SDK's close() leaves the pipes open (a ResourceWarning per pipe at exit)
            for pipe in (popen.stdin, popen.stdout, popen.stderr):
                with contextlib.suppress(OSError, ValueError):
                    if pipe is not None:
                        pipe.close()
        fail_all(TransportClosedError("codex app-server closed by pytest-interllm"))
        if self.alive:
            self.kill()  # it outlived close(): no orphan may outlive the run
