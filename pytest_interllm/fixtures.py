"""Fixtures for hand-written tests: `interllm_codex` (the real codex behind MCP), `interllm_agents` (your own Agents
SDK orchestrator) and `interllm_executor` (the process's executor, or one of their own without `--interllm`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_interllm.codex.locate import CodexMissing, interface_of, locate
from pytest_interllm.collect import COST_KEY, SETTINGS_KEY
from pytest_interllm.cost import FREE_SCRIPTED, Budget, Prices
from pytest_interllm.expectations import Expectations
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.providers.credentials import CredentialError, for_run, login_secrets, login_shown
from pytest_interllm.redact import Redactor
from pytest_interllm.settings import Settings
from pytest_interllm.wiring import default_model, free_of, make_executor, prices_of, refresher, serve
from pytest_interllm.worker import NAME as WORKER_NAME
from pytest_interllm.worker import Worker

if TYPE_CHECKING:
    from pytest_interllm.run.attempt import Executor


class BoundCodex:
    """The executor as one test sees it: the test's marker gives the default model and timeout."""

    def __init__(
        self, executor: Executor, model: str | None, timeout: float | None, label: str, prices: Prices
    ) -> None:
        self.executor = executor
        self.model = model
        self.timeout = timeout
        self.label = label
        self.prices = prices

    def run(self, prompt: str, *, output_file: Path | str, **kwargs: Any) -> ScenarioOutcome:
        """`Executor.run` with the marker's model and timeout unless given here."""
        if "model" not in kwargs and self.model is not None:
            kwargs["model"] = self.model
        if kwargs.get("timeout") is None and self.timeout is not None:
            kwargs["timeout"] = float(self.timeout)
        kwargs.setdefault("label", self.label)
        outcome = self.executor.run(prompt, output_file=output_file, **kwargs)
        outcome.cost_usd = self.prices.of_requests(outcome.every_request)
        return outcome

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None:
        """Raise `ScenarioFailure` unless the model, the output file and the expectations hold."""
        self.executor.check(outcome, expectations)


class AgentsHarness:
    """`interllm_agents`: test your own Agents SDK orchestrator with the plugin's codex, provider and evidence."""

    def __init__(self, executor: Executor, label: str, prices: Prices) -> None:
        from pytest_interllm.transports.agents import AgentsTransport

        assert isinstance(executor.transport, AgentsTransport)
        self.executor = executor
        self.transport = executor.transport
        self.label = label
        self.prices = prices
        executor.start()  # the provider's token goes into codex's environment below
        home = Path(tempfile.mkdtemp(prefix="codex-home-", dir=executor.workdir))
        self.codex = self.transport.codex_server(home, executor.settings.timeout)  # for your Agent's mcp_servers

    def run(
        self, agent: Any, prompt: str, *, output_file: Path | str, model: str | None = None, **kwargs: Any
    ) -> ScenarioOutcome:
        """Run `agent` on `prompt` (it must call `self.codex`); the outcome carries the same evidence as a
        scenario's: codex's session and requests, the orchestrator's requests, spans, final_output."""
        self.transport.give(self.label, agent, self.codex)
        try:
            kwargs.setdefault("label", self.label)
            outcome = self.executor.run(prompt, output_file=output_file, model=model, **kwargs)
        finally:
            self.transport.give(self.label, None, None)
        outcome.cost_usd = self.prices.of_requests(outcome.every_request)
        return outcome

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None:
        """Raise `ScenarioFailure` unless the models (codex's and the orchestrator's), the output file and the
        expectations hold."""
        self.executor.check(outcome, expectations)


@contextlib.contextmanager
def _standalone(config: pytest.Config, settings: Settings) -> Iterator[Executor]:
    """An executor of its own for hand-written tests, with the configured provider set up here (the audit proxy
    with the user's credential for a real provider), so they run for real too."""
    try:
        codex = locate(settings.codex, interface_of(settings.executor))
        settings = default_model(settings, codex)
        credential = for_run(settings, os.environ, refresh=refresher(codex))
    except (CodexMissing, CredentialError) as exc:
        pytest.fail(f"pytest-interllm: {exc}", pytrace=False)
    label = getattr(config, "workerinput", {}).get("workerid", "main")
    service = proxy = None
    if settings.provider != "offline":
        from pytest_interllm.providers.service import plan_for

        plan = plan_for(settings, credential)
        assert plan is not None
        redactor = Redactor.from_environ()
        redactor.add(login_secrets(credential), login_shown(credential))
        service, proxy = serve(plan, redactor, codex)
        config.stash[COST_KEY] = (replace(prices_of(settings), free=free_of(plan, None)), Budget(None))
    executor = make_executor(settings, codex, label, proxy)
    try:
        yield executor
    finally:
        executor.close()
        if proxy is not None and service is not None:
            proxy.close()
            service.close()


def _worker(config: pytest.Config) -> Worker | None:
    worker: Worker | None = config.pluginmanager.get_plugin(WORKER_NAME)
    return worker


@pytest.fixture(scope="session")
def interllm_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """The worker's codex executor (one reused codex server), shared by every test of the session."""
    worker = _worker(request.config)
    if worker is not None:
        yield worker.get_executor()
        return
    with _standalone(request.config, request.config.stash[SETTINGS_KEY]) as executor:
        yield executor


@pytest.fixture(scope="session")
def _interllm_agents_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """An agents executor for `interllm_agents`: the session's, else one of its own (whatever --interllm-executor)."""
    from pytest_interllm.transports.agents import AgentsTransport

    worker = _worker(request.config)
    if worker is not None and worker.executor is not None and isinstance(worker.executor.transport, AgentsTransport):
        yield worker.executor
        return
    settings = replace(request.config.stash[SETTINGS_KEY], executor="agents", agent=None)
    with _standalone(request.config, settings) as executor:
        assert isinstance(executor.transport, AgentsTransport)
        yield executor


@pytest.fixture
def interllm_agents(request: pytest.FixtureRequest, _interllm_agents_executor: Executor) -> AgentsHarness:
    """Your own Agents SDK orchestrator against the real codex: `codex`, `run(agent, prompt, output_file=...)`,
    `check(outcome)`."""
    cost = request.config.stash.get(COST_KEY, None)
    prices = cost[0] if cost is not None else replace(prices_of(request.config.stash[SETTINGS_KEY]), free=FREE_SCRIPTED)
    return AgentsHarness(_interllm_agents_executor, request.node.name, prices)


@pytest.fixture
def interllm_codex(request: pytest.FixtureRequest, interllm_executor: Executor) -> BoundCodex:
    """The real codex behind MCP: `run(prompt, output_file=...)`, then `check(outcome)`.

    `@pytest.mark.interllm(model=..., timeout=...)` on the test sets the defaults of `run`.
    """
    marker = request.node.get_closest_marker("interllm")
    kwargs = marker.kwargs if marker else {}
    cost = request.config.stash.get(COST_KEY, None)
    prices = (
        cost[0]
        if cost is not None
        else replace(prices_of(request.config.stash[SETTINGS_KEY]), free=free_of(None, None))
    )
    return BoundCodex(interllm_executor, kwargs.get("model"), kwargs.get("timeout"), request.node.name, prices)
