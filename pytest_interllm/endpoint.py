"""How an executor reaches the model provider: one small interface, whatever stands behind it.

The built-in scripted model, the audit proxy in front of a real upstream and the proxy's cassettes all look
the same to an executor: a bearer token for codex, a base URL per scenario, and afterwards the requests the
provider received for that scenario. Executors never import a provider module; the plugin hands them one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pytest_interllm.outcome import AuditRecord


class ScenarioCall(Protocol):
    """One scenario's (attempt's) view of the provider."""

    url: str  # the base URL codex must use for this scenario (`…/v1`); its requests are audited under it

    def requests(self) -> list[AuditRecord]:
        """What the provider received for this scenario since `open`, in order."""
        ...

    def close(self) -> None:
        """The scenario is over (requests it still makes are no longer its own)."""
        ...


class Endpoint(Protocol):
    """The run's provider as one worker sees it."""

    token: str  # the run's bearer token: the only credential codex ever holds
    base_url: str  # for codex's own config: requests that belong to no scenario

    def start(self) -> None:
        """Start what must run in this worker (idempotent)."""
        ...

    def open(
        self,
        label: str,
        fault: str | None = None,
        fault_requests: int | None = None,
        on_crash: Callable[[], None] | None = None,
        fresh: bool = True,
    ) -> ScenarioCall:
        """A scenario starts: its URL, with its injected fault (the `crash` fault calls `on_crash`). `fresh=False`
        continues the scenario's exchange instead (the grader's requests follow codex's in its cassette)."""
        ...

    def stop(self) -> None:
        """Stop what `start` started."""
        ...
