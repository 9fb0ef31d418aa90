"""The Responses API stream as the real backend speaks it, both ways: the events the scripted model sends (items
announced, deltas, reasoning with encrypted content, usage with cached and reasoning tokens, a failure inside a 200
stream) and what may be read out of a stream that passes (the served model, the failure's code, the usage) — one
reader for the scripted model's own answers and for what the audit proxy streams through.

The event vocabulary and the fields are those codex parses (`codex-rs/codex-api/src/sse/responses.rs`); the
headers those it reads (`codex-rs/codex-api/src/rate_limits.rs`, `endpoint/responses.rs`): see docs/DESIGN.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SERVED_HEADER = "openai-model"  # the model that served the request: codex warns on a mismatch (a reroute)
# Response headers codex reads, passed through by the proxy; `x-codex-*` (plan usage, turn state) by prefix.
PASSED_HEADERS = ("openai-model", "x-request-id", "retry-after", "x-models-etag", "x-reasoning-included")
PASSED_PREFIX = "x-codex-"
_RETRY_IN = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)\b", re.IGNORECASE)
# Plan usage codex shows (`x-codex-primary-used-percent`, ...): the rate-limit windows of a ChatGPT plan.
_USAGE_HEADER = re.compile(r"^x-codex-(primary|secondary)-(used-percent|window-minutes|reset-at)$")


def frame(event: dict[str, Any]) -> bytes:
    """One server-sent event as the backend frames it."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def pieces(text: str, count: int = 4) -> list[str]:
    """`text` cut into about `count` deltas (never an empty one)."""
    if not text:
        return []
    size = max(1, -(-len(text) // count))
    return [text[n : n + size] for n in range(0, len(text), size)]


def passed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The response headers codex acts on, as the upstream sent them."""
    return {
        k.lower(): v for k, v in headers.items() if k.lower() in PASSED_HEADERS or k.lower().startswith(PASSED_PREFIX)
    }


def retry_delay(message: str) -> float | None:
    """The delay a rate-limit message states ("Please try again in 2.5s"), in seconds."""
    found = _RETRY_IN.search(message or "")
    if not found:
        return None
    value = float(found.group(1))
    return value / 1000 if found.group(2).lower() == "ms" else value


def _announced(item: dict[str, Any]) -> dict[str, Any]:
    """An output item as `response.output_item.added` announces it: without its finished content."""
    kind = item.get("type")
    if kind == "message":
        return {**item, "status": "in_progress", "content": []}
    if kind == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    if kind == "custom_tool_call":
        return {**item, "status": "in_progress", "input": ""}
    if kind == "reasoning":
        return {k: v for k, v in item.items() if k != "encrypted_content"} | {"summary": []}
    return item


def item_events(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """One output item: announced, streamed in deltas, finished (`output_item.added` … `output_item.done`)."""
    item_id = item.get("id")
    at = {"output_index": index, "item_id": item_id}
    added = {"type": "response.output_item.added", "output_index": index, "item": _announced(item)}
    events: list[dict[str, Any]] = [added]
    kind = item.get("type")
    if kind == "message":
        for n, part in enumerate(item.get("content") or []):
            text = str(part.get("text", ""))
            empty = {**part, "text": ""}
            events.append({"type": "response.content_part.added", **at, "content_index": n, "part": empty})
            events += [
                {"type": "response.output_text.delta", **at, "content_index": n, "delta": d} for d in pieces(text)
            ]
            events.append({"type": "response.output_text.done", **at, "content_index": n, "text": text})
            events.append({"type": "response.content_part.done", **at, "content_index": n, "part": part})
    elif kind == "function_call":
        arguments = str(item.get("arguments", ""))
        events += [{"type": "response.function_call_arguments.delta", **at, "delta": d} for d in pieces(arguments)]
        events.append({"type": "response.function_call_arguments.done", **at, "arguments": arguments})
    elif kind == "custom_tool_call":
        text = str(item.get("input", ""))
        events += [{"type": "response.custom_tool_call_input.delta", **at, "delta": d} for d in pieces(text)]
        events.append({"type": "response.custom_tool_call_input.done", **at, "input": text})
    elif kind == "reasoning":
        for n, part in enumerate(item.get("summary") or []):
            text = str(part.get("text", ""))
            at_part = {**at, "summary_index": n}
            events.append({"type": "response.reasoning_summary_part.added", **at_part, "part": {**part, "text": ""}})
            events += [{"type": "response.reasoning_summary_text.delta", **at_part, "delta": d} for d in pieces(text)]
            events.append({"type": "response.reasoning_summary_text.done", **at_part, "text": text})
            events.append({"type": "response.reasoning_summary_part.done", **at_part, "part": part})
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def response_events(
    response_id: str, model: Any, items: list[dict[str, Any]], usage: dict[str, Any], served: str | None = None
) -> list[dict[str, Any]]:
    """A whole streamed response: created, in progress, each item, metadata, completed (with usage and the model
    that served it), numbered as the backend numbers them."""
    base = {"id": response_id, "object": "response", "created_at": int(time.time()), "model": served or model}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}},
        {"type": "response.in_progress", "response": {**base, "status": "in_progress", "output": []}},
    ]
    for n, item in enumerate(items):
        events += item_events(item, n)
    events.append({"type": "response.metadata", "response_id": response_id, "metadata": {}})
    events.append(
        {"type": "response.completed", "response": {**base, "status": "completed", "output": items, "usage": usage}}
    )
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


def failed_events(response_id: str, model: Any, code: str, message: str, partial: str = "") -> list[dict[str, Any]]:
    """A 200 stream that fails midway: some text streamed, then `response.failed` with the error's code (or, for
    code `incomplete:<reason>`, `response.incomplete`)."""
    base = {"id": response_id, "object": "response", "created_at": int(time.time()), "model": model}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}},
        {"type": "response.in_progress", "response": {**base, "status": "in_progress", "output": []}},
    ]
    if partial:
        item = {"type": "message", "id": f"msg_{response_id}", "role": "assistant", "content": []}
        at = {"output_index": 0, "item_id": item["id"], "content_index": 0}
        events.append(
            {"type": "response.output_item.added", "output_index": 0, "item": item | {"status": "in_progress"}}
        )
        events += [{"type": "response.output_text.delta", **at, "delta": d} for d in pieces(partial, 2)]
    if code.startswith("incomplete:"):
        reason = code.split(":", 1)[1]
        done = {**base, "status": "incomplete", "incomplete_details": {"reason": reason}}
        events.append({"type": "response.incomplete", "response": done})
    else:
        done = {**base, "status": "failed", "error": {"code": code, "message": message}}
        events.append({"type": "response.failed", "response": done})
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


@dataclass
class StreamFacts:
    """What one answer said about itself: who served it, how it ended, what it used."""

    served_model: str | None = None  # `openai-model`, else the completed response's `model`
    error_code: str | None = None  # `response.failed`'s code, `incomplete:<reason>`, or an HTTP error's type/code
    error_message: str | None = None
    retry_after: float | None = None  # `Retry-After`, or the delay a rate-limit message states
    plan_type: str | None = None  # a usage limit's plan
    resets_at: float | None = None  # when a usage limit ends (epoch seconds)
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    request_id: str | None = None
    plan_usage: dict[str, str] = field(default_factory=dict)  # the `x-codex-primary-*` / `secondary-*` headers
    first_delta: float | None = None  # monotonic time the first delta passed
    completed: bool = False

    def usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_tokens": self.cached_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


class StreamReader:
    """Reads an answer as it passes, chunk by chunk (SSE), or whole (JSON, an HTTP error)."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        self.status = status
        self.facts = StreamFacts(
            served_model=lower.get(SERVED_HEADER) or None,
            request_id=lower.get("x-request-id") or None,
            plan_usage={k: v for k, v in lower.items() if _USAGE_HEADER.match(k)},
        )
        retry = lower.get("retry-after")
        try:
            self.facts.retry_after = float(retry) if retry else None
        except ValueError:
            self.facts.retry_after = None
        self._sse = "event-stream" in lower.get("content-type", "")
        self._buffer = b""
        self._whole = bytearray()

    def feed(self, chunk: bytes) -> None:
        """One chunk of the body as it arrives."""
        if not self._sse:
            self._whole += chunk
            return
        self._buffer += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            data = b"\n".join(line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:"))
            if data:
                self._event(data)

    def close(self) -> StreamFacts:
        """The body is over: the facts of the whole answer."""
        if self._sse:
            if self._buffer.strip():
                self.feed(b"\n\n")
        else:
            self._body(bytes(self._whole))
        return self.facts

    def _event(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = str(event.get("type", ""))
        facts = self.facts
        if kind.endswith(".delta") and facts.first_delta is None:
            facts.first_delta = time.monotonic()
        response = _dict(event.get("response"))
        if kind == "response.completed":
            facts.completed = True
            facts.served_model = facts.served_model or _text(response.get("model"))
            self._usage(response.get("usage"))
        elif kind == "response.failed":
            error = _dict(response.get("error"))
            facts.error_code = _text(error.get("code")) or "response.failed"
            facts.error_message = _text(error.get("message"))
            facts.retry_after = retry_delay(facts.error_message or "") or facts.retry_after
        elif kind == "response.incomplete":
            details = _dict(response.get("incomplete_details"))
            facts.error_code = f"incomplete:{details.get('reason') or 'unknown'}"
            facts.error_message = f"Incomplete response returned, reason: {details.get('reason') or 'unknown'}"
        elif kind == "error":  # a bare error event (some backends send it before closing)
            error = _dict(event.get("error")) or event
            facts.error_code = facts.error_code or _text(error.get("code")) or "error"
            facts.error_message = facts.error_message or _text(error.get("message"))

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        details_in, details_out = _dict(usage.get("input_tokens_details")), _dict(usage.get("output_tokens_details"))
        self.facts.input_tokens = _int(usage.get("input_tokens"))
        self.facts.output_tokens = _int(usage.get("output_tokens"))
        self.facts.cached_tokens = _int(details_in.get("cached_tokens"))
        self.facts.reasoning_tokens = _int(details_out.get("reasoning_tokens"))

    def _body(self, content: bytes) -> None:
        """A whole JSON answer: a non-streamed response, or an HTTP error in either shape (API, ChatGPT)."""
        try:
            data = json.loads(content)
        except ValueError:
            if self.status >= 400:
                self.facts.error_message = content.decode("utf-8", "replace").strip()[:300]
            return
        if not isinstance(data, dict):
            return
        if self.status < 400:
            self.facts.completed = True
            self.facts.served_model = self.facts.served_model or _text(data.get("model"))
            self._usage(data.get("usage"))
            return
        error = data.get("error")
        if isinstance(error, dict):
            self.facts.error_code = _text(error.get("code")) or _text(error.get("type"))
            self.facts.error_message = _text(error.get("message"))
            self.facts.plan_type = _text(error.get("plan_type"))
            resets = error.get("resets_at")
            if isinstance(resets, int | float):
                self.facts.resets_at = float(resets)
            elif isinstance(error.get("resets_in_seconds"), int | float):
                self.facts.resets_at = time.time() + float(error["resets_in_seconds"])
        elif data.get("detail"):  # the ChatGPT backend's shape
            self.facts.error_message = str(data["detail"])


def read_whole(status: int, headers: Mapping[str, str], content: bytes) -> StreamFacts:
    """The facts of an answer already complete (a replayed one, the scripted model's own)."""
    reader = StreamReader(status, headers)
    reader.feed(content)
    facts = reader.close()
    facts.first_delta = None  # nothing streamed: there is no first delta to time
    return facts


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and value != "" else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
