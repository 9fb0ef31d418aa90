"""Injected faults, each one object in this one place: the failure class it must give, who acts it out, where it
does not exist, and how it shapes the codex call and the scripted model's answer.

Executors and the scripted model ask a fault what to do (`shape_call`, `refusal`, `shape_plan`, ...); none of
them compares fault names. Adding a fault is adding one entry to `FAULT_LIST`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_interllm.executors import TRANSPORTS

# What codex's own config says when the executor leaves the model out (the original script's machine).
CONFIG_DEFAULT_MODEL = "gpt-4o"
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
# How a failure the provider names by its code is retried: after the delay it states, with backoff, or never (every
# other code: a context too long, a quota or a usage limit spent, a policy refusal, a login gone).
RETRIED_CODES = {"rate_limit_exceeded": "its stated delay", "server_is_overloaded": "backoff"}
USAGE_LIMIT = "usage_limit_reached"
LOGIN_EXPIRED = ("token_expired", "login")  # the backend's code; the proxy's own refusal of a login it cannot use
OUTSIDE_DIR = "/opt/interllm-outside"  # not a writable root of codex's workspace-write sandbox
MISSING_DIR = "/nonexistent/interllm-missing-workdir"
REROUTED_TO = "gpt-5.2"  # the fallback codex names when the backend reroutes a flagged account
# The codes of a `response.failed` inside a 200 stream (what the backend sends, with its words), and the two of
# `response.incomplete`: `stream-failed:<code>` picks one.
STREAM_FAILURES = {
    "server_is_overloaded": "Our servers are currently overloaded. Please try again later.",
    "rate_limit_exceeded": "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. "
    "Please try again in 1.5s.",
    "context_length_exceeded": "Your input exceeds the context window of this model. Please adjust your input and "
    "try again.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
    "usage_not_included": "Codex usage is not included in your plan.",
    "cyber_policy": "This request has been flagged for potentially high-risk cyber activity.",
    "incomplete:max_output_tokens": "",
    "incomplete:content_filter": "",
}


def other_sandbox(asked: str) -> str:
    """The sandbox the `wrong-sandbox` fault runs codex under instead of the one asked for."""
    return "workspace-write" if asked == "read-only" else "read-only"


@dataclass(frozen=True)
class Refusal:
    """An HTTP error the scripted model answers with (`{model}` in the message: the request's model), in the API's
    shape (`{"error": {message, type, code}}`) or the ChatGPT backend's (`{"detail": message}`, a usage limit's
    `{"error": {type, message, plan_type, resets_at, resets_in_seconds}}`)."""

    status: int
    message: str
    kind: str | None
    code: str | None = None
    retry_after: str | None = None
    detail: bool = False  # the ChatGPT backend's `{"detail": ...}`
    resets_in: int | None = None  # a plan's usage limit, ending this many seconds from now

    def body(self, model: str) -> dict[str, Any]:
        text = self.message.format(model=model)
        if self.detail:
            return {"detail": text}
        if self.resets_in is not None:
            resets = {"resets_at": int(time.time()) + self.resets_in, "resets_in_seconds": self.resets_in}
            return {"error": {"type": self.kind, "message": text, "plan_type": "plus", **resets}}
        return {"error": {"message": text, "type": self.kind, "param": None, "code": self.code}}


@dataclass(frozen=True)
class WritePlan:
    """What the scripted model does on codex's first turn: write `path` with codex's shell tool (from `workdir`),
    or reply with the document instead, or first delegate to a sub-agent."""

    path: str
    workdir: str | None = None
    reply_instead: bool = False
    delegate: bool = False
    # In a scenario's workspace (`workspace:`): what the agent does besides applying its patch.
    stray: bool = False  # the patch also adds a file outside `outputs/`
    forbidden: bool = False  # it also runs `rm -rf build`
    unreported: bool = False  # it also changes a file through the shell, a command that never names the file
    broken: bool = False  # it leaves the scenario's solution out: the code stays broken, the check fails


@dataclass(frozen=True)
class Fault:
    """One injectable fault (`fault:` in a scenario's YAML, or `--interllm-fault`)."""

    name: str
    expected: str | None  # the failure class it must end as (None: the scenario passes)
    what: str  # what happens, for the docs
    by_call: bool = False  # made in the executor's own call to codex: works with every provider
    not_for: Mapping[str, str] = field(default_factory=dict)  # executor → why it does not exist there
    call: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # shapes the `codex` tool call's arguments
    config_model: str | None = None  # the model codex's own config names (the call leaves `model` out)
    refusal: Refusal | None = None  # the scripted model answers every request with this HTTP error
    stall: bool = False  # the scripted model sends headers and then nothing
    broken_stream: bool = False  # the scripted model sends a malformed event stream
    kills_codex: bool = False  # the scripted model kills codex while answering
    plan: Callable[[WritePlan], WritePlan] | None = None  # how the scripted model's first answer changes
    served_model: str | None = None  # the backend serves another model than asked (`openai-model`, a reroute)
    stream_failure: str | None = None  # a `response.failed` code (or `incomplete:<reason>`) inside a 200 stream
    slow: float = 0.0  # seconds between the events of every streamed answer
    stops_run: bool = False  # every later scenario would meet it too: the run stops, the rest are skipped
    needs_workspace: bool = False  # acted out in a scenario's own workspace only (`workspace:` in its YAML)

    def without_workspace(self) -> str | None:
        """Why this fault cannot be injected into a scenario without `workspace:`, or None when it can."""
        if self.needs_workspace:
            return f"the {self.name} fault changes files: it needs the scenario's own `workspace:`"
        return None

    def shape_call(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The codex call's arguments (model, sandbox, approval-policy, ...) as this fault makes them."""
        return self.call(dict(arguments)) if self.call is not None else arguments

    def shape_plan(self, plan: WritePlan) -> WritePlan:
        return self.plan(plan) if self.plan is not None else plan

    def unavailable(self, provider: str, executor: str) -> str | None:
        """Why this fault cannot be injected into a run with this provider and executor, or None when it can."""
        why = self.not_for.get(executor)
        if why:
            return f"the {self.name} fault is not available with the {executor} executor ({why})"
        scripted_orchestrator = executor in TRANSPORTS and TRANSPORTS[executor].scripted_orchestrator
        if provider != "offline" and (scripted_orchestrator or not self.by_call):
            return (
                f"fault {self.name!r} is acted out by the built-in scripted model: it needs --interllm-provider "
                f"offline (this run's provider is {provider})"
            )
        return None


def _without_model(arguments: dict[str, Any]) -> dict[str, Any]:
    arguments.pop("model", None)
    return arguments


FAULT_LIST = (
    Fault(
        "http-400-empty-model",
        "empty-model",
        'the call passes `model: ""`; the provider answers 400 "The \'\' model is not supported…"',
        by_call=True,
        call=lambda a: {**a, "model": ""},
        refusal=Refusal(
            400,
            "The '{model}' model is not supported when using Codex with a ChatGPT account.",
            "invalid_request_error",
            "model_not_supported",
            detail=True,  # the ChatGPT backend's words and shape
        ),
    ),
    Fault(
        "http-401",
        "provider-error",
        "the provider refuses the key",
        refusal=Refusal(
            401,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            "invalid_api_key",
        ),
    ),
    Fault(
        "http-429",
        "provider-error",
        "rate limited with `Retry-After: 1`; retried with backoff, fails when retries run out",
        refusal=Refusal(
            429,
            "Rate limit reached for requests. Please try again in 1s.",
            "requests",
            "rate_limit_exceeded",
            retry_after="1",
        ),
    ),
    Fault(
        "http-500",
        "provider-error",
        "server error; retried with backoff",
        refusal=Refusal(500, "The server had an error while processing your request.", "server_error"),
    ),
    Fault(
        "http-503",
        "provider-error",
        "the provider is overloaded (503 with `Retry-After: 1`); retried with backoff",
        refusal=Refusal(
            503,
            "The engine is currently overloaded, please try again later.",
            "server_error",
            "server_is_overloaded",
            retry_after="1",
        ),
    ),
    Fault("stall", "timeout", "the provider sends headers and then nothing", stall=True),
    Fault("bad-sse", "provider-error", "a malformed event stream", broken_stream=True),
    Fault(
        "exec-missing",
        "exec-not-found",
        "a tool call whose workdir does not exist: codex's own `os error 2`",
        plan=lambda p: replace(p, workdir=MISSING_DIR),
    ),
    Fault(
        "write-outside",
        "sandbox-denied",
        "a write outside codex's writable roots: `Read-only file system`",
        plan=lambda p: replace(p, path=f"{OUTSIDE_DIR}/{p.path.rsplit('/', 1)[-1]}"),
    ),
    Fault(
        "no-write",
        "no-output-file",
        "the agent answers in the conversation and writes no file",
        plan=lambda p: replace(p, reply_instead=True),
    ),
    Fault(
        "mcp-no-content",
        "mcp-protocol",
        "codex answers the tool call with an error result without `structuredContent`",
        by_call=True,
        not_for={"app-server": "app-server speaks JSON-RPC, not MCP: there is no CallToolResult"},
        call=lambda a: {**a, "approval-policy": "sometimes"},  # codex answers isError without structuredContent
    ),
    Fault(
        "crash",
        "codex-crashed",
        "the codex server is killed mid-call",
        not_for={"agents": "the Agents SDK owns the codex process"},
        kills_codex=True,
    ),
    Fault(
        "omit-model",
        "model-mismatch",
        "the call leaves `model` out while codex's config says `gpt-4o`",
        by_call=True,
        call=_without_model,
        config_model=CONFIG_DEFAULT_MODEL,
    ),
    Fault(
        "subagent-model",
        "model-mismatch",
        "the agent spawns a sub-agent on `gpt-5.6-luna` (codex's `spawn_agent`): the session says the expected "
        "model, only the provider's requests show the other one",
        plan=lambda p: replace(p, delegate=True),
    ),
    Fault(
        "wrong-sandbox",
        "config-mismatch",
        "the call asks codex for `read-only` while the run expects `workspace-write`: codex reports the other "
        "sandbox (its session, and the `sandbox_mode` of every request's turn metadata)",
        by_call=True,
        call=lambda a: {**a, "sandbox": other_sandbox(str(a.get("sandbox", "")))},
    ),
    Fault(
        "reroute",
        "model-mismatch",
        f"the backend serves `{REROUTED_TO}` instead of the model asked for (its `openai-model` header and the "
        "completed response; app-server says `model/rerouted`), as for an account flagged for cyber risk",
        served_model=REROUTED_TO,
    ),
    Fault(
        "usage-limit",
        "usage-limit",
        "HTTP 429 `usage_limit_reached` (plan plus, resets in an hour): never retried; the run stops and the "
        "remaining scenarios are skipped",
        refusal=Refusal(429, "The usage limit has been reached", "usage_limit_reached", resets_in=3600),
        stops_run=True,
    ),
    Fault(
        "stream-failed",
        "provider-error",
        "a 200 stream that ends in `response.failed` (`server_is_overloaded`: retried with backoff; "
        "`stream-failed:<code>` picks another code, e.g. `context_length_exceeded`, not retried)",
        stream_failure="server_is_overloaded",
    ),
    Fault(
        "token-expiring",
        "provider-error",
        "the login expires during the run: HTTP 401 `token_expired`; the run stops with one line saying how to "
        "sign in again, the remaining scenarios are skipped",
        refusal=Refusal(
            401,
            "Provided authentication token is expired. Please try signing in again.",
            "invalid_request_error",
            "token_expired",
        ),
        stops_run=True,
    ),
    Fault(
        "slow-stream",
        None,
        "every answer streams its deltas over about a second (the scenario passes: codex gets each event as it comes)",
        slow=0.04,
    ),
    Fault(
        "stray-edit",
        "changes-failed",
        "in its workspace the agent also adds `STRAY.md` at the top, outside `outputs/` (fails a `changes.only` rule)",
        plan=lambda p: replace(p, stray=True),
        needs_workspace=True,
    ),
    Fault(
        "forbidden-command",
        "commands-failed",
        "the agent also runs `rm -rf build` in its workspace (fails a `commands.never_run` rule)",
        plan=lambda p: replace(p, forbidden=True),
        needs_workspace=True,
    ),
    Fault(
        "unreported-change",
        "changes-failed",
        "the agent also appends a line to a file of its workspace with a shell command that never names the file: "
        "the file changed on disk, the agent reported no change to it",
        plan=lambda p: replace(p, unreported=True),
        needs_workspace=True,
    ),
    Fault(
        "broken-fix",
        "check-failed",
        "the agent writes its report but leaves the scenario's fix out: the `check:` command fails",
        plan=lambda p: replace(p, broken=True),
        needs_workspace=True,
    ),
)
REGISTRY: dict[str, Fault] = {fault.name: fault for fault in FAULT_LIST}
FAULTS = tuple(REGISTRY)
EXPECTED_CLASS: dict[str, str] = {fault.name: fault.expected or "passed" for fault in FAULT_LIST}


def get(name: str | None) -> Fault | None:
    """The fault called `name` (None for none); `stream-failed:<code>` picks the failure's code."""
    if not name:
        return None
    base, _, code = name.partition(":")
    fault = REGISTRY[base]
    return replace(fault, name=name, stream_failure=code) if code else fault


def known(name: str) -> bool:
    """Whether `name` is a fault (`stream-failed:<code>` with a code the backend sends)."""
    base, _, code = name.partition(":")
    if base not in REGISTRY:
        return False
    return not code or (REGISTRY[base].stream_failure is not None and code in STREAM_FAILURES)


def names() -> str:
    """Every fault name, for a message (`stream-failed` with its codes)."""
    return ", ".join(FAULTS) + f" (stream-failed:<code>, code one of {', '.join(STREAM_FAILURES)})"


def not_for_executor(name: str, executor: str) -> str | None:
    """Why the fault does not exist with this executor, or None."""
    fault = REGISTRY[name.partition(":")[0]]
    why = fault.not_for.get(executor)
    return f"the {name} fault is not available with the {executor} executor ({why})" if why else None


def unavailable(name: str, provider: str, executor: str) -> str | None:
    """Why the fault cannot be injected into a run with this provider and executor, or None when it can."""
    return REGISTRY[name.partition(":")[0]].unavailable(provider, executor)
