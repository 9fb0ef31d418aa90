"""The built-in scripted model: an OpenAI Responses API subset on 127.0.0.1 that drives the real codex."""

from __future__ import annotations

import asyncio
import json
import re
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
from pytest_interllm.faults import Fault, WritePlan
from pytest_interllm.outcome import AuditRecord
from pytest_interllm.providers.audit import audit_request, user_texts
from pytest_interllm.providers.document import ScenarioRequest, read_scenario, render_document, write_command
from pytest_interllm.providers.server import LocalServer
from pytest_interllm.rubric import read_request, scripted_verdicts

CALL_PREFIX = "interllm_write_"
ORCHESTRATOR_PREFIX = "interllm_codex_"
AGENT_PREFIX = "interllm_agent_"
AGENT_TOOLS = "multi_agent_v1"  # codex's namespace of sub-agent tools (spawn_agent, wait_agent, ...)
# A model codex accepts for a sub-agent (spawn_agent refuses names it does not know), not the expected one.
SUBAGENT_MODEL = "gpt-5.6-luna"
# The codex call arguments an orchestrator's instructions state as `key: value` lines (a list bullet allowed).
_ARG = re.compile(r"^\s*(?:[-*]\s*)?(model|cwd|sandbox|approval-policy):\s*`?([^`\s][^`]*?)`?\s*$", re.MULTILINE)


def _tool_names(body: dict[str, Any]) -> set[str]:
    return {str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")}


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


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


def _error(status: int, message: str, kind: str, code: str | None = None, **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers or None)


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
        self,
        request: Request,
        start: float,
        model: str | None,
        status: int,
        tin: int = 0,
        tout: int = 0,
        retry_after: str | None = None,
    ) -> None:
        context = self._context(request)
        record = audit_request(
            request,
            start,
            model,
            status,
            tin,
            tout,
            scenario=context.label if context else None,
            fault=context.active_fault() if context else None,
            retry_after=float(retry_after) if retry_after else None,
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
        refused = self._refusal(model, fault)
        if refused is not None:
            self._record(request, start, model, refused.status_code, retry_after=refused.headers.get("retry-after"))
            return refused
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
        try:
            items = self._answer(body, fault)
        except Exception as exc:  # a bug here must reach the test as evidence, not as a dropped connection
            self._record(request, start, model, 500)
            return _error(500, f"scripted model error: {type(exc).__name__}: {exc}", "server_error")
        tin = _approx_tokens(json.dumps(body.get("input", "")))
        tout = sum(_approx_tokens(json.dumps(item)) for item in items)
        self._record(request, start, model, 200, tin, tout)
        response_id = f"resp_{self._next_id()}"
        usage = {
            "input_tokens": tin,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tout,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tin + tout,
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": response_id,
                    "object": "response",
                    "model": model,
                    "status": "completed",
                    "output": items,
                    "usage": usage,
                }
            )
        return Response(self._sse(response_id, model, items, usage), media_type="text/event-stream")

    @staticmethod
    def _refusal(model: str | None, fault: Fault | None) -> JSONResponse | None:
        """HTTP errors: an empty model is always refused, as OpenAI does; the rest only under a fault."""
        refusal = faults.REGISTRY["http-400-empty-model"].refusal if model == "" else None
        refusal = refusal or (fault.refusal if fault is not None else None)
        if refusal is None:
            return None
        headers = {"Retry-After": refusal.retry_after} if refusal.retry_after else {}
        return _error(refusal.status, refusal.message.format(model=model or ""), refusal.kind, refusal.code, **headers)

    @staticmethod
    async def _stall(request: Request) -> AsyncIterator[bytes]:
        """Headers, then nothing: a provider that never answers."""
        while not await request.is_disconnected():
            await asyncio.sleep(0.2)
        yield b""

    @staticmethod
    def _sse(response_id: str, model: Any, items: list[dict[str, Any]], usage: dict[str, Any]) -> bytes:
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {"id": response_id, "model": model}},
        ]
        events += [
            {"type": "response.output_item.done", "output_index": n, "item": item} for n, item in enumerate(items)
        ]
        events.append({"type": "response.completed", "response": {"id": response_id, "model": model, "usage": usage}})
        return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    def _answer(self, body: dict[str, Any], fault: Fault | None = None) -> list[dict[str, Any]]:
        graded = read_request(body)
        if graded is not None:  # a grader's request: judged by phrase matching, not by a model
            return [self._message(json.dumps({"criteria": scripted_verdicts(*graded)}))]
        items = body.get("input") or []
        tools = _tool_names(body)
        if "codex" in tools and "exec_command" not in tools:
            return self._orchestrate(body, items, fault)
        outputs = [
            i
            for i in items
            if isinstance(i, dict)
            and i.get("type") in ("function_call_output", "custom_tool_call_output")
            and str(i.get("call_id", "")).startswith(CALL_PREFIX)
        ]
        scenario = read_scenario("\n".join(user_texts(items)))
        if outputs:
            return [self._message(self._final_text(scenario, outputs[-1]))]
        if scenario.output_path is None:
            return [self._message("I found no output file path in the prompt, so I wrote nothing.")]
        plan = WritePlan(path=scenario.output_path)
        plan = fault.shape_plan(plan) if fault is not None else plan
        if plan.delegate and AGENT_TOOLS in tools:
            delegated = self._delegate(items)
            if delegated is not None:
                return [delegated]
        document = render_document(scenario)
        if plan.reply_instead:
            return [self._message(f"Here is the plan for '{scenario.title}':\n\n{document}")]
        path = plan.path
        call_id = f"{CALL_PREFIX}{self._next_id()}"
        if "exec_command" in tools:
            cmd: dict[str, Any] = {"cmd": write_command(path, document)}
            if plan.workdir is not None:
                cmd["workdir"] = plan.workdir
            return [self._function_call(call_id, "exec_command", cmd)]
        if "shell" in tools:
            argv = {"command": ["bash", "-c", write_command(path, document)]}
            return [self._function_call(call_id, "shell", argv)]
        if "apply_patch" in tools:
            patch = "\n".join(
                ["*** Begin Patch", f"*** Add File: {path}"]
                + [f"+{line}" for line in document.splitlines()]
                + ["*** End Patch"]
            )
            return [
                {
                    "type": "custom_tool_call",
                    "id": f"ctc_{call_id}",
                    "call_id": call_id,
                    "name": "apply_patch",
                    "input": patch,
                    "status": "completed",
                }
            ]
        return [self._message(f"No file tool was offered; here is the document instead:\n\n{document}")]

    def _delegate(self, items: Any) -> dict[str, Any] | None:
        """The `subagent-model` fault: spawn a sub-agent on another model and wait for it, then go on as usual.

        Codex's session stays on the expected model; only the provider's requests show the sub-agent's model.
        """
        done = [
            i
            for i in items
            if isinstance(i, dict)
            and i.get("type") == "function_call_output"
            and str(i.get("call_id", "")).startswith(AGENT_PREFIX)
        ]
        call_id = f"{AGENT_PREFIX}{self._next_id()}"
        if not done:
            message = "Review the wording of the plan and reply with one sentence."
            call = self._function_call(call_id, "spawn_agent", {"message": message, "model": SUBAGENT_MODEL})
            return {**call, "namespace": AGENT_TOOLS}
        if len(done) == 1:
            try:
                agent = json.loads(str(done[0].get("output") or "{}")).get("agent_id")
            except (ValueError, AttributeError):
                return None  # codex refused the spawn: nothing to wait for
            call = self._function_call(call_id, "wait_agent", {"targets": [agent], "timeout_ms": 30000})
            return {**call, "namespace": AGENT_TOOLS}
        return None

    def _orchestrate(self, body: dict[str, Any], items: Any, fault: Fault | None) -> list[dict[str, Any]]:
        """The orchestrator of the Agents SDK executor: one `codex` tool call, then codex's answer as its own."""
        outputs = [
            i
            for i in items
            if isinstance(i, dict)
            and i.get("type") == "function_call_output"
            and str(i.get("call_id", "")).startswith(ORCHESTRATOR_PREFIX)
        ]
        if outputs:
            output = outputs[-1].get("output", "")
            text = output if isinstance(output, str) else json.dumps(output)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                parsed = [parsed]
            if isinstance(parsed, list):  # the SDK hands MCP content over as a list of text parts
                text = "\n".join(str(p.get("text", "")) for p in parsed if isinstance(p, dict)) or text
            return [self._message(text)]
        args: dict[str, Any] = {"prompt": "\n".join(user_texts(items))}
        for found in _ARG.finditer(str(body.get("instructions") or "")):
            args[found.group(1)] = found.group(2).strip()
        if fault is not None and fault.by_call:  # what a faulty executor does to its call, the orchestrator does
            args = fault.shape_call(args)
        return [self._function_call(f"{ORCHESTRATOR_PREFIX}{self._next_id()}", "codex", args)]

    @staticmethod
    def _final_text(scenario: ScenarioRequest, output: dict[str, Any]) -> str:
        text = str(output.get("output", ""))
        if re.search(r"exited with code 0\b|exit code:? 0\b", text, re.IGNORECASE):
            return f"Wrote the plan for '{scenario.title}' to {scenario.output_path}."
        return f"I could not write {scenario.output_path}; the command reported:\n{text[:2000]}"

    def _function_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "function_call",
            "id": f"fc_{call_id}",
            "call_id": call_id,
            "name": name,
            "arguments": json.dumps(args),
            "status": "completed",
        }

    def _message(self, text: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"msg_{self._next_id()}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
