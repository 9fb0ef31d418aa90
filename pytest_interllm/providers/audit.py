"""Building the audit record of one HTTP request a local provider served, and reading its prompt."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pytest_interllm.outcome import AuditRecord, history_tool_calls

if TYPE_CHECKING:
    from starlette.requests import Request


def audit_request(
    request: Request,
    start: float,
    model: str | None,
    status: int,
    tin: int = 0,
    tout: int = 0,
    **extra: Any,
) -> AuditRecord:
    """The audit record of one HTTP request to a provider (`start` from `time.monotonic()`); the tool calls of
    the history it sent come from the JSON body its handler kept in `request.state.body`."""
    body = getattr(request.state, "body", None) or {}
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
