"""The registry of executors (`--interllm-executor`), one entry each: the transport that runs a turn, the codex
interface it speaks, and what the offline provider plays in it. Settings, codex lookup, faults and the plugin all
read this registry; the transports themselves are imported only when chosen."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_interllm.transports.base import Transport


@dataclass(frozen=True)
class TransportSpec:
    """One executor of `--interllm-executor`."""

    name: str
    interface: str  # the codex subcommand it speaks: `mcp-server` (codex <= 0.153.4) or `app-server`
    path: str  # module:class of its transport, imported only when chosen (the Agents SDK is heavy)
    scripted_orchestrator: bool = False  # offline, the scripted model plays its orchestrator: it acts out every fault


TRANSPORTS = {
    spec.name: spec
    for spec in (
        TransportSpec("codex", "mcp-server", "pytest_interllm.transports.mcp:McpTransport"),
        TransportSpec(
            "agents", "mcp-server", "pytest_interllm.transports.agents:AgentsTransport", scripted_orchestrator=True
        ),
        TransportSpec("app-server", "app-server", "pytest_interllm.transports.appserver:AppServerTransport"),
    )
}
NAMES = tuple(TRANSPORTS)


def load(name: str) -> type[Transport]:
    """The transport class of executor `name`."""
    module, _, attr = TRANSPORTS[name].path.partition(":")
    cls: type[Transport] = getattr(importlib.import_module(module), attr)
    return cls


def interface_of(name: str) -> str:
    """The codex interface executor `name` speaks."""
    return TRANSPORTS[name].interface
