"""The data model every layer shares: `ScenarioOutcome` (everything one scenario run left behind, pass or
fail) and the records it is made of: audited provider requests, codex events, tool calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class CodexEvent:
    """One codex event: its wall-clock time, type and message."""

    time: float
    type: str
    msg: dict[str, Any]
    request_id: str | None = None


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
