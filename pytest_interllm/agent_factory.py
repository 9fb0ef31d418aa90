"""Bring your own orchestrator: `--interllm-agent module:attr`, a factory `(codex, model) -> agents.Agent`.

The module is imported with the rootdir on `sys.path` (as pytest does for a conftest), once per process; the
factory is called once here with an MCP server that is never started, to check that it returns an `Agent`. The
user's code runs on threads that can be left behind: a factory or hook that blocks must not hang the run.
"""

from __future__ import annotations

import importlib
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

AgentFactory = Callable[[Any, str], Any]

# Code that is not the user's: where a blocked thread is waiting, the innermost frame outside these is theirs.
_NOT_THEIRS = frozenset({"agents", "openai", "mcp", "anyio", "httpx", "httpcore", "h11", "sniffio", "pydantic"})
_NOT_THEIRS |= {"pydantic_core", "pytest_interllm", "_pytest", "pytest", "pluggy"} | set(sys.stdlib_module_names)
# The lifecycle methods of the SDK's `AgentHooks` and `RunHooks`.
HOOKS = frozenset(
    {"on_start", "on_end", "on_handoff", "on_tool_start", "on_tool_end", "on_llm_start", "on_llm_end"}
    | {"on_agent_start", "on_agent_end"}
)


class AgentFactoryError(Exception):
    """The factory cannot be used: the message names `module:attr` and why."""


_loaded: dict[tuple[str, Path], AgentFactory] = {}  # the plugin asks at configure time and per executor


def load(spec: str, rootdir: Path, model: str, timeout: float) -> AgentFactory:
    """Import `module:attr` and check that calling it gives an `agents.Agent` within `timeout` (once per process)."""
    if (spec, rootdir) not in _loaded:
        _loaded[spec, rootdir] = _load(spec, rootdir, model, timeout)
    return _loaded[spec, rootdir]


def blocked_at(thread: threading.Thread, rootdir: Path) -> tuple[str, str] | None:
    """Where the user's code holds `thread` now: (function, `file:line`), the innermost frame of theirs, if any."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if module not in _NOT_THEIRS:
            path = Path(frame.f_code.co_filename)
            shown = path.relative_to(rootdir) if path.is_relative_to(rootdir) else path
            return frame.f_code.co_name, f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _load(spec: str, rootdir: Path, model: str, timeout: float) -> AgentFactory:
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise AgentFactoryError(f"--interllm-agent {spec!r}: expected module:attr (e.g. orchestrator:build)")
    if str(rootdir) not in sys.path:
        sys.path.insert(0, str(rootdir))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" ({last.filename}:{last.lineno})" if last else ""
        raise AgentFactoryError(
            f"--interllm-agent {spec}: cannot import {module_name!r}: {type(exc).__name__}: {exc}{where}"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise AgentFactoryError(f"--interllm-agent {spec}: {module_name} has no callable {attr!r}")
    from agents import Agent
    from agents.mcp import MCPServerStdio

    probe = MCPServerStdio(name="codex", params={"command": "codex", "args": ["mcp-server"]})
    given: dict[str, Any] = {}

    def call() -> None:
        try:
            given["agent"] = factory(probe, model)
        except BaseException as exc:  # sys.exit() too: a factory never ends the run
            given["error"] = exc

    # On a daemon thread: a factory that never returns is left behind, and pytest still exits.
    thread = threading.Thread(target=call, name="interllm-agent-factory", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        held = blocked_at(thread, rootdir)
        blocked = f"; it is blocked in {held[0]} at {held[1]}" if held else ""
        raise AgentFactoryError(
            f"--interllm-agent {spec}: the factory did not return within {timeout:g}s (--interllm-timeout){blocked}"
        )
    error = given.get("error")
    if isinstance(error, KeyboardInterrupt):
        raise error
    if error is not None:
        raise AgentFactoryError(f"--interllm-agent {spec}: calling it failed: {type(error).__name__}: {error}")
    agent = given.get("agent")
    if not isinstance(agent, Agent):
        raise AgentFactoryError(
            f"--interllm-agent {spec}: returned {type(agent).__name__}, not an agents.Agent (the factory is "
            "called as factory(codex, model), codex being the MCP server to put in mcp_servers)"
        )
    return factory  # type: ignore[no-any-return]
