"""What every transport is: how one attempt's turn reaches codex (MCP, app-server, an Agents SDK orchestrator).

The attempt pipeline (`run/attempt.py`) does everything around a turn — the output file, the provider
endpoint, the codex process's lifecycle, the evidence read back, retries — once for all transports. A
transport only starts its codex process (if it keeps one) and runs one turn on it, filling the outcome with
what codex reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_interllm.faults import Fault
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome
from pytest_interllm.runtime import LoopRunner


class CodexProcess(Protocol):
    """A long-lived codex process a transport runs turns on: `codex mcp-server` or `codex app-server`."""

    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    def kill(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class TransportContext:
    """The part of the run a transport gets: its codex, where it runs, and the worker's event loop."""

    codex_path: str
    cwd: Path  # codex's working directory: the rootdir
    sandbox: str  # what every call asks for
    runner: LoopRunner
    workdir: Path  # this worker's temporary directory (codex homes, stderr)
    stderr_path: Path
    env: Callable[[Path | None], dict[str, str]]  # codex's whole environment, for a CODEX_HOME (None: the worker's)
    codex_home: Path  # the worker's CODEX_HOME
    user_codex_home: bool = False  # --interllm-codex-home: the user's config as it is
    orchestrator_model: str | None = None  # agents: the model the orchestrator must run
    upload_traces: bool = False  # agents: the SDK's own uploading trace processor too
    agent: str | None = None  # agents: --interllm-agent module:attr, for messages
    agent_factory: Any = None  # agents: the user's factory (codex, model) -> Agent
    stop_grace: float = 5.0


@dataclass(frozen=True)
class TurnRequest:
    """One attempt's turn: the prompt, the codex call's arguments (model, cwd, sandbox, approval policy, the
    provider `config`), its time limit, the scenario's provider URL and label, and its fault."""

    prompt: str
    arguments: dict[str, Any]
    limit: float
    url: str
    label: str
    fault: Fault | None = None
    expected_model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Transport:
    """A way to run a turn through codex. Subclasses: `McpTransport`, `AppServerTransport`, `AgentsTransport`."""

    name = "transport"
    stop_grace, stop_limit = 5.0, 15.0  # how long its codex process gets to end, and the whole stop
    config_source = "codex's session"  # where it reads the session's sandbox, approval policy and cwd

    def __init__(self, context: TransportContext) -> None:
        self.context = context

    def spawn(self) -> CodexProcess | None:
        """Start the long-lived codex process turns run on; None when each turn starts its own."""
        return None

    def turn(self, process: CodexProcess | None, request: TurnRequest, outcome: ScenarioOutcome) -> None:
        """Run one turn (blocking, within `request.limit`) and fill `outcome` with what codex reported."""
        raise NotImplementedError

    def attribute(self, outcome: ScenarioOutcome, records: list[AuditRecord]) -> None:
        """The requests the provider received for this turn: codex's (the agents transport splits off its
        orchestrator's)."""
        outcome.requests = records

    def retire_after(self, outcome: ScenarioOutcome) -> bool:
        """Whether no later turn may run on this turn's codex process (a stalled turn may still run in it)."""
        return outcome.timed_out or outcome.crashed

    def close(self) -> None:
        """Stop what the transport itself runs (the attempt pipeline stops its codex processes)."""
        return None
