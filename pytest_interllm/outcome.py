"""The data model every layer shares: `ScenarioOutcome` (everything one scenario run left behind, pass or
fail) and the records it is made of: audited provider requests, codex events, tool calls."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One command codex executed."""

    call_id: str
    command: str
    exit_code: int | None
    duration: float | None
    output: str
    started: float


@dataclass(frozen=True)
class AuditRecord:
    """One request the provider saw: who asked, for which model, and how it was answered."""

    time: float
    method: str
    path: str
    model: str | None
    status: int
    thread_id: str | None
    user_agent: str
    latency: float
    input_tokens: int = 0
    output_tokens: int = 0
    scenario: str | None = None
    fault: str | None = None
    retry_after: float | None = None
    mismatch: str | None = None
    replayed: bool = False
    sandbox_mode: str | None = None  # what codex said it runs under (`x-codex-turn-metadata`), per request
    tool_calls: tuple[ToolCall, ...] = ()  # the tool calls and outputs this request's history carried
    throttled: int = 0  # upstream 429s the proxy waited out before this answer
    # What the answer said about itself (providers/stream.py): the model that served it (`openai-model`, the
    # completed response), how it failed (an in-stream `response.failed` code, `incomplete:<reason>`, an HTTP
    # error's code or type), a usage limit's plan and end, the usage in detail, the plan usage headers.
    served_model: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    plan_type: str | None = None
    resets_at: float | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    request_id: str | None = None
    plan_usage: dict[str, str] = field(default_factory=dict)
    # The proxy's own clock (seconds after the request came in): when the first delta went on to codex, and when
    # the upstream's last byte arrived; and the SHA-256 of the bytes codex got.
    first_delta: float | None = None
    upstream_done: float | None = None
    body_sha256: str | None = None
    local: bool = False  # answered by the proxy itself, nothing sent upstream (a usage limit it remembers)
    turn_state: str | None = None  # the `x-codex-turn-state` codex echoed on this request (sticky routing)


@dataclass(frozen=True)
class CodexEvent:
    """One codex event: its wall-clock time, type and message."""

    time: float
    type: str
    msg: dict[str, Any]
    request_id: str | None = None


@dataclass
class ScenarioOutcome:
    """The evidence of one attempt: prompt, final_output, models, events, tokens, output file — what codex, the
    provider and the filesystem reported, never a judgement of it. The verdict is the checks' `ScenarioFailure`
    (or None), kept beside it by the run layer (`run.items.Attempt`)."""

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
    crash_caused: bool = False  # this scenario's own `crash` fault killed codex
    reruns: list[str] = field(default_factory=list)  # why the scenario was run again (codex died under others)
    output_exists: bool = False
    output_size: int = 0
    output_text: str = ""
    output_notes: list[str] = field(default_factory=list)  # a user's file moved aside, a manifest not written
    tokens_in: int = 0
    tokens_out: int = 0
    duration: float = 0.0
    codex_stderr: str = ""
    stderr_shared: bool = False  # other scenarios ran on the same codex meanwhile: its stderr is not this one's
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
    # The configuration asked for (sandbox, approval-policy, cwd) and the one codex reported for its session.
    expected_config: dict[str, str] = field(default_factory=dict)
    session_config: dict[str, str] = field(default_factory=dict)
    session_config_source: str = "thread/start"  # where codex reported it: thread/start, session_configured, ...
    # The rubric's verdicts (criterion, verdict, reason, votes), who graded, and the grader's own requests.
    rubric: list[dict[str, Any]] = field(default_factory=list)
    grader: str | None = None
    grader_error: str | None = None
    grader_requests: list[AuditRecord] = field(default_factory=list)
    # The agents executor's orchestrator: the model it must run, and what it was (name, model, instructions).
    expected_orchestrator_model: str | None = None
    orchestrator: dict[str, Any] = field(default_factory=dict)
    # What the agent did (trajectory.py), and with `workspace:` where it did it: the attempt's own copy of the
    # fixture (kept when the attempt failed), the diff of that copy before and after, and the `check:` command.
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    workspace: str | None = None
    workspace_kept: bool = False
    workspace_diff: list[dict[str, Any]] | None = None
    check: dict[str, Any] | None = None

    @property
    def every_request(self) -> list[AuditRecord]:
        """Every request the scenario sent a provider: codex's, the orchestrator's and the grader's (its cost)."""
        return [*self.requests, *self.orchestrator_requests, *self.grader_requests]


def command_text(command: Any) -> str:
    """A readable command line from codex's argv (`bash -lc SCRIPT` shows SCRIPT)."""
    if isinstance(command, list):
        parts = [str(c) for c in command]
        if len(parts) == 3 and parts[1] in ("-lc", "-c"):
            return parts[2]
        return " ".join(parts)
    return str(command)


def command_line(command: Any) -> str:
    """A readable command line: `/bin/bash -lc "SCRIPT"` shows SCRIPT (app-server gives one string, quoted)."""
    text = " ".join(command) if isinstance(command, list) else str(command or "")
    with contextlib.suppress(ValueError):
        parts = shlex.split(text)
        if len(parts) == 3 and parts[1] in ("-lc", "-c"):
            return parts[2]
    return text


# codex's words for a command's exit code; in code mode a JSON result's `"exit_code": N` (escaped inside JSON text)
EXIT_CODE = re.compile(r'(?:Process exited with code|exit code:?|\\?"exit_code\\?":)\s*(-?\d+)', re.IGNORECASE)


def item_command(item: dict[str, Any]) -> str:
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


def history_tool_calls(items: Any, when: float, limit: int = 4000) -> tuple[ToolCall, ...]:
    """The tool calls a Responses request's `input` history holds: each call the model made, with the output
    codex sent back (what the provider itself received, whatever the executor could observe)."""
    calls: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        call_id = str(item.get("call_id", ""))
        if item.get("type") in ("function_call", "custom_tool_call", "local_shell_call"):
            calls.setdefault(call_id, {})["command"] = item_command(item)
        elif item.get("type") in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            calls.setdefault(call_id, {})["output"] = text[-limit:]
    found = []
    for call_id, entry in calls.items():
        if "output" not in entry:
            continue  # the model's call, not answered yet in this request
        code = EXIT_CODE.search(entry["output"])
        found.append(
            ToolCall(
                call_id=call_id,
                command=entry.get("command", ""),
                exit_code=int(code.group(1)) if code else None,
                duration=None,
                output=entry["output"],
                started=when,
            )
        )
    return tuple(found)
