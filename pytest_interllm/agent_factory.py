"""Bring your own orchestrator: `--interllm-agent module:attr`, a factory `(codex, model) -> agents.Agent`.

The module is imported with the rootdir on `sys.path` (as pytest does for a conftest), once per process; the
factory is called once here with an MCP server that is never started, to check that it returns an `Agent`.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

AgentFactory = Callable[[Any, str], Any]


class AgentFactoryError(Exception):
    """The factory cannot be used: the message names `module:attr` and why."""


_loaded: dict[tuple[str, Path], AgentFactory] = {}  # the plugin asks at configure time and per executor


def load(spec: str, rootdir: Path, model: str) -> AgentFactory:
    """Import `module:attr` and check that calling it gives an `agents.Agent` (once per process)."""
    if (spec, rootdir) not in _loaded:
        _loaded[spec, rootdir] = _load(spec, rootdir, model)
    return _loaded[spec, rootdir]


def _load(spec: str, rootdir: Path, model: str) -> AgentFactory:
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
    try:
        agent = factory(probe, model)
    except Exception as exc:
        raise AgentFactoryError(f"--interllm-agent {spec}: calling it failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(agent, Agent):
        raise AgentFactoryError(
            f"--interllm-agent {spec}: returned {type(agent).__name__}, not an agents.Agent (the factory is "
            "called as factory(codex, model), codex being the MCP server to put in mcp_servers)"
        )
    return factory  # type: ignore[no-any-return]
