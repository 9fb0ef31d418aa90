"""The MCP transport: one reused `codex mcp-server` per worker, one `codex` tool call per turn."""

from __future__ import annotations

from pytest_interllm.codex.events import CallResult, session_config, tool_calls
from pytest_interllm.codex.server import CodexServer
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.transports.base import CodexProcess, Transport, TurnRequest


def fill_from_call(outcome: ScenarioOutcome, result: CallResult) -> None:
    """What one MCP `codex` call reported: its events, text, session (model, sandbox, approval policy, cwd),
    tool calls and token usage."""
    outcome.events = result.events
    outcome.final_output = result.text
    outcome.is_error = result.is_error
    outcome.structured = result.structured
    outcome.agent_replied = bool(result.text.strip() or result.of_type("agent_message", "task_complete"))
    outcome.error = result.error
    outcome.timed_out = result.timed_out
    outcome.thread_id = result.thread_id
    configured = result.of_type("session_configured")
    if configured:
        value = configured[0].msg.get("model")
        outcome.session_model = value if isinstance(value, str) else None
        outcome.session_time = configured[0].time
        outcome.session_config = session_config(configured[0].msg)
    if not outcome.final_output:
        done = result.of_type("task_complete")
        if done and isinstance(done[-1].msg.get("last_agent_message"), str):
            outcome.final_output = str(done[-1].msg["last_agent_message"])
    outcome.tool_calls = tool_calls(result.events)
    counts = result.of_type("token_count")
    usage = (counts[-1].msg.get("info") or {}).get("total_token_usage") if counts else None
    if isinstance(usage, dict):
        outcome.tokens_in = int(usage.get("input_tokens", 0))
        outcome.tokens_out = int(usage.get("output_tokens", 0))


class McpTransport(Transport):
    """Each turn is one `codex` tool call on the worker's `codex mcp-server`; concurrent calls share it."""

    name = "codex"
    config_source = "session_configured"

    def spawn(self) -> CodexProcess:
        ctx = self.context
        server = CodexServer(ctx.codex_path, ctx.env(None), ctx.cwd, ctx.stderr_path)
        ctx.runner.run(server.start(), 60)
        return server

    def turn(self, process: CodexProcess | None, request: TurnRequest, outcome: ScenarioOutcome) -> None:
        assert isinstance(process, CodexServer)
        result = self.context.runner.run(process.call(request.arguments, request.limit), request.limit + 30)
        fill_from_call(outcome, result)
