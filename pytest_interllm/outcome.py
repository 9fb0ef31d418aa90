"""`ScenarioOutcome`: everything one scenario run left behind, pass or fail."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_interllm.codex.events import CodexEvent
from pytest_interllm.providers.audit import AuditRecord


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
    structured: dict[str, Any] | None = None
    fault: str | None = None
    codex_pid: int | None = None
    provider_retries: int = 0
    retry_errors: list[str] = field(default_factory=list)
    attempts: int = 1
    cost_usd: float = 0.0
    orchestrator_models: list[str | None] = field(default_factory=list)
    orchestrator_requests: list[AuditRecord] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    agent_items: list[dict[str, Any]] = field(default_factory=list)
    agent_usage: dict[str, Any] = field(default_factory=dict)
    agent_replied: bool = False
    earlier_failures: list[str] = field(default_factory=list)


def command_text(command: Any) -> str:
    """A readable command line from codex's argv (`bash -lc SCRIPT` shows SCRIPT)."""
    if isinstance(command, list):
        parts = [str(c) for c in command]
        if len(parts) == 3 and parts[1] in ("-lc", "-c"):
            return parts[2]
        return " ".join(parts)
    return str(command)


_EXIT = re.compile(r"(?:Process exited with code|exit code:?)\s*(-?\d+)", re.IGNORECASE)


def _arguments_command(item: dict[str, Any]) -> str:
    """The command of a function_call item (`exec_command` cmd, `shell` argv) or a custom tool's input."""
    if item.get("type") == "custom_tool_call":
        return f"{item.get('name', 'tool')}: {item.get('input', '')}"
    try:
        args = json.loads(str(item.get("arguments") or "{}"))
    except ValueError:
        return str(item.get("arguments", ""))
    if isinstance(args, dict):
        for key in ("cmd", "command"):
            if key in args:
                return command_text(args[key])
    return f"{item.get('name', 'tool')} {json.dumps(args)}"


def tool_calls(events: list[CodexEvent]) -> list[ToolCall]:
    """Tool calls from the model's items and their outputs, with exec events' exit codes where codex sent them.

    codex does not emit exec_command_* events for every command (a sandbox refusal has none), so the
    response items are the primary record.
    """
    calls: dict[str, dict[str, Any]] = {}
    for event in events:
        item = event.msg.get("item") if event.type == "raw_response_item" else None
        call_id = str((item or event.msg).get("call_id", ""))
        if isinstance(item, dict) and item.get("type") in ("function_call", "custom_tool_call", "local_shell_call"):
            calls.setdefault(call_id, {"command": _arguments_command(item), "started": event.time})
        elif isinstance(item, dict) and item.get("type") in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            entry = calls.setdefault(call_id, {"command": "", "started": event.time})
            entry.setdefault("output", text)
            found = _EXIT.search(text)
            if found and "exit_code" not in entry:
                entry["exit_code"] = int(found.group(1))
            entry.setdefault("ended", event.time)
        elif event.type == "exec_command_end":
            entry = calls.setdefault(
                call_id, {"command": command_text(event.msg.get("command")), "started": event.time}
            )
            code = event.msg.get("exit_code")
            if isinstance(code, int):
                entry["exit_code"] = code
            duration = event.msg.get("duration")
            if isinstance(duration, dict):
                entry["duration"] = float(duration.get("secs", 0)) + float(duration.get("nanos", 0)) / 1e9
            entry["output"] = str(event.msg.get("aggregated_output") or event.msg.get("stderr") or "")
    return [
        ToolCall(
            call_id=call_id,
            command=entry.get("command", ""),
            exit_code=entry.get("exit_code"),
            duration=entry.get("duration", (entry["ended"] - entry["started"]) if "ended" in entry else None),
            output=entry.get("output", ""),
            started=entry["started"],
        )
        for call_id, entry in calls.items()
    ]
