"""The two `Endpoint`s an executor may be given: the worker's own scripted model, or the run's audit proxy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_interllm.outcome import AuditRecord
from pytest_interllm.providers.scripted import CallContext, ScriptedModel
from pytest_interllm.runtime import LoopRunner

if TYPE_CHECKING:  # the proxy's client is given by the run that has one; httpx is not imported for the others
    from pytest_interllm.providers.service import ProxyClient


@dataclass
class _ScriptedCall:
    url: str
    context: CallContext
    endpoint: ScriptedEndpoint
    key: str

    def requests(self) -> list[AuditRecord]:
        return list(self.context.records)

    def close(self) -> None:
        self.endpoint.close_call(self)


def _scenario_of(label: str) -> str:
    """A scenario's label without its repeat number (`list/scenario_003~2` → `list/scenario_003`)."""
    return label.split("~", 1)[0]


class ScriptedEndpoint:
    """The built-in scripted model on the worker's loop; each scenario gets its own URL and fault."""

    def __init__(self, runner: LoopRunner) -> None:
        self.runner = runner
        self.model: ScriptedModel | None = None
        self.token = ""
        self.base_url = ""
        # Requests served per scenario across its attempts, so `fault_requests: N` spans reruns.
        self._served: dict[str, int] = {}

    def start(self) -> None:
        if self.model is None:
            latency = float(os.environ.get("INTERLLM_SCRIPTED_LATENCY") or 0)
            model = ScriptedModel(token=os.environ.get("INTERLLM_PROVIDER_TOKEN") or None, latency=latency)
            self.runner.run(model.start(), 30)
            self.model = model
            self.token, self.base_url = model.token, model.url

    def open(
        self,
        label: str,
        fault: str | None = None,
        fault_requests: int | None = None,
        on_crash: Callable[[], None] | None = None,
        fresh: bool = True,
    ) -> _ScriptedCall:
        self.start()
        assert self.model is not None
        context = CallContext(
            label=label,
            fault=fault,
            fault_requests=fault_requests,
            on_crash=on_crash,
            requests=self._served.get(_scenario_of(label), 0),
        )
        key = self.model.open_call(context)
        return _ScriptedCall(url=self.model.call_url(key), context=context, endpoint=self, key=key)

    def close_call(self, call: _ScriptedCall) -> None:
        if self.model is not None:
            self.model.close_call(call.key)
        self._served[_scenario_of(call.context.label)] = call.context.requests

    def stop(self) -> None:
        if self.model is not None:
            self.runner.run(self.model.stop(), 15)
            self.model = None


@dataclass
class _ProxyCall:
    url: str
    label: str
    client: ProxyClient
    since: float = field(default_factory=time.time)

    def requests(self) -> list[AuditRecord]:
        return self.client.records(self.label, self.since)

    def close(self) -> None:
        return None


class ProxyEndpoint:
    """The run's audit proxy (shared by all workers): cassettes and real upstreams. Faults are the scripted
    model's; a run that cannot inject them refuses them at start."""

    def __init__(self, client: ProxyClient) -> None:
        self.client = client
        self.token = client.token
        self.base_url = client.url("tests/unattributed")

    def start(self) -> None:
        return None

    def open(
        self,
        label: str,
        fault: str | None = None,
        fault_requests: int | None = None,
        on_crash: Callable[[], None] | None = None,
        fresh: bool = True,
    ) -> _ProxyCall:
        since = time.time()
        url = self.client.begin(label) if fresh else self.client.url(label)
        return _ProxyCall(url=url, label=label, client=self.client, since=since)

    def stop(self) -> None:
        return None


def endpoint_for(runner: LoopRunner, proxy: ProxyClient | None) -> ScriptedEndpoint | ProxyEndpoint:
    """The endpoint of a worker: the run's proxy if there is one, else its own scripted model."""
    return ProxyEndpoint(proxy) if proxy is not None else ScriptedEndpoint(runner)
