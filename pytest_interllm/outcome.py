"""`ScenarioOutcome`: everything one scenario run left behind, pass or fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_interllm.codex.events import CodexEvent
from pytest_interllm.providers.scripted import AuditRecord


@dataclass(frozen=True)
class ToolCall:
    """One command codex executed."""

    call_id: str
    command: str
    exit_code: int | None
    duration: float | None
    output: str
    started: float


@dataclass
class ScenarioOutcome:
    """The evidence of one scenario: prompt, final_output, models, events, tokens, output file."""

    prompt: str
    expected_model: str
    output_path: str
    final_output: str = ""
    session_model: str | None = None
    session_time: float | None = None
    provider_models: list[str | None] = field(default_factory=list)
    requests: list[AuditRecord] = field(default_factory=list)
    events: list[CodexEvent] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    thread_id: str | None = None
    is_error: bool = False
    error: str | None = None
    timed_out: bool = False
    crashed: bool = False
    output_exists: bool = False
    output_size: int = 0
    output_text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    duration: float = 0.0
    codex_stderr: str = ""
    failure_class: str | None = None
    failure: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


def command_text(command: Any) -> str:
    """A readable command line from codex's argv (`bash -lc SCRIPT` shows SCRIPT)."""
    if isinstance(command, list):
        parts = [str(c) for c in command]
        if len(parts) == 3 and parts[1] in ("-lc", "-c"):
            return parts[2]
        return " ".join(parts)
    return str(command)


def tool_calls(events: list[CodexEvent]) -> list[ToolCall]:
    """Pair exec_command_begin/end events into tool calls."""
    begun: dict[str, CodexEvent] = {}
    calls: list[ToolCall] = []
    for event in events:
        call_id = str(event.msg.get("call_id", ""))
        if event.type == "exec_command_begin":
            begun[call_id] = event
        elif event.type == "exec_command_end":
            start = begun.pop(call_id, event)
            duration = event.msg.get("duration")
            seconds = None
            if isinstance(duration, dict):
                seconds = float(duration.get("secs", 0)) + float(duration.get("nanos", 0)) / 1e9
            code = event.msg.get("exit_code")
            calls.append(
                ToolCall(
                    call_id=call_id,
                    command=command_text(event.msg.get("command", start.msg.get("command"))),
                    exit_code=code if isinstance(code, int) else None,
                    duration=seconds,
                    output=str(event.msg.get("aggregated_output") or event.msg.get("stderr") or ""),
                    started=start.time,
                )
            )
    for call_id, event in begun.items():
        calls.append(
            ToolCall(
                call_id=call_id,
                command=command_text(event.msg.get("command")),
                exit_code=None,
                duration=None,
                output="",
                started=event.time,
            )
        )
    return calls
