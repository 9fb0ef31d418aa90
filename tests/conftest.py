"""Shared helpers: small scenario projects run by pytester against the real codex and scripted model."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pytest_interllm.codex.install import CACHE_ENV, cache_root
from pytest_interllm.providers.scripted import CallContext, ScriptedModel
from pytest_interllm.runtime import LoopRunner
from tests import warm

THREE = """\
# Replication

1. Copy the `orders` table to the warehouse
   - Use updated_at as the watermark
2. Stream CDC events to Kafka

## Files

- Pick up CSV drops from SFTP
"""


# Where `make setup` put codex 0.153.4, computed before pytester points HOME at each test's directory.
CODEX_CACHE = str(cache_root())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests (marked `long`, measured with `--durations`) first: under `-n auto --dist worksteal` a
    worker that draws one near the end would run on alone while the other core idles."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own INTERLLM_* variables must not change what a test sees."""
    for name in list(os.environ):
        if name.startswith("INTERLLM_") or name in ("OPENAI_API_KEY", "OPENAI_DEFAULT_MODEL", "CODEX_HOME"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(CACHE_ENV, CODEX_CACHE)
    # A login codex refreshes in a test goes to a closed port unless the test names its stand-in: never to OpenAI.
    monkeypatch.setenv("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://127.0.0.1:1/oauth/token")


@pytest.fixture(autouse=True)
def _users_codex_config(request: pytest.FixtureRequest) -> None:
    """A pytester project's user (HOME is its directory) has configured codex for gpt-5-codex, the field report's
    model, in `~/.codex/config.toml`: the default expected model of the runs (test_models.py covers the others)."""
    if "pytester" in request.fixturenames and "no_user_codex_config" not in request.keywords:
        pytester: pytest.Pytester = request.getfixturevalue("pytester")
        write(pytester.path / ".codex" / "config.toml", 'model = "gpt-5-codex"\n')


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A rootdir with `input/list.md` (three scenarios in two sections) and an ini that pins the rootdir."""
    pytester.makeini("[pytest]\n")
    write(pytester.path / "input" / "list.md", THREE)
    return pytester


# A run that must leave nothing open: every warning an error, in the ini and on the command line (test_warnings.py).
STRICT = ("-W", "error::ResourceWarning", "-W", "error")


def strict(pytester: pytest.Pytester) -> tuple[str, ...]:
    """Make the project's ini `filterwarnings = error`; the command-line arguments that go with it."""
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    return STRICT


def assert_nothing_left_open(result: pytest.RunResult) -> None:
    """A passing run exited 0, with no ResourceWarning raised at exit."""
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()


def fresh_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (nothing imported by this test process): its exit code and output."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(pytester: pytest.Pytester, *args: str, fresh: bool = False) -> pytest.RunResult:
    """pytest in a child process (codex is a real child process of it), with a generous timeout: forked from a warm
    process that has the heavy libraries imported (tests/warm.py), or a fresh interpreter with `fresh=True`."""
    return warm.runpytest(pytester, *args, timeout=300, fresh=fresh)


def log_lines(pytester: pytest.Pytester, logs: str = "logs") -> list[dict[str, Any]]:
    """Every line of the project's one JSONL run log in `logs` (`run-*.jsonl`): the scenarios, then the summary."""
    [path] = (pytester.path / logs).glob("run-*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def jsonl(pytester: pytest.Pytester, logs: str = "logs") -> list[dict[str, Any]]:
    """The scenario records of the project's one run log in `logs` (its last line, the run's summary, left out)."""
    return [r for r in log_lines(pytester, logs) if r.get("record") != "summary"]


def outputs(pytester: pytest.Pytester) -> list[str]:
    """Names of the files in `outputs/` (but the plugin's manifest and kept dir)."""
    out = pytester.path / "outputs"
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".interllm")) if out.is_dir() else []


class StandIn(ScriptedModel):
    """A stand-in for a real upstream on 127.0.0.1: accepts only the given bearer (and ChatGPT account id),
    answers the Responses API like the scripted model, refuses some models as the ChatGPT backend does, and
    remembers the headers of every request it got."""

    def __init__(
        self,
        tokens: tuple[str, ...],
        account_id: str | None = None,
        refuse: tuple[str, ...] = (),
        accept_file: Path | None = None,
        fault: str | None = None,
        fault_from: int = 1,
    ) -> None:
        super().__init__(token=tokens[0])
        self.fault = fault  # a fault of the scripted model's that the stand-in acts out, from request `fault_from` on
        self.fault_from = fault_from
        self.bodies: list[dict[str, Any]] = []  # the JSON body of every request it got
        self.cloudflare = False  # answer as a Cloudflare edge that blocks the caller: HTTP 403, an HTML page
        self.tokens = tokens
        self.accept_file = accept_file  # a token written there later is accepted too (a login refreshed mid-run)
        self.account_id = account_id
        self.refuse = refuse
        self.seen: list[dict[str, str]] = []
        self.refreshes: list[dict[str, Any]] = []  # refresh-token grants its auth endpoint got (codex's own)
        self.issued: list[dict[str, str]] = []  # the tokens it issued for them
        self.refuse_refresh = False  # answer a refresh as a used refresh token (codex then cannot refresh)

    def app(self) -> Starlette:
        routes = [Route(path, self._gate, methods=["POST"]) for path in ("/responses", "/v1/responses")]
        return Starlette(routes=[*routes, Route("/oauth/token", self._refresh, methods=["POST"])])

    async def _refresh(self, request: Request) -> Response:
        """The auth server's refresh-token grant, as codex's login code calls it (CODEX_REFRESH_TOKEN_URL_OVERRIDE)."""
        self.refreshes.append(json.loads(await request.body()))
        if self.refuse_refresh:
            error = {"error": {"code": "refresh_token_reused", "message": "Your refresh token has already been used"}}
            return JSONResponse(error, status_code=401)
        account = self.account_id or "acct-0000-c0de"
        claims = {"https://api.openai.com/auth": {"chatgpt_account_id": account, "chatgpt_plan_type": "plus"}}
        tokens = {
            "id_token": jwt({"email": "user@example.com", **claims}),
            "access_token": jwt({"exp": int(time.time() + 3600), "sub": "user-1", "nonce": os.urandom(4).hex()}),
            "refresh_token": "rt-issued-" + os.urandom(8).hex(),
        }
        self.issued.append(tokens)
        self.tokens = (*self.tokens, tokens["access_token"])
        return JSONResponse(tokens)

    async def _gate(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(headers)
        body = json.loads(await request.body())
        self.bodies.append(body)
        if self.cloudflare:
            page = (
                "<html><head><title>Attention Required! | Cloudflare</title></head><body>Sorry, you have been blocked"
            )
            return Response(page + "</body></html>", 403, {"cf-ray": "8f00c0ffee-AMS"}, media_type="text/html")
        if self.fault is not None and len(self.seen) >= self.fault_from:
            self.current = CallContext("upstream", fault=self.fault)
        account_ok = self.account_id is None or headers.get("chatgpt-account-id") == self.account_id
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        later = (self.accept_file.read_text(),) if self.accept_file is not None and self.accept_file.is_file() else ()
        if bearer not in (*self.tokens, *later) or not account_ok:
            return JSONResponse({"detail": "Unauthorized: invalid token or account"}, status_code=401)
        model = body.get("model")
        if model in self.refuse:
            message = f"The '{model}' model is not supported when using Codex with a ChatGPT account."
            return JSONResponse({"detail": message}, status_code=400)
        self.token = bearer  # the scripted model below checks the same bearer
        return await self._responses(request)


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT, as codex logins are read (nobody checks the signature)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"  # codex wants a signature part


def chatgpt_login(
    path: Path, *, expires_in: float = 3600, account: str = "acct-0000-c0de", plan: str = "plus"
) -> dict[str, str]:
    """Write a fake ChatGPT codex login (auth.json); return its tokens."""
    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": account, "chatgpt_plan_type": plan}}
    tokens = {
        "id_token": jwt({"email": "user@example.com", **claims}),
        "access_token": jwt({"exp": int(time.time() + expires_in), "sub": "user-1", "nonce": os.urandom(4).hex()}),
        "refresh_token": "rt-planted-refresh-" + os.urandom(8).hex(),
        "account_id": account,
    }
    data = {"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": "2026-11-25T10:00:00Z"}
    write(path, json.dumps(data, indent=2))
    return tokens


@pytest.fixture
def loop() -> Iterator[LoopRunner]:
    runner = LoopRunner()
    yield runner
    runner.close()


@pytest.fixture
def upstream(loop: LoopRunner) -> Iterator[Callable[..., StandIn]]:
    """Start stand-in upstreams on the test's loop: `upstream(tokens, account_id=..., refuse=...)`."""
    started: list[StandIn] = []

    def start(tokens: tuple[str, ...], **kwargs: Any) -> StandIn:
        server = StandIn(tokens, **kwargs)
        loop.run(server.start())
        started.append(server)
        return server

    yield start
    for server in started:
        loop.run(server.stop())
