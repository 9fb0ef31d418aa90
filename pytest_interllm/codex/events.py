"""Codex's `codex/event` notifications (MCP): one call's result, and the tool calls read from its events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pytest_interllm.outcome import EXIT_CODE, CodexEvent, ToolCall, command_text, item_command


def event_from_params(when: float, params: dict[str, Any]) -> CodexEvent:
    """A `codex/event` notification's params `{_meta: {requestId}, id, msg: {type, ...}}` as a `CodexEvent`."""
    msg = params.get("msg")
    msg = msg if isinstance(msg, dict) else {}
    meta = params.get("_meta")
    request_id = meta.get("requestId") if isinstance(meta, dict) else None
    return CodexEvent(
        time=when,
        type=str(msg.get("type", "?")),
        msg=msg,
        request_id=None if request_id is None else str(request_id),
    )


@dataclass
class CallResult:
    """What one `codex` tool call gave back: its events, text, structured content and error state."""

    events: list[CodexEvent] = field(default_factory=list)
    text: str = ""
    structured: dict[str, Any] | None = None
    is_error: bool = False
    error: str | None = None
    timed_out: bool = False

    def of_type(self, *types: str) -> list[CodexEvent]:
        """Events of the given types, in arrival order."""
        return [e for e in self.events if e.type in types]

    @property
    def thread_id(self) -> str | None:
        """The codex thread (session) id, from the result or the session_configured event."""
        if self.structured and isinstance(self.structured.get("threadId"), str):
            return str(self.structured["threadId"])
        for event in self.of_type("session_configured"):
            value = event.msg.get("session_id") or event.msg.get("thread_id")
            if isinstance(value, str):
                return value
        return None


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
            calls.setdefault(call_id, {"command": item_command(item), "started": event.time})
        elif isinstance(item, dict) and item.get("type") in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            entry = calls.setdefault(call_id, {"command": "", "started": event.time})
            if text.strip():
                entry["output"] = text
            found = EXIT_CODE.search(text)
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
            # What the model was sent (the function_call_output) wins, whichever event arrived first: the
            # exec event's own output may be empty where the model's holds the sandbox's refusal.
            if not entry.get("output"):
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


def _sandbox_of(profile: Any) -> str | None:
    """The sandbox mode a `permission_profile` amounts to: none at all, writes allowed somewhere, or reads only."""
    if not isinstance(profile, dict):
        return None
    if profile.get("type") == "disabled":
        return "danger-full-access"
    file_system = profile.get("file_system")
    if profile.get("type") != "managed" or not isinstance(file_system, dict):
        return None
    if file_system.get("type") != "restricted":
        return "danger-full-access" if file_system.get("type") == "unrestricted" else None
    entries = file_system.get("entries") or []
    writes = any(isinstance(e, dict) and e.get("access") == "write" for e in entries)
    return "workspace-write" if writes else "read-only"


def session_config(msg: dict[str, Any]) -> dict[str, str]:
    """What codex says its session runs under (`session_configured`, or a rollout's `turn_context`): sandbox,
    approval policy and working directory, as the codex call names them."""
    found: dict[str, str] = {}
    policy = msg.get("sandbox_policy")
    sandbox = _sandbox_of(msg.get("permission_profile"))
    if sandbox is None and isinstance(policy, dict) and isinstance(policy.get("type"), str):
        sandbox = str(policy["type"])  # rollouts: {"type": "workspace-write", ...}
    if sandbox is not None:
        found["sandbox"] = sandbox
    if isinstance(msg.get("approval_policy"), str):
        found["approval-policy"] = str(msg["approval_policy"])
    if isinstance(msg.get("cwd"), str):
        found["cwd"] = str(msg["cwd"])
    return found
