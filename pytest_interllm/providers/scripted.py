"""The built-in scripted model: an OpenAI Responses API server on 127.0.0.1 that drives the real codex and speaks
the stream as the real backend does (providers/stream.py): items announced and streamed in deltas, a reasoning
item whose encrypted content must come back with the next request of the turn, a commentary preamble, usage with
cached and reasoning tokens, the response headers codex reads, and both error shapes (the API's, the ChatGPT
backend's). What it answers is `answers.Script`'s; faults (faults.py) change how."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pytest_interllm import faults
from pytest_interllm.faults import Fault, Refusal
from pytest_interllm.outcome import AuditRecord
from pytest_interllm.providers.answers import (  # noqa: F401  (re-exported: tests and benchmarks name them here)
    AGENT_PREFIX,
    AGENT_TOOLS,
    CALL_PREFIX,
    ORCHESTRATOR_PREFIX,
    SUBAGENT_MODEL,
    Script,
)
from pytest_interllm.providers.audit import audit_request
from pytest_interllm.providers.server import LocalServer
from pytest_interllm.providers.stream import StreamFacts, failed_events, frame, read_whole, response_events

MODELS_ETAG = '"interllm-scripted-catalog-1"'
ENCRYPTED = "reasoning.encrypted_content"


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


_IDS = frozenset({"id", "call_id", "encrypted_content"})


def _without_ids(value: Any) -> Any:
    """`value` without the ids the server numbers as it goes: a scenario's usage must not depend on what ran
    before it (a serial run and one in flight report the same tokens)."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in _IDS}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


@dataclass
class CallContext:
    """One scenario's view of the provider: its label, its fault and what to do on `crash`."""

    label: str
    fault: str | None = None
    fault_requests: int | None = None
    on_crash: Callable[[], None] | None = None
    requests: int = 0
    records: list[AuditRecord] = field(default_factory=list)

    def active_fault(self) -> str | None:
        """The fault for the request being served (faults may be limited to the first N requests)."""
        if self.fault is None or (self.fault_requests is not None and self.requests > self.fault_requests):
            return None
        return self.fault


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


class ScriptedModel(LocalServer):
    """Deterministic model: first turn asks codex to write the file with its own tool, second turn replies.

    Each scenario gets its own base URL (`/c/<key>/v1`), which attributes its requests and selects its fault.
    """

    def __init__(self, token: str | None = None, latency: float = 0.0) -> None:
        super().__init__()
        self.token = token or secrets.token_urlsafe(24)
        self.latency = latency  # seconds added to every answer, to stand in for a real model's time
        self.audit: list[AuditRecord] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._calls: dict[str, CallContext] = {}
        self.current: CallContext | None = None  # for clients that cannot be given a per-scenario URL
        self.script = Script(self._next_id)
        self._secret = secrets.token_bytes(16)  # seals the reasoning items' encrypted content
        self._sealed: dict[str, str] = {}  # a tool call's id → the reasoning item that came with it
        self._turn_states: dict[str, str] = {}  # codex's turn id → the `x-codex-turn-state` it was given
        self._cached: dict[str, int] = {}  # prompt_cache_key → input tokens of its last request (now cached)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/c/{key}/v1/responses", self._responses, methods=["POST"]),
            ]
        )

    def open_call(self, context: CallContext) -> str:
        """Register a scenario's context; codex is given `call_url(key)` as its base URL."""
        key = secrets.token_hex(8)
        with self._lock:
            self._calls[key] = context
        return key

    def _context(self, request: Request) -> CallContext | None:
        """The scenario of a request: its URL key, else the one scenario this worker is running now."""
        key = request.path_params.get("key")
        return self._calls.get(str(key)) if key else self.current

    def close_call(self, key: str) -> None:
        with self._lock:
            self._calls.pop(key, None)

    def call_url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/c/{key}/v1"

    def _record(
        self, request: Request, start: float, model: str | None, status: int, facts: StreamFacts | None = None
    ) -> None:
        context = self._context(request)
        record = audit_request(
            request,
            start,
            model,
            status,
            scenario=context.label if context else None,
            fault=context.active_fault() if context else None,
            facts=facts,
        )
        with self._lock:
            self.audit.append(record)
            if context is not None:
                context.records.append(record)

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    async def _responses(self, request: Request) -> Response:
        start = time.monotonic()
        if request.headers.get("authorization") != f"Bearer {self.token}":
            self._record(request, start, None, 401)
            return _error(401, "missing or wrong bearer token for the interllm provider", "invalid_request_error")
        try:
            body = json.loads(await request.body())
        except ValueError:
            self._record(request, start, None, 400)
            return _error(400, "request body is not JSON", "invalid_request_error")
        request.state.body = body if isinstance(body, dict) else None  # for the audit record
        raw_model = body.get("model")
        model = raw_model if isinstance(raw_model, str) else None
        context = self._context(request)
        if context is not None:
            context.requests += 1
        fault = faults.get(context.active_fault() if context else None)
        if self.latency:
            await asyncio.sleep(self.latency)
        refusal = self._refusal(model, fault)
        if refusal is not None:
            return self._refuse(request, start, model, refusal)
        if fault is not None and fault.kills_codex and context is not None and context.on_crash is not None:
            context.on_crash()
        if fault is not None and fault.stall:
            self._record(request, start, model, 200)
            return StreamingResponse(self._stall(request), media_type="text/event-stream")
        if fault is not None and fault.broken_stream:
            self._record(request, start, model, 200)
            return Response(
                b'event: response.created\ndata: {"type": "response.created", "respo\n\n',
                media_type="text/event-stream",
            )
        unsealed = self._unsealed(body)
        if unsealed is not None:
            return self._refuse(request, start, model, Refusal(400, unsealed, "invalid_request_error"))
        try:
            items = self.script.answer(body, fault)
        except Exception as exc:  # a bug here must reach the test as evidence, not as a dropped connection
            self._record(request, start, model, 500)
            return _error(500, f"scripted model error: {type(exc).__name__}: {exc}", "server_error")
        return self._answer(request, start, body, model, items, fault)

    def _answer(
        self,
        request: Request,
        start: float,
        body: dict[str, Any],
        model: str | None,
        items: list[dict[str, Any]],
        fault: Fault | None,
    ) -> Response:
        """The items as the backend sends them: streamed with its headers (or one JSON object), audited."""
        served = (fault.served_model if fault is not None else None) or model
        if ENCRYPTED in (body.get("include") or []) and body.get("stream"):
            reasoning = self.script.reasoning(items, self._seal)
            with self._lock:
                for item in items:
                    if item.get("call_id"):
                        self._sealed[str(item["call_id"])] = str(reasoning["id"])
            items = [reasoning, *items]
        usage = self._usage(body, items)
        headers = self._headers(request, served)
        response_id = f"resp_{self._next_id()}"
        if not body.get("stream"):
            content = json.dumps(
                {"id": response_id, "object": "response", "model": served, "status": "completed", "output": items}
                | {"usage": usage}
            ).encode()
            self._record(request, start, model, 200, read_whole(200, {**headers, "content-type": "json"}, content))
            return Response(content, media_type="application/json", headers=headers)
        failure = fault.stream_failure if fault is not None else None
        if failure:
            message = faults.STREAM_FAILURES.get(failure) or f"The response failed ({failure})."
            events = failed_events(response_id, served, failure, message, partial="Working on the plan")
        else:
            events = response_events(response_id, model, items, usage, served)
        frames = [frame(e) for e in events]
        sse = {**headers, "content-type": "text/event-stream"}
        self._record(request, start, model, 200, read_whole(200, sse, b"".join(frames)))
        if fault is not None and fault.slow:
            return StreamingResponse(self._slowly(frames, fault.slow), media_type="text/event-stream", headers=headers)
        return Response(b"".join(frames), media_type="text/event-stream", headers=headers)

    def _refuse(self, request: Request, start: float, model: str | None, refusal: Refusal) -> Response:
        headers = {"retry-after": refusal.retry_after} if refusal.retry_after else {}
        content = json.dumps(refusal.body(model or "")).encode()
        facts = read_whole(refusal.status, {**headers, "content-type": "application/json"}, content)
        self._record(request, start, model, refusal.status, facts)
        return Response(content, status_code=refusal.status, media_type="application/json", headers=headers)

    def _headers(self, request: Request, served: str | None) -> dict[str, str]:
        """The response headers the backend sends and codex reads: the model that served, the request id, the turn
        state codex echoes on the turn's later requests, the models etag, plan usage."""
        turn = _turn_id(request)
        with self._lock:
            state = self._turn_states.setdefault(turn, f"ts_{secrets.token_hex(8)}") if turn else None
        headers = {
            "x-request-id": f"req_{secrets.token_hex(12)}",
            "x-models-etag": MODELS_ETAG,
            "x-reasoning-included": "true",
            "x-codex-primary-used-percent": "1.0",
            "x-codex-primary-window-minutes": "300",
            "x-codex-secondary-used-percent": "0.5",
            "x-codex-secondary-window-minutes": "10080",
        }
        if served:
            headers["openai-model"] = served
        if state:
            headers["x-codex-turn-state"] = state
        return headers

    def _usage(self, body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
        """Token usage as the backend reports it: cached input (the same `prompt_cache_key` was seen before) and
        reasoning tokens (part of the output)."""
        tin = _approx_tokens(json.dumps(_without_ids(body.get("input", ""))))
        tout = sum(_approx_tokens(json.dumps(_without_ids(item))) for item in items)
        reasoning = sum(
            _approx_tokens(str(part.get("text", "")))
            for item in items
            if item.get("type") == "reasoning"
            for part in item.get("summary") or []
        )
        key = str(body.get("prompt_cache_key") or "")
        with self._lock:
            cached = min(self._cached.get(key, 0), tin) if key else 0
            if key:
                self._cached[key] = tin
        return {
            "input_tokens": tin,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": tout,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": tin + tout,
        }

    def _seal(self, reasoning_id: str) -> str:
        """A reasoning item's encrypted content: opaque to codex, verifiable here."""
        mac = hmac.new(self._secret, reasoning_id.encode(), hashlib.sha256).hexdigest()[:32]
        return base64.b64encode(f"{reasoning_id}:{mac}".encode()).decode()

    def _unsealed(self, body: dict[str, Any]) -> str | None:
        """What the real backend refuses (`store: false`): a tool call sent back without the reasoning item that
        came with it, or with encrypted content it did not issue."""
        items = [i for i in body.get("input") or [] if isinstance(i, dict)]
        carried: set[str] = set()
        for item in items:
            if item.get("type") != "reasoning" or not item.get("encrypted_content"):
                continue
            try:
                reasoning_id = base64.b64decode(str(item["encrypted_content"])).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                reasoning_id = ""
            if not reasoning_id or self._seal(reasoning_id) != item["encrypted_content"]:
                return f"The encrypted content for item {item.get('id') or reasoning_id or '?'} could not be verified."
            carried.add(reasoning_id)
        for item in items:
            with self._lock:
                needed = self._sealed.get(str(item.get("call_id", ""))) if item.get("type") in _CALLS else None
            if needed is not None and needed not in carried:
                return (
                    f"Item '{item.get('id') or item.get('call_id')}' of type '{item.get('type')}' was provided "
                    f"without its required 'reasoning' item: '{needed}'."
                )
        return None

    @staticmethod
    def _refusal(model: str | None, fault: Fault | None) -> Refusal | None:
        """HTTP errors: an empty model is always refused, as OpenAI does; the rest only under a fault."""
        if model == "":
            return faults.REGISTRY["http-400-empty-model"].refusal
        return fault.refusal if fault is not None else None

    @staticmethod
    async def _stall(request: Request) -> AsyncIterator[bytes]:
        """Headers, then nothing: a provider that never answers."""
        while not await request.is_disconnected():
            await asyncio.sleep(0.2)
        yield b""

    @staticmethod
    async def _slowly(frames: list[bytes], pause: float) -> AsyncIterator[bytes]:
        """The `slow-stream` fault: each event after a pause, as a model that takes its time."""
        for chunk in frames:
            yield chunk
            await asyncio.sleep(pause)


_CALLS = ("function_call", "custom_tool_call")


def _turn_id(request: Request) -> str | None:
    """codex's turn id (`x-codex-turn-metadata`), which the turn state belongs to."""
    try:
        data = json.loads(request.headers.get("x-codex-turn-metadata") or "{}")
    except ValueError:
        return None
    return str(data.get("turn_id")) if isinstance(data, dict) and data.get("turn_id") else None
