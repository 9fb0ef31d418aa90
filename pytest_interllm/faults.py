"""Injected faults, each one object in this one place: the failure class it must give, who acts it out, where it
does not exist, and how it shapes the codex call and the scripted model's answer.

Executors and the scripted model ask a fault what to do (`shape_call`, `refusal`, `shape_plan`, ...); none of
them compares fault names. Adding a fault is adding one entry to `FAULT_LIST`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_interllm.executors import TRANSPORTS

# What codex's own config says when the executor leaves the model out (the original script's machine).
CONFIG_DEFAULT_MODEL = "gpt-4o"
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
OUTSIDE_DIR = "/opt/interllm-outside"  # not a writable root of codex's workspace-write sandbox
MISSING_DIR = "/nonexistent/interllm-missing-workdir"


def other_sandbox(asked: str) -> str:
    """The sandbox the `wrong-sandbox` fault runs codex under instead of the one asked for."""
    return "workspace-write" if asked == "read-only" else "read-only"


@dataclass(frozen=True)
class Refusal:
    """An HTTP error the scripted model answers with (`{model}` in the message: the request's model)."""

    status: int
    message: str
    kind: str
    code: str | None = None
    retry_after: str | None = None


@dataclass(frozen=True)
class WritePlan:
    """What the scripted model does on codex's first turn: write `path` with codex's shell tool (from `workdir`),
    or reply with the document instead, or first delegate to a sub-agent."""

    path: str
    workdir: str | None = None
    reply_instead: bool = False
    delegate: bool = False


@dataclass(frozen=True)
class Fault:
    """One injectable fault (`fault:` in a scenario's YAML, or `--interllm-fault`)."""

    name: str
    expected: str  # the failure class it must end as
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
)
REGISTRY: dict[str, Fault] = {fault.name: fault for fault in FAULT_LIST}
FAULTS = tuple(REGISTRY)
EXPECTED_CLASS: dict[str, str] = {fault.name: fault.expected for fault in FAULT_LIST}


def get(name: str | None) -> Fault | None:
    """The fault called `name` (None for none)."""
    return REGISTRY[name] if name else None


def not_for_executor(name: str, executor: str) -> str | None:
    """Why the fault does not exist with this executor, or None."""
    fault = REGISTRY[name]
    why = fault.not_for.get(executor)
    return f"the {name} fault is not available with the {executor} executor ({why})" if why else None


def unavailable(name: str, provider: str, executor: str) -> str | None:
    """Why the fault cannot be injected into a run with this provider and executor, or None when it can."""
    return REGISTRY[name].unavailable(provider, executor)
