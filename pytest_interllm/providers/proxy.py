"""The audit proxy between codex and a model provider: audits, records and replays every exchange.

Started once per run by the controller (xdist workers get its URL); binds 127.0.0.1 and serves only
requests carrying the run's random bearer token. The real API key stays in this process.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pytest_interllm.outcome import AuditRecord
from pytest_interllm.providers.audit import audit_request, user_texts
from pytest_interllm.providers.credentials import Credential, CredentialError
from pytest_interllm.providers.server import LocalServer
from pytest_interllm.redact import Redactor

RECORD_MODES = ("once", "new_episodes", "none", "all")
MISMATCH_STATUS = 409
_ENV_CONTEXT = "<environment_context>"
# Not forwarded upstream: hop-by-hop headers, what httpx sets itself, and codex's run token (ours, not theirs).
_DROPPED = frozenset(
    {
        "authorization",
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "accept-encoding",
        "chatgpt-account-id",
    }
)
PREFLIGHT = ("_preflight", "preflight")  # the audit's scenario label of the preflight request


def _prompt_of(body: dict[str, Any]) -> str:
    """The scenario's own words in a request: user messages other than codex's environment context."""
    texts = [t for t in user_texts(body.get("input") or []) if not t.lstrip().startswith(_ENV_CONTEXT)]
    return "\n".join(t for t in texts if not t.lstrip().startswith("<"))


def match_key(body: dict[str, Any]) -> dict[str, Any]:
    """What a replayed request must repeat: model, prompt, offered tools and how far the turn has got."""
    items = body.get("input") or []
    outputs = sum(1 for i in items if isinstance(i, dict) and str(i.get("type", "")).endswith("_output"))
    prompt = _prompt_of(body)
    return {
        "model": body.get("model"),
        "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
        "tool_outputs": outputs,
        "stream": bool(body.get("stream")),
    }


def _error_text(content: bytes) -> str:
    """The provider's own words for a refusal: `error.message`, `detail`, or the start of the body."""
    text = content.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if data.get("detail"):
            return str(data["detail"])
    return text.strip()[:300]


def usage_of(status: int, content: bytes) -> tuple[int, int]:
    """Input and output tokens of a response (JSON, or the `response.completed` event of an SSE stream)."""
    if status >= 400:
        return 0, 0
    text = content.decode("utf-8", "replace")
    candidates = [text] + [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    for chunk in reversed(candidates):
        try:
            data = json.loads(chunk)
        except ValueError:
            continue
        usage = (data.get("response") or data).get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict):
            return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return 0, 0


class Cassettes:
    """`cassettes/<list-stem>/<scenario>.yaml`: request summaries and full responses, secrets redacted."""

    def __init__(self, root: Path, redactor: Redactor) -> None:
        self.root = root
        self.redactor = redactor

    def path(self, stem: str, label: str) -> Path:
        return self.root / stem / f"{label}.yaml"

    def load(self, stem: str, label: str) -> list[dict[str, Any]] | None:
        path = self.path(stem, label)
        if not path.is_file():
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        interactions = data.get("interactions") if isinstance(data, dict) else None
        return list(interactions) if isinstance(interactions, list) else []

    def save(self, stem: str, label: str, interactions: list[dict[str, Any]]) -> None:
        path = self.path(stem, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "scenario": label, "interactions": self.redactor.data(interactions)}
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
        tmp.replace(path)


class AuditProxy(LocalServer):
    """Audits every request; in `record`/`replay` modes stores or serves cassettes; limits concurrency."""

    def __init__(
        self,
        *,
        upstream_url: str | None,
        upstream_key: str | None,
        cassettes: Cassettes | None,
        record_mode: str | None,
        max_concurrency: int | None = None,
        redactor: Redactor | None = None,
        token: str | None = None,
        credential: Credential | None = None,
    ) -> None:
        super().__init__()
        self.token = token or secrets.token_urlsafe(24)
        self.upstream_url = upstream_url.rstrip("/") if upstream_url else None
        self.upstream_key = upstream_key
        self.credential = credential  # the user's own, read on each upstream request
        self.cassettes = cassettes
        self.record_mode = record_mode
        self.redactor = redactor or Redactor()
        self.max_concurrency = max_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self.audit: list[AuditRecord] = []
        self.upstream_requests = 0
        self.windows: list[tuple[float, float]] = []  # start/end of each upstream request, for concurrency
        self._index: dict[tuple[str, str], int] = {}
        self._recorded: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._recording: set[tuple[str, str]] = set()
        self._client: httpx.AsyncClient | None = None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/s/{stem}/{label}/v1/responses", self._responses, methods=["POST"]),
                Route("/_interllm/begin/{stem}/{label}", self._begin, methods=["POST"]),
                Route("/_interllm/preflight", self._preflight, methods=["POST"]),
                Route("/_interllm/audit/{stem}/{label}", self._audit, methods=["GET"]),
            ]
        )

    def scenario_url(self, stem: str, label: str) -> str:
        return f"http://127.0.0.1:{self.port}/s/{stem}/{label}/v1"

    async def start(self) -> None:
        self._semaphore = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()

    def _authorized(self, request: Request) -> bool:
        return secrets.compare_digest(request.headers.get("authorization", ""), f"Bearer {self.token}")

    async def _begin(self, request: Request) -> Response:
        """A scenario (or a retry of it) starts: replay from its first interaction again."""
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        key = (request.path_params["stem"], request.path_params["label"])
        with self._lock:
            self._index[key] = 0
            if self.record_mode == "all":
                self._recorded[key] = []
        return JSONResponse({"ok": True})

    async def _audit(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        scenario = f"{request.path_params['stem']}/{request.path_params['label']}"
        since = float(request.query_params.get("since", "0"))
        with self._lock:
            rows = [asdict(r) for r in self.audit if r.scenario == scenario and r.time >= since]
        return JSONResponse({"records": rows})

    def _record(
        self, request: Request, start: float, model: str | None, status: int, tin: int = 0, tout: int = 0, **extra: Any
    ) -> None:
        scenario = f"{request.path_params.get('stem')}/{request.path_params.get('label')}"
        record = audit_request(request, start, model, status, tin, tout, scenario=scenario, **extra)
        with self._lock:
            self.audit.append(record)

    async def _responses(self, request: Request) -> Response:
        start = time.monotonic()
        if not self._authorized(request):
            self._record(request, start, None, 401)
            return JSONResponse(
                {"error": {"message": "missing or wrong bearer token for the interllm proxy"}}, status_code=401
            )
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            self._record(request, start, None, 400)
            return JSONResponse({"error": {"message": "request body is not JSON"}}, status_code=400)
        request.state.body = body if isinstance(body, dict) else None  # for the audit record
        model = body.get("model") if isinstance(body.get("model"), str) else None
        key = (request.path_params["stem"], request.path_params["label"])
        with self._lock:
            index = self._index.get(key, 0)
            self._index[key] = index + 1
        replayed = self._replay(key, index, body)
        if isinstance(replayed, str):
            self._record(request, start, model, MISMATCH_STATUS, mismatch=replayed)
            message = f"cassette-mismatch: {key[0]}/{key[1]} request {index + 1}: {replayed}"
            return JSONResponse(
                {"error": {"message": message, "type": "cassette_mismatch"}}, status_code=MISMATCH_STATUS
            )
        throttled = 0
        if replayed is not None:
            status, content_type, content = replayed
        else:
            status, content_type, content, throttled = await self._forward(raw, request.headers)
            self._store(key, index, body, status, content_type, content)
        tin, tout = usage_of(status, content)
        self._record(request, start, model, status, tin, tout, replayed=replayed is not None, throttled=throttled)
        return Response(content, status_code=status, media_type=content_type)

    def _replay(self, key: tuple[str, str], index: int, body: dict[str, Any]) -> tuple[int, str, bytes] | str | None:
        """The recorded answer, a mismatch explanation, or None when this request must go upstream."""
        if self.cassettes is None or self.record_mode == "all" or key in self._recording:
            return None
        interactions = self.cassettes.load(*key)
        if interactions is None and self.record_mode in ("once", "new_episodes"):
            with self._lock:
                self._recording.add(key)  # a new cassette: this run records all of it
            return None
        if interactions is None or index >= len(interactions):
            if self.record_mode == "none" or (self.record_mode == "once" and interactions is not None):
                have = "no cassette" if interactions is None else f"only {len(interactions)} recorded requests"
                return f"not recorded ({have} in {self.cassettes.path(*key)})"
            return None
        recorded = interactions[index]
        expected = recorded["request"]["match"]
        actual = match_key(body)
        if expected != actual:
            diff = [
                f"{k}: recorded {expected.get(k)!r}, now {actual.get(k)!r}"
                for k in actual
                if expected.get(k) != actual.get(k)
            ]
            before = recorded["request"].get("prompt", "")
            after = self.redactor.text(_prompt_of(body))
            lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "recorded", "now", lineterm=""))
            return "; ".join(diff) + ("\n" + "\n".join(lines[:40]) if lines else "")
        response = recorded["response"]
        return int(response["status"]), str(response["content_type"]), str(response["body"]).encode("utf-8")

    def _upstream_headers(self, incoming: Mapping[str, str]) -> dict[str, str] | str:
        """Codex's own headers (user-agent, originator, session-id, ...) with the user's credential instead of our
        run token; or why no request may go upstream now (a login that has expired)."""
        headers = {k: v for k, v in incoming.items() if k.lower() not in _DROPPED}
        headers.setdefault("content-type", "application/json")
        headers.setdefault("accept", "text/event-stream")
        if self.credential is not None:
            try:
                login = self.credential.read()  # anew each time: a login refreshed in another terminal counts
            except CredentialError as exc:
                return str(exc)
            if login.expired():
                return login.expired_message()
            headers.update(login.headers())
        elif self.upstream_key:
            headers["authorization"] = f"Bearer {self.upstream_key}"
        return headers

    async def _send(self, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        """One upstream request under the concurrency limit (raises `httpx.HTTPError`)."""
        assert self._client is not None and self.upstream_url is not None
        if self._semaphore is not None:
            await self._semaphore.acquire()
        began = time.time()
        try:
            self.upstream_requests += 1
            reply = await self._client.post(f"{self.upstream_url}/responses", content=raw, headers=headers)
            await reply.aread()
            return reply
        finally:
            with self._lock:
                self.windows.append((began, time.time()))
            if self._semaphore is not None:
                self._semaphore.release()

    async def _forward(self, raw: bytes, incoming: Mapping[str, str]) -> tuple[int, str, bytes, int]:
        """Send the request upstream with the user's credential, honouring Retry-After on 429 (bounded); the
        answer, and how many 429s were waited out."""
        if self.upstream_url is None:
            body = json.dumps({"error": {"message": "replay only: nothing is sent upstream"}}).encode()
            return 502, "application/json", body, 0
        headers = self._upstream_headers(incoming)
        if isinstance(headers, str):  # nothing is sent: codex gets the reason as the provider's refusal
            refusal = json.dumps({"error": {"message": headers, "type": "login"}}).encode()
            return 401, "application/json", refusal, 0
        for attempt in range(4):
            try:
                reply = await self._send(raw, headers)
            except httpx.HTTPError as exc:
                message = f"upstream {self.upstream_url}: {type(exc).__name__}: {exc}"
                return 502, "application/json", json.dumps({"error": {"message": message}}).encode(), attempt
            if reply.status_code == 429 and attempt < 3:
                await asyncio.sleep(min(float(reply.headers.get("retry-after", "1") or 1), 30.0))
                continue
            content_type = reply.headers.get("content-type", "application/json")
            return reply.status_code, content_type, reply.content, attempt
        return 429, "application/json", b"{}", 3

    async def _preflight(self, request: Request) -> Response:
        """One minimal request with the run's model, before any scenario: does the credential work, and does the
        upstream serve this model? Audited (scenario `_preflight/preflight`), never recorded in a cassette."""
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        start = time.monotonic()
        model = str((await request.json()).get("model") or "")
        body = {
            "model": model,
            "instructions": "You are a connectivity check. Reply with the single word OK.",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Reply OK."}]}],
            "tools": [],
            "tool_choice": "auto",
            "parallel_tool_calls": False,
            "store": False,
            "stream": True,
        }
        answer: dict[str, Any] = {"model": model, "upstream": self.upstream_url}
        headers = self._upstream_headers({"user-agent": "pytest-interllm preflight"})
        if isinstance(headers, str):
            answer.update(status=401, text=headers, local=True)
            return JSONResponse(answer)
        try:
            reply = await self._send(json.dumps(body).encode(), headers)
        except httpx.HTTPError as exc:
            answer.update(status=0, text=f"{type(exc).__name__}: {exc}")
            return JSONResponse(answer)
        tin, tout = usage_of(reply.status_code, reply.content)
        record = audit_request(request, start, model, reply.status_code, tin, tout, scenario="/".join(PREFLIGHT))
        with self._lock:
            self.audit.append(record)
        answer.update(
            status=reply.status_code,
            text=_error_text(reply.content) if reply.status_code >= 400 else "",
            input_tokens=tin,
            output_tokens=tout,
            latency=round(record.latency, 3),
        )
        return JSONResponse(answer)

    def _store(
        self, key: tuple[str, str], index: int, body: dict[str, Any], status: int, content_type: str, content: bytes
    ) -> None:
        if self.cassettes is None or self.record_mode == "none":
            return
        interaction = {
            "request": {
                "method": "POST",
                "path": "/v1/responses",
                "model": body.get("model"),
                "prompt": _prompt_of(body),
                "match": match_key(body),
            },
            "response": {"status": status, "content_type": content_type, "body": content.decode("utf-8", "replace")},
        }
        with self._lock:
            existing = self._recorded.get(key)
            if existing is None:
                existing = (self.cassettes.load(*key) or []) if self.record_mode == "new_episodes" else []
            existing = [*existing[:index], interaction]
            self._recorded[key] = existing
            self.cassettes.save(*key, existing)

    def peak_concurrency(self) -> int:
        """The most upstream requests that were in flight at once."""
        events = sorted([(s, 1) for s, _ in self.windows] + [(e, -1) for _, e in self.windows])
        level = peak = 0
        for _, step in events:
            level += step
            peak = max(peak, level)
        return peak
