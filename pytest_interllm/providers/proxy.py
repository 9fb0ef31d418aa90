"""The audit proxy between codex and a model provider: streams every answer on as the upstream sends it, audits it
(the model that served, how it ended, its usage), records and replays cassettes.

Started once per run by the controller (xdist workers get its URL); binds 127.0.0.1 and serves only requests
carrying the run's random bearer token. The real API key stays in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from typing import Any

import httpx2 as httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pytest_interllm.faults import USAGE_LIMIT
from pytest_interllm.outcome import AuditRecord
from pytest_interllm.providers.audit import audit_request
from pytest_interllm.providers.cassettes import MISMATCH_STATUS, RECORD_MODES, Cassettes, Replayed, Tapes
from pytest_interllm.providers.credentials import Credential, CredentialError
from pytest_interllm.providers.preflight import PREFLIGHT, preflight_body
from pytest_interllm.providers.relay import DRAIN_WAIT, Relay
from pytest_interllm.providers.server import LocalServer
from pytest_interllm.providers.stream import StreamReader, passed_headers, read_whole
from pytest_interllm.redact import Redactor

__all__ = ["MISMATCH_STATUS", "PREFLIGHT", "RECORD_MODES", "AuditProxy", "Cassettes"]
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
AUDIT_WAIT = DRAIN_WAIT + 2.0  # seconds the audit of a scenario waits for its answers still passing through


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


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
        refresh: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        super().__init__()
        self.token = token or secrets.token_urlsafe(24)
        self.upstream_url = upstream_url.rstrip("/") if upstream_url else None
        self.upstream_key = upstream_key
        self.credential = credential  # the user's own, read on each upstream request
        self.refresh = refresh  # has the user's codex refresh the login; None, or why it could not
        self.cassettes = cassettes
        self.record_mode = record_mode
        self.tapes = Tapes(cassettes, record_mode)
        self.redactor = redactor or Redactor()
        self.max_concurrency = max_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._refreshing: asyncio.Lock | None = None
        self._refresh_failed: tuple[str, str] | None = None  # the token codex could not refresh, and why
        self._lock = threading.Lock()
        self.audit: list[AuditRecord] = []
        self.upstream_requests = 0
        self.windows: list[tuple[float, float]] = []  # start/end of each upstream request, for concurrency
        self._open: dict[str, int] = {}  # scenario → answers still streaming through
        self._limit: Replayed | None = None  # a plan's usage limit the upstream answered, until its reset
        self._limit_until = 0.0
        self._client: httpx.AsyncClient | None = None
        self._pumps: set[asyncio.Task[None]] = set()  # answers being read from the upstream

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
        self._refreshing = asyncio.Lock()
        # No read timeout of ours: a stalled upstream is codex's to notice (its own idle timeout), as without us.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0))
        await super().start()

    async def stop(self) -> None:
        for pump in list(self._pumps):
            pump.cancel()
        await super().stop()
        if self._client is not None:
            await self._client.aclose()

    def _authorized(self, request: Request) -> bool:
        return secrets.compare_digest(request.headers.get("authorization", ""), f"Bearer {self.token}")

    async def _begin(self, request: Request) -> Response:
        """A scenario (or a retry of it) starts: replay from its first interaction again."""
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        self.tapes.begin((request.path_params["stem"], request.path_params["label"]))
        return JSONResponse({"ok": True})

    async def _audit(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        scenario = f"{request.path_params['stem']}/{request.path_params['label']}"
        since = float(request.query_params.get("since", "0"))
        deadline = time.monotonic() + AUDIT_WAIT
        while self._open.get(scenario) and time.monotonic() < deadline:  # an answer still passing: its record next
            await asyncio.sleep(0.02)
        with self._lock:
            rows = [asdict(r) for r in self.audit if r.scenario == scenario and r.time >= since]
        return JSONResponse({"records": rows})

    def _record(self, request: Request, start: float, model: str | None, status: int, **extra: Any) -> None:
        scenario = f"{request.path_params.get('stem')}/{request.path_params.get('label')}"
        record = audit_request(request, start, model, status, scenario=scenario, **extra)
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
        index = self.tapes.next_index(key)
        replayed = self.tapes.replay(key, index, body)
        if isinstance(replayed, str):
            self._record(request, start, model, MISMATCH_STATUS, mismatch=replayed)
            message = f"cassette-mismatch: {key[0]}/{key[1]} request {index + 1}: {replayed}"
            return JSONResponse(
                {"error": {"message": message, "type": "cassette_mismatch"}}, status_code=MISMATCH_STATUS
            )
        if replayed is not None:
            return self._answer(request, start, model, replayed, replayed=True)
        if self.upstream_url is None:
            nothing = json.dumps({"error": {"message": "replay only: nothing is sent upstream"}}).encode()
            return self._answer(request, start, model, Replayed(502, "application/json", nothing))
        if self._limit is not None and time.time() < self._limit_until:  # a plan spent: the upstream said so once
            return self._answer(request, start, model, self._limit, local=True)
        headers = await self._upstream_headers(request.headers)
        if isinstance(headers, str):  # nothing is sent: codex gets the reason as the provider's refusal
            refused = json.dumps({"error": {"message": headers, "type": "login", "code": "login"}}).encode()
            return self._answer(request, start, model, Replayed(401, "application/json", refused))
        return await self._forward(request, start, raw, body, model, key, index, headers)

    def _answer(self, request: Request, start: float, model: str | None, answer: Replayed, **extra: Any) -> Response:
        """An answer that is whole already (replayed, an error, the proxy's own refusal): audited, sent."""
        facts = read_whole(answer.status, {"content-type": answer.content_type, **answer.headers}, answer.content)
        self._record(request, start, model, answer.status, facts=facts, body_sha256=_sha(answer.content), **extra)
        return Response(answer.content, answer.status, headers=answer.headers, media_type=answer.content_type)

    async def _upstream_headers(self, incoming: Mapping[str, str]) -> dict[str, str] | str:
        """Codex's own headers (user-agent, originator, session-id, turn state, ...) with the user's credential
        instead of our run token; or why no request may go upstream now (a login that cannot be used)."""
        headers = {k: v for k, v in incoming.items() if k.lower() not in _DROPPED}
        headers.setdefault("content-type", "application/json")
        headers.setdefault("accept", "text/event-stream")
        headers["accept-encoding"] = "identity"  # the bytes codex gets are the bytes the upstream sent
        if self.credential is not None:
            login = await self._login()
            if isinstance(login, str):
                return login
            headers.update(login)
        elif self.upstream_key:
            headers["authorization"] = f"Bearer {self.upstream_key}"
        return headers

    async def _login(self) -> dict[str, str] | str:
        """The login's headers, read anew (a login refreshed elsewhere counts); refreshed by the user's codex first
        when it is about to expire. Or why it cannot be used."""
        assert self.credential is not None and self._refreshing is not None
        try:
            login = self.credential.read()
            margin = self.credential.margin
            if login.expiring(margin) and self.refresh is not None:
                async with self._refreshing:  # one refresh for every request that met the same old token
                    login = self.credential.read()
                    failed = self._refresh_failed
                    if login.expiring(margin) and (failed is None or failed[0] != login.bearer):
                        why = await self.refresh()
                        refreshed = self.credential.read()
                        # A refresh codex could not make is not tried again for the same token: it would not work now.
                        same = refreshed.bearer == login.bearer
                        self._refresh_failed = (login.bearer, why or "the login was not renewed") if same else None
                        login = refreshed
        except CredentialError as exc:
            return str(exc)
        if login.expired():
            failed = self._refresh_failed
            return login.expired_message(failed[1] if failed is not None and failed[0] == login.bearer else None)
        return login.headers()

    async def _forward(
        self,
        request: Request,
        start: float,
        raw: bytes,
        body: dict[str, Any],
        model: str | None,
        key: tuple[str, str],
        index: int,
        headers: dict[str, str],
    ) -> Response:
        """Send the request upstream and stream the answer back as it comes; a 429 is waited out (Retry-After, at
        most three times) before anything reaches codex, but never a plan's usage limit."""
        assert self._client is not None and self.upstream_url is not None
        if self._semaphore is not None:
            await self._semaphore.acquire()
        began = time.time()
        throttled = 0
        reply: httpx.Response | None = None
        try:
            for attempt in range(4):
                self.upstream_requests += 1
                url = f"{self.upstream_url}/responses"
                reply = await self._client.send(
                    self._client.build_request("POST", url, content=raw, headers=headers), stream=True
                )
                if reply.status_code != 429 or attempt == 3:
                    break
                content = await reply.aread()
                await reply.aclose()
                limit = read_whole(429, reply.headers, content)
                if limit.error_code == USAGE_LIMIT:
                    break
                throttled += 1
                await asyncio.sleep(min(limit.retry_after or 1.0, 30.0))
        except httpx.HTTPError as exc:
            self._done(began)
            message = {"error": {"message": f"upstream {self.upstream_url}: {type(exc).__name__}: {exc}"}}
            answer = Replayed(502, "application/json", json.dumps(message).encode())
            return self._answer(request, start, model, answer, throttled=throttled)
        assert reply is not None
        passed = passed_headers(reply.headers)
        content_type = reply.headers.get("content-type", "application/json")
        if reply.status_code >= 400:
            content = await reply.aread()
            await reply.aclose()
            self._done(began)
            answer = Replayed(reply.status_code, content_type, content, passed)
            facts = read_whole(answer.status, {"content-type": content_type, **passed}, content)
            if facts.error_code == USAGE_LIMIT:  # later requests are answered here, until the reset
                self._limit, self._limit_until = answer, facts.resets_at or time.time() + 3600
            self.tapes.store(key, index, body, answer)
            return self._answer(request, start, model, answer, throttled=throttled)
        reader = StreamReader(reply.status_code, {"content-type": content_type, **passed})
        relay = Relay(request, start, body, model, key, index, reply, reader, throttled, began)
        scenario = "/".join(key)
        pump = relay.start_pump()
        with self._lock:
            self._open[scenario] = self._open.get(scenario, 0) + 1
            self._pumps.add(pump)
        return StreamingResponse(
            relay.body_for_codex(lambda: relay.once(lambda: self._finish(relay))),
            status_code=reply.status_code,
            headers=passed,
            media_type=content_type,
            background=BackgroundTask(relay.once, lambda: self._finish(relay)),  # also once codex went away
        )

    async def _finish(self, relay: Relay) -> None:
        """Codex's answer ended (or codex went away): the upstream's is read to its end (at most DRAIN_WAIT more
        seconds), closed, kept in the cassette when whole, audited."""
        await relay.settle()
        self._done(relay.began)
        content = b"".join(relay.chunks)
        content_type = relay.reply.headers.get("content-type", "text/event-stream")
        if relay.complete:
            answer = Replayed(relay.reply.status_code, content_type, content, passed_headers(relay.reply.headers))
            self.tapes.store(relay.key, relay.index, relay.body, answer)
        done = relay.upstream_done
        self._record(
            relay.request,
            relay.start,
            relay.model,
            relay.reply.status_code,
            facts=relay.reader.close(),
            throttled=relay.throttled,
            upstream_done=round(done - relay.start, 4) if done is not None else None,
            first_delta=round(relay.first_sent - relay.start, 4) if relay.first_sent is not None else None,
            body_sha256=_sha(content),
        )
        scenario = "/".join(relay.key)
        with self._lock:
            self._open[scenario] = max(0, self._open.get(scenario, 0) - 1)
            if relay.pump is not None:
                self._pumps.discard(relay.pump)

    def _done(self, began: float) -> None:
        """An upstream request is over: its window counted, its place under the concurrency limit freed."""
        with self._lock:
            self.windows.append((began, time.time()))
        if self._semaphore is not None:
            self._semaphore.release()

    async def _preflight(self, request: Request) -> Response:
        """One request shaped as the installed codex shapes its own, with the run's model, before any scenario:
        does the credential work, and does the upstream serve this model? Audited (scenario
        `_preflight/preflight`), never recorded in a cassette."""
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        start = time.monotonic()
        asked = await request.json()
        model = str(asked.get("model") or "")
        body, shape = preflight_body(model, asked.get("shape"))
        answer: dict[str, Any] = {"model": model, "upstream": self.upstream_url}
        headers = await self._upstream_headers(shape)
        if isinstance(headers, str):
            answer.update(status=401, text=headers, local=True)
            return JSONResponse(answer)
        assert self._client is not None
        try:
            reply = await self._client.post(f"{self.upstream_url}/responses", content=json.dumps(body), headers=headers)
        except httpx.HTTPError as exc:
            answer.update(status=0, text=f"{type(exc).__name__}: {exc}")
            return JSONResponse(answer)
        facts = read_whole(reply.status_code, reply.headers, reply.content)
        record = audit_request(request, start, model, reply.status_code, scenario="/".join(PREFLIGHT), facts=facts)
        with self._lock:
            self.audit.append(record)
        if facts.error_code == USAGE_LIMIT:
            self._limit = Replayed(429, reply.headers.get("content-type", "application/json"), reply.content)
            self._limit_until = facts.resets_at or time.time() + 3600
        answer.update(
            status=reply.status_code,
            text=(facts.error_message or reply.text.strip()[:300]) if reply.status_code >= 400 else "",
            code=facts.error_code,
            plan_type=facts.plan_type,
            resets_at=facts.resets_at,
            content_type=reply.headers.get("content-type", ""),
            cloudflare=bool(reply.headers.get("cf-ray")) or "cloudflare" in reply.text[:2000].lower(),
            served_model=facts.served_model,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            latency=round(record.latency, 3),
        )
        return JSONResponse(answer)

    def peak_concurrency(self) -> int:
        """The most upstream requests that were in flight at once."""
        events = sorted([(s, 1) for s, _ in self.windows] + [(e, -1) for _, e in self.windows])
        level = peak = 0
        for _, step in events:
            level += step
            peak = max(peak, level)
        return peak
