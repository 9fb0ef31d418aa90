"""Building the audit record of one HTTP request a local provider served, and reading its prompt."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pytest_interllm.outcome import AuditRecord, history_tool_calls

if TYPE_CHECKING:
    from starlette.requests import Request

    from pytest_interllm.providers.stream import StreamFacts


def audit_request(
    request: Request,
    start: float,
    model: str | None,
    status: int,
    tin: int = 0,
    tout: int = 0,
    facts: StreamFacts | None = None,
    **extra: Any,
) -> AuditRecord:
    """The audit record of one HTTP request to a provider (`start` from `time.monotonic()`); the tool calls of
    the history it sent come from the JSON body its handler kept in `request.state.body`, what the answer said about
    itself from `facts`."""
    body = getattr(request.state, "body", None) or {}
    if facts is not None:
        tin, tout = facts.input_tokens or tin, facts.output_tokens or tout
        told = {
            "served_model": facts.served_model,
            "error_code": facts.error_code,
            "error_message": facts.error_message,
            "plan_type": facts.plan_type,
            "resets_at": facts.resets_at,
            "cached_tokens": facts.cached_tokens,
            "reasoning_tokens": facts.reasoning_tokens,
            "request_id": facts.request_id,
            "plan_usage": dict(facts.plan_usage),
            "first_delta": round(facts.first_delta - start, 4) if facts.first_delta is not None else None,
        }
        if facts.retry_after is not None:
            told["retry_after"] = facts.retry_after
        extra = {**told, **extra}
    return AuditRecord(
        tool_calls=history_tool_calls(body.get("input"), time.time()),
        time=time.time(),
        method=request.method,
        path=request.url.path,
        model=model,
        status=status,
        thread_id=request.headers.get("thread-id") or request.headers.get("session-id"),
        user_agent=request.headers.get("user-agent", ""),
        latency=time.monotonic() - start,
        input_tokens=tin,
        output_tokens=tout,
        sandbox_mode=_turn_metadata(request).get("sandbox_mode"),
        turn_state=request.headers.get("x-codex-turn-state"),
        **extra,
    )


def _turn_metadata(request: Request) -> dict[str, Any]:
    """codex's `x-codex-turn-metadata` header (JSON: session, turn, `sandbox_mode`, ...), or {}."""
    try:
        data = json.loads(request.headers.get("x-codex-turn-metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def user_texts(items: Any) -> list[str]:
    """Every text part of the user messages of a Responses `input` list."""
    out: list[str] = []
    if isinstance(items, str):
        return [items]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return out
