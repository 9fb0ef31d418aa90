"""Injected faults (the `fault:` expectation key or INTERLLM_FAULT) and the failure class each must give."""

from __future__ import annotations

EXPECTED_CLASS: dict[str, str] = {
    "http-400-empty-model": "empty-model",
    "http-401": "provider-error",
    "http-429": "provider-error",
    "http-500": "provider-error",
    "stall": "timeout",
    "bad-sse": "provider-error",
    "exec-missing": "exec-not-found",
    "write-outside": "sandbox-denied",
    "no-write": "no-output-file",
    "mcp-no-content": "mcp-protocol",
    "crash": "codex-crashed",
    "omit-model": "model-mismatch",
    "subagent-model": "model-mismatch",
    "wrong-sandbox": "config-mismatch",
}
FAULTS = tuple(EXPECTED_CLASS)
# What codex's own config says when the executor leaves the model out (the original script's machine).
CONFIG_DEFAULT_MODEL = "gpt-4o"
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def other_sandbox(asked: str) -> str:
    """The sandbox the `wrong-sandbox` fault runs codex under instead of the one asked for."""
    return "workspace-write" if asked == "read-only" else "read-only"


# Faults the codex and app-server executors make in their own call to codex; the others are acted out by the
# scripted model (the agents executor's orchestrator is the scripted model too).
CALL_FAULTS = ("http-400-empty-model", "omit-model", "mcp-no-content", "wrong-sandbox")
# Faults that do not exist for an executor at all.
NOT_FOR = {
    "agents": {"crash": "the Agents SDK owns the codex process"},
    "app-server": {"mcp-no-content": "app-server speaks JSON-RPC, not MCP: there is no CallToolResult"},
}


def not_for_executor(fault: str, executor: str) -> str | None:
    """Why `fault` does not exist with this executor, or None."""
    why = NOT_FOR.get(executor, {}).get(fault)
    return f"the {fault} fault is not available with the {executor} executor ({why})" if why else None


def unavailable(fault: str, provider: str, executor: str) -> str | None:
    """Why `fault` cannot be injected into a run with this provider and executor, or None when it can."""
    refused = not_for_executor(fault, executor)
    if refused is None and provider != "offline" and (executor == "agents" or fault not in CALL_FAULTS):
        refused = (
            f"fault {fault!r} is acted out by the built-in scripted model: it needs --interllm-provider offline "
            f"(this run's provider is {provider})"
        )
    return refused
