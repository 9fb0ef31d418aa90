"""The `app-server` executor: today's codex, driven through OpenAI's Python SDK (`openai-codex`).

One `codex app-server` per worker; one thread and one turn per scenario, with an explicit model, cwd
(rootdir), sandbox, approval policy `never` and the run's provider. The evidence is the thread/start
response (the session's model, sandbox, approval policy and cwd), the turn's notifications (command items,
token usage, the agent's messages, errors) and the provider's audit.

The SDK is used through a few private attributes where its public API gives no access (all in `_Sdk`): the
raw thread/start response, the process id, and waking requests stranded when the app-server dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from pathlib import Path
from typing import Any

from pytest_interllm.codex import process
from pytest_interllm.executors.codex import CodexExecutor
from pytest_interllm.outcome import CodexEvent, ScenarioOutcome, ToolCall

SANDBOXES = {"readOnly": "read-only", "workspaceWrite": "workspace-write", "dangerFullAccess": "danger-full-access"}
CALL_TIMEOUT = 60.0  # any single SDK request; a dead app-server must never hang a scenario


class _Sdk:
    """One app-server process through the SDK's `AsyncCodex`, with the few private parts it needs."""

    def __init__(self, codex_bin: str, env: dict[str, str], cwd: Path, stderr_path: Path) -> None:
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

    async def start(self) -> None:
        await asyncio.wait_for(self.codex._ensure_initialized(), CALL_TIMEOUT)
        self.drainer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        """Notifications that belong to no turn (thread/started, warnings, ...): read, so none pile up."""
        from openai_codex import CodexError

        while True:
            try:
                await self.codex._client.next_notification()
            except (CodexError, OSError, RuntimeError):
                return

    def _popen(self) -> Any:
        """The SDK's `subprocess.Popen` of the app-server (None before start and after close)."""
        return getattr(getattr(self.codex._client, "_sync", None), "_proc", None)

    @property
    def pid(self) -> int | None:
        proc = self._popen()
        return proc.pid if proc is not None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None and process.alive(self.pid)

    def kill(self) -> None:
        """The `crash` fault: SIGKILL the app-server."""
        if self.pid is not None:
            process.kill(self.pid)

    async def thread_start(self, params: Any) -> tuple[Any, Any]:
        """thread/start with the whole response kept (the public `thread_start` returns only the thread)."""
        from openai_codex.api import AsyncThread

        started = await asyncio.wait_for(self.codex._client.thread_start(params), CALL_TIMEOUT)
        return AsyncThread(self.codex, started.thread.id), started

    async def stop(self, timeout: float) -> None:
        """End the app-server; after a crash the SDK's first close() raises, and requests written before the
        pipe closed are never answered: wake them."""
        from openai_codex import TransportClosedError

        if self.drainer is not None:
            self.drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.drainer
        popen = self._popen()
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
        sync = getattr(self.codex._client, "_sync", None)
        router = getattr(sync, "_router", None)
        if router is not None:
            router.fail_all(TransportClosedError("codex app-server closed by pytest-interllm"))
        pid = self.pid
        if pid is not None and process.alive(pid):
            process.kill(pid)


def _payload(note: Any) -> dict[str, Any]:
    payload = note.payload
    params = getattr(payload, "params", None)  # an UnknownNotification keeps the raw params
    if isinstance(params, dict):
        return params
    dumped: dict[str, Any] = payload.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped


class AppServerExecutor(CodexExecutor):
    """Each scenario is one thread and one turn on the worker's `codex app-server`."""

    stop_grace, stop_limit = 15.0, 30.0  # the SDK's close() may need a second try after a crash

    def _start_server(self) -> None:
        sdk = _Sdk(self.codex.path, self.codex_env(), self.settings.rootdir, self.stderr_path)
        try:
            self.runner.run(sdk.start(), CALL_TIMEOUT + 10)
        except BaseException:
            self.runner.run(sdk.stop(self.stop_grace), self.stop_limit)
            raise
        self.server = sdk

    def _attempt(
        self,
        prompt: str,
        output_file: Path | str,
        model: str | None,
        expected_model: str | None,
        timeout: float | None,
        fault: str | None,
        fault_requests: int | None,
        label: str,
    ) -> ScenarioOutcome:
        target, limit, expected, moved = self._prepare(output_file, model, expected_model, timeout)
        sdk, crash = self._acquire()
        assert isinstance(sdk, _Sdk)
        call = self.endpoint.open(label, fault, fault_requests, on_crash=crash)
        # The MCP call's arguments, as thread/start parameters (`mcp-no-content` is not offered here).
        asked = self.arguments(prompt, model, call.url, fault)
        config, _ = asked.pop("config"), asked.pop("prompt")
        outcome = ScenarioOutcome(
            prompt=prompt,
            expected_model=expected,
            output_path=self.settings.relative(target),
            arguments=dict(asked),
            fault=fault,
            codex_pid=sdk.pid,
            expected_config=self.expected_config(),
            output_notes=[moved] if moved else [],
        )
        stderr_seen = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        start = time.monotonic()
        token = self._enter()
        try:
            self.runner.run(self._turn(sdk, prompt, asked, config, limit, outcome), limit + 2 * CALL_TIMEOUT)
        except BaseException:
            self._leave(token)
            call.close()
            self._release(sdk, retire=True)
            raise
        outcome.stderr_shared = self._leave(token)
        call.close()
        outcome.duration = time.monotonic() - start
        outcome.crashed = outcome.crashed or not sdk.alive
        outcome.crash_caused = crash.fired
        # A timeout interrupted the turn, so the app-server goes on; a dead one is replaced for the next attempt.
        self._release(sdk, retire=outcome.crashed)
        outcome.requests = call.requests()
        # app-server reports no command item for some commands (one whose output says "Read-only file
        # system"): `_read_back` completes them from the history codex sent the provider.
        self._read_back(outcome, stderr_seen, target, tokens_reported=bool(outcome.tokens_in))
        return outcome

    async def _turn(
        self, sdk: _Sdk, prompt: str, asked: dict[str, Any], config: dict[str, Any], limit: float, out: ScenarioOutcome
    ) -> None:
        """thread/start, then one turn streamed to its end (interrupted at the time limit)."""
        from openai_codex import CodexError, InvalidRequestError, TransportClosedError
        from openai_codex.generated.v2_all import AskForApproval, AskForApprovalValue, SandboxMode, ThreadStartParams

        params = ThreadStartParams(
            model=asked.get("model"),
            cwd=asked["cwd"],
            sandbox=SandboxMode(asked["sandbox"]),
            approval_policy=AskForApproval(root=AskForApprovalValue.never),
            config=config,
        )
        deadline = time.monotonic() + limit
        try:
            thread, started = await sdk.thread_start(params)
        except InvalidRequestError as exc:
            out.error = f"thread/start refused: {getattr(exc, 'message', exc)}"
            return
        except (TransportClosedError, OSError) as exc:
            out.crashed, out.error = True, f"{type(exc).__name__}: {exc}"
            return
        except (CodexError, TimeoutError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            return
        self._session(started, out)
        handle = await asyncio.wait_for(thread.turn(prompt), CALL_TIMEOUT)

        async def consume() -> None:
            async for note in handle.stream():
                self._note(note.method, _payload(note), out)

        reader = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(asyncio.shield(reader), max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            out.timed_out = True
            out.error = f"no answer from codex within {limit:g}s (turn interrupted)"
            with contextlib.suppress(Exception):  # cancelling alone would leave the turn running in codex
                await asyncio.wait_for(handle.interrupt(), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, 10)
        except (TransportClosedError, OSError) as exc:
            out.crashed, out.error = True, f"{type(exc).__name__}: {exc}"
        except CodexError as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        finally:
            if not reader.done():
                reader.cancel()

    @staticmethod
    def _session(started: Any, out: ScenarioOutcome) -> None:
        """What codex says it runs: the thread/start response."""
        raw = started.model_dump(by_alias=True, mode="json", exclude_none=True)
        out.session_model = raw.get("model") if isinstance(raw.get("model"), str) else None
        out.session_time = time.time()
        out.thread_id = started.thread.id
        sandbox = raw.get("sandbox")
        kind = sandbox.get("type") if isinstance(sandbox, dict) else sandbox
        out.session_config = {
            key: str(value)
            for key, value in (
                ("sandbox", SANDBOXES.get(str(kind), kind)),
                ("approval-policy", raw.get("approvalPolicy")),
                ("cwd", raw.get("cwd")),
            )
            if value is not None
        }
        out.structured = {"threadId": started.thread.id}
        out.events.append(
            CodexEvent(
                time.time(),
                "thread/start",
                {k: raw.get(k) for k in ("model", "modelProvider", "approvalPolicy", "sandbox", "cwd")},
            )
        )

    @staticmethod
    def _note(method: str, payload: dict[str, Any], out: ScenarioOutcome) -> None:
        """One turn notification into the outcome."""
        now = time.time()
        out.events.append(CodexEvent(now, method, payload))
        found = payload.get("item")
        item: dict[str, Any] = found if isinstance(found, dict) else {}
        if method == "item/completed" and item.get("type") == "commandExecution":
            duration = item.get("durationMs")
            out.tool_calls.append(
                ToolCall(
                    call_id=str(item.get("id", "")),
                    command=_command(item.get("command")),
                    exit_code=item.get("exitCode") if isinstance(item.get("exitCode"), int) else None,
                    duration=duration / 1000 if isinstance(duration, int | float) else None,
                    output=str(item.get("aggregatedOutput") or ""),
                    started=now,
                )
            )
        elif method == "item/completed" and item.get("type") == "agentMessage":
            out.final_output = str(item.get("text") or "")
            out.agent_replied = True
        elif method == "thread/tokenUsage/updated":
            total = (payload.get("tokenUsage") or {}).get("total") or {}
            out.tokens_in = int(total.get("inputTokens", 0))
            out.tokens_out = int(total.get("outputTokens", 0))
        elif method == "error":
            message = str((payload.get("error") or {}).get("message") or "")
            if not payload.get("willRetry"):
                out.is_error = True
                out.final_output = message or out.final_output
        elif method == "turn/completed":
            turn = payload.get("turn") or {}
            if turn.get("status") == "failed":
                out.is_error = True
                message = str((turn.get("error") or {}).get("message") or "")
                out.final_output = message or out.final_output


def _command(command: Any) -> str:
    """A readable command line: `/bin/bash -lc "SCRIPT"` shows SCRIPT (app-server gives one string, quoted)."""
    text = " ".join(command) if isinstance(command, list) else str(command or "")
    with contextlib.suppress(ValueError):
        parts = shlex.split(text)
        if len(parts) == 3 and parts[1] in ("-lc", "-c"):
            return parts[2]
    return text
