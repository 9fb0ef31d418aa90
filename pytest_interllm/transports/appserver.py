"""The app-server transport: today's codex through OpenAI's Python SDK (`openai-codex`, see `codex/sdk.py`).

One `codex app-server` per worker; each turn is one thread and one turn on it, with an explicit model, cwd,
sandbox, approval policy `never` and the scenario's provider. The evidence is the thread/start response (the
session's model, sandbox, approval policy and cwd), the turn's notifications (command items, token usage, the
agent's messages, errors) and the provider's audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pytest_interllm.codex.sdk import CALL_TIMEOUT, AppServer, payload
from pytest_interllm.outcome import CodexEvent, ScenarioOutcome, ToolCall, command_line
from pytest_interllm.transports.base import CodexProcess, Transport, TurnRequest

SANDBOXES = {"readOnly": "read-only", "workspaceWrite": "workspace-write", "dangerFullAccess": "danger-full-access"}


class AppServerTransport(Transport):
    """Each turn is one thread and one turn on the worker's `codex app-server`; concurrent turns share it."""

    name = "app-server"
    stop_grace, stop_limit = 15.0, 30.0  # the SDK's close() may need a second try after a crash
    config_source = "thread/start"

    def spawn(self) -> CodexProcess:
        ctx = self.context
        server = AppServer(ctx.codex_path, ctx.env(None), ctx.cwd, ctx.stderr_path)
        try:
            ctx.runner.run(server.start(), CALL_TIMEOUT + 10)
        except BaseException:
            ctx.runner.run(server.stop(self.stop_grace), self.stop_limit)
            raise
        return server

    def turn(self, process: CodexProcess | None, request: TurnRequest, outcome: ScenarioOutcome) -> None:
        assert isinstance(process, AppServer)
        asked = {k: v for k, v in request.arguments.items() if k not in ("config", "prompt")}
        config = request.arguments["config"]
        limit = request.limit
        self.context.runner.run(
            self._turn(process, request.prompt, asked, config, limit, outcome), limit + 2 * CALL_TIMEOUT
        )

    def retire_after(self, outcome: ScenarioOutcome) -> bool:
        """A timeout interrupted the turn, so the app-server goes on; a dead one is replaced."""
        return outcome.crashed

    async def _turn(
        self,
        sdk: AppServer,
        prompt: str,
        asked: dict[str, Any],
        config: dict[str, Any],
        limit: float,
        out: ScenarioOutcome,
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
                self._note(note.method, payload(note), out)

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
                    command=command_line(item.get("command")),
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
