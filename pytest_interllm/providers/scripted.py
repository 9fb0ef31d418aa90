"""The built-in scripted model: an OpenAI Responses API subset on 127.0.0.1 that drives the real codex."""

from __future__ import annotations

import json
import re
import secrets
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pytest_interllm.providers.server import LocalServer

CALL_PREFIX = "interllm_write_"
_EOF = "INTERLLM_EOF"
_PATH_PATTERNS = (
    re.compile(r"to the file `([^`\n]+)`"),
    re.compile(r"`([^`\s]+\.(?:md|markdown|txt))`"),
    re.compile(r"(\S+/scenario_\d+\.md)"),
)
_TITLE = re.compile(r"^\s*Scenario (\d+): (.+)$", re.MULTILINE)
_STEP = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(.+)$")


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


@dataclass(frozen=True)
class ScenarioRequest:
    """What the scripted model read out of codex's prompt."""

    index: str | None
    title: str
    steps: tuple[str, ...]
    output_path: str | None


def _texts(items: Any) -> list[str]:
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


def read_scenario(prompt: str) -> ScenarioRequest:
    """Pull the scenario's title, steps and output path out of a rendered prompt."""
    path = None
    for pattern in _PATH_PATTERNS:
        found = pattern.search(prompt)
        if found:
            path = found.group(1).strip()
            break
    title_match = _TITLE.search(prompt)
    index, title = (title_match.group(1), title_match.group(2).strip()) if title_match else (None, "Scenario")
    steps = []
    for line in prompt.splitlines():
        step = _STEP.match(line)
        if step and (path is None or path not in step.group(1)):
            steps.append(step.group(1).strip())
    return ScenarioRequest(index=index, title=title, steps=tuple(steps), output_path=path)


def render_document(scenario: ScenarioRequest) -> str:
    """A real markdown plan for the scenario: goal, numbered steps, checklist, verification."""
    steps = list(scenario.steps) or [f"Carry out: {scenario.title}"]
    heading = f"Scenario {scenario.index}: {scenario.title}" if scenario.index else scenario.title
    lines = [f"# {heading}", "", "## Goal", "", f"{scenario.title}.", "", "## Plan", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(steps, 1)]
    lines += ["", "## Checklist", ""]
    lines += [f"- [ ] {step}" for step in steps]
    lines += [
        "",
        "## Verification",
        "",
        "- Compare source and target row counts (or object counts) after the transfer.",
        "- Compare checksums of a sample of records on both sides.",
        "- Record start time, end time and volume moved in the run log.",
        "",
        "## Rollback",
        "",
        "- Keep the source untouched until verification passes; re-run from the last checkpoint on failure.",
        "",
    ]
    return "\n".join(line for line in lines if _EOF not in line)


def write_command(path: str, document: str) -> str:
    """A shell command that creates the file's directory and writes the document into it."""
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    return f"mkdir -p {shlex.quote(parent)} && cat > {shlex.quote(path)} <<'{_EOF}'\n{document}\n{_EOF}\n"


def _tool_names(body: dict[str, Any]) -> set[str]:
    return {str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")}


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedModel(LocalServer):
    """Deterministic model: first turn asks codex to write the file with its own tool, second turn replies."""

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token or secrets.token_urlsafe(24)
        self.audit: list[AuditRecord] = []
        self._lock = threading.Lock()
        self._counter = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/responses", self._responses, methods=["POST"])])

    def records(self, thread_id: str | None = None) -> list[AuditRecord]:
        """Audit records, optionally only those of one codex thread."""
        with self._lock:
            return [r for r in self.audit if thread_id is None or r.thread_id == thread_id]

    def _record(self, request: Request, start: float, model: str | None, status: int, tin: int, tout: int) -> None:
        thread = request.headers.get("thread-id") or request.headers.get("session-id")
        record = AuditRecord(
            time=start,
            method=request.method,
            path=request.url.path,
            model=model,
            status=status,
            thread_id=thread,
            user_agent=request.headers.get("user-agent", ""),
            latency=time.monotonic() - start,
            input_tokens=tin,
            output_tokens=tout,
        )
        with self._lock:
            self.audit.append(record)

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    async def _responses(self, request: Request) -> Response:
        start = time.monotonic()
        if request.headers.get("authorization") != f"Bearer {self.token}":
            self._record(request, start, None, 401, 0, 0)
            return JSONResponse({"error": {"message": "missing or wrong bearer token"}}, status_code=401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            self._record(request, start, None, 400, 0, 0)
            return JSONResponse({"error": {"message": "request body is not JSON"}}, status_code=400)
        model = body.get("model")
        try:
            items = self._answer(body)
        except Exception as exc:  # a bug here must reach the test as evidence, not as a dropped connection
            self._record(request, start, model if isinstance(model, str) else None, 500, 0, 0)
            message = f"scripted model error: {type(exc).__name__}: {exc}"
            return JSONResponse({"error": {"message": message}}, status_code=500)
        tin = _approx_tokens(json.dumps(body.get("input", "")))
        tout = sum(_approx_tokens(json.dumps(item)) for item in items)
        self._record(request, start, model if isinstance(model, str) else None, 200, tin, tout)
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
    def _sse(response_id: str, model: Any, items: list[dict[str, Any]], usage: dict[str, Any]) -> bytes:
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {"id": response_id, "model": model}},
        ]
        events += [
            {"type": "response.output_item.done", "output_index": n, "item": item} for n, item in enumerate(items)
        ]
        events.append({"type": "response.completed", "response": {"id": response_id, "model": model, "usage": usage}})
        return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    def _answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get("input") or []
        outputs = [
            i
            for i in items
            if isinstance(i, dict)
            and i.get("type") in ("function_call_output", "custom_tool_call_output")
            and str(i.get("call_id", "")).startswith(CALL_PREFIX)
        ]
        scenario = read_scenario("\n".join(_texts(items)))
        if outputs:
            return [self._message(self._final_text(scenario, outputs[-1]))]
        if scenario.output_path is None:
            return [self._message("I found no output file path in the prompt, so I wrote nothing.")]
        document = render_document(scenario)
        tools = _tool_names(body)
        call_id = f"{CALL_PREFIX}{self._next_id()}"
        if "exec_command" in tools:
            cmd = {"cmd": write_command(scenario.output_path, document)}
            return [self._function_call(call_id, "exec_command", cmd)]
        if "shell" in tools:
            argv = {"command": ["bash", "-c", write_command(scenario.output_path, document)]}
            return [self._function_call(call_id, "shell", argv)]
        if "apply_patch" in tools:
            patch = "\n".join(
                ["*** Begin Patch", f"*** Add File: {scenario.output_path}"]
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

    @staticmethod
    def _final_text(scenario: ScenarioRequest, output: dict[str, Any]) -> str:
        text = str(output.get("output", ""))
        if re.search(r"(?:exit code|exited with code)[: ]+0\b", text, re.IGNORECASE) or not re.search(
            r"(?:exit code|exited with code)[: ]+\d+", text, re.IGNORECASE
        ):
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
