"""The run's shared provider: the audit proxy (and, for offline recording, the scripted model behind it).

`preflight_problem` (providers/preflight.py) is re-exported here for the controller.

The controller starts it once; xdist workers reach it through `workerinput` with a `ProxyClient`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx

from pytest_interllm.codex.login import refresh_login
from pytest_interllm.outcome import AuditRecord, ToolCall
from pytest_interllm.providers.credentials import OPENAI_URL, Credential
from pytest_interllm.providers.part import ProviderSettings
from pytest_interllm.providers.preflight import preflight_problem
from pytest_interllm.providers.proxy import AuditProxy, Cassettes
from pytest_interllm.providers.scripted import ScriptedModel
from pytest_interllm.redact import Redactor
from pytest_interllm.runtime import LoopRunner


@dataclass(frozen=True)
class ProviderPlan:
    """Where requests go for a provider: upstream URL and credential, cassettes, record mode."""

    provider: str
    upstream: str  # "scripted", "none" (replay) or the upstream URL, for the header
    upstream_url: str | None
    credential: Credential | None
    record_mode: str | None
    cassette_dir: Path | None
    max_concurrency: int | None

    @property
    def real(self) -> bool:
        """Whether requests may reach a real model (and cost money): not the scripted model, not replay only."""
        return self.upstream_url is not None and self.upstream != "scripted" and self.record_mode != "none"


class ProviderService:
    """Runs the proxy (and the scripted upstream when recording offline) on its own event loop thread."""

    def __init__(
        self, plan: ProviderPlan, redactor: Redactor, latency: float = 0.0, codex_path: str | None = None
    ) -> None:
        self.plan = plan
        self.runner = LoopRunner()
        self.scripted: ScriptedModel | None = None
        upstream_url, upstream_key = plan.upstream_url, None
        if plan.upstream == "scripted":
            self.scripted = ScriptedModel(latency=latency)
            self.runner.run(self.scripted.start(), 30)
            upstream_url, upstream_key = self.scripted.url, self.scripted.token
        cassettes = Cassettes(plan.cassette_dir, redactor) if plan.cassette_dir else None
        self.proxy = AuditProxy(
            upstream_url=upstream_url,
            upstream_key=upstream_key,
            cassettes=cassettes,
            record_mode=plan.record_mode,
            max_concurrency=plan.max_concurrency,
            redactor=redactor,
            token=os.environ.get("INTERLLM_PROVIDER_TOKEN") or None,  # fixed by hand to debug with curl
            credential=plan.credential,
            refresh=_refresher(codex_path, plan.credential),
        )
        self.runner.run(self.proxy.start(), 30)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def stats(self) -> dict[str, Any]:
        """Requests seen, sent upstream and replayed, and the peak upstream concurrency."""
        audit = list(self.proxy.audit)
        return {
            "requests": len(audit),
            "upstream": self.proxy.upstream_requests,
            "replayed": sum(1 for r in audit if r.replayed),
            "peak_concurrency": self.proxy.peak_concurrency(),
        }

    def close(self) -> None:
        self.runner.run(self.proxy.stop(), 30)
        if self.scripted is not None:
            self.runner.run(self.scripted.stop(), 30)
        self.runner.close()


def _refresher(codex_path: str | None, credential: Credential | None) -> Callable[[], Awaitable[str | None]] | None:
    """How the proxy has a ChatGPT login refreshed before it expires: by the user's codex, off the event loop."""
    if codex_path is None or credential is None or credential.auth_file is None:
        return None
    auth_file = credential.auth_file

    async def refresh() -> str | None:
        return await asyncio.to_thread(refresh_login, codex_path, auth_file)

    return refresh


class ProxyClient:
    """A worker's handle on the shared proxy: per-scenario URLs and the audit of each scenario."""

    def __init__(self, root: str, token: str) -> None:
        self.root = root.rstrip("/")
        self.token = token
        self._http = httpx.Client(timeout=30.0, headers={"authorization": f"Bearer {token}"})

    @staticmethod
    def split(label: str) -> tuple[str, str]:
        stem, _, name = label.rpartition("/")
        return quote(stem or "tests", safe=""), quote(name, safe="")

    def url(self, label: str) -> str:
        stem, name = self.split(label)
        return f"{self.root}/s/{stem}/{name}/v1"

    def begin(self, label: str) -> str:
        """Tell the proxy a scenario (attempt) starts; returns the base URL codex must use for it."""
        stem, name = self.split(label)
        self._http.post(f"{self.root}/_interllm/begin/{stem}/{name}").raise_for_status()
        return self.url(label)

    def records(self, label: str, since: float) -> list[AuditRecord]:
        stem, name = self.split(label)
        reply = self._http.get(f"{self.root}/_interllm/audit/{stem}/{name}", params={"since": since})
        reply.raise_for_status()
        names = {f.name for f in fields(AuditRecord)}
        rows = [{k: v for k, v in row.items() if k in names} for row in reply.json()["records"]]
        return [
            AuditRecord(**{**row, "tool_calls": tuple(ToolCall(**call) for call in row.get("tool_calls") or ())})
            for row in rows
        ]

    def preflight(self, model: str, shape: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request with `model` through the proxy to the real upstream, shaped as codex's own request `shape`
        (see `AuditProxy._preflight`)."""
        reply = self._http.post(f"{self.root}/_interllm/preflight", json={"model": model, "shape": shape}, timeout=300)
        reply.raise_for_status()
        answer: dict[str, Any] = reply.json()
        return answer

    def close(self) -> None:
        self._http.close()


def plan_for(settings: ProviderSettings, credential: Credential | None) -> ProviderPlan | None:
    """The proxy plan of the configured provider, or None for the in-worker scripted model (`offline`).

    `openai` needs a credential or a base URL; `record` records from a real upstream when it has either, else
    from the built-in scripted model; `replay` sends nothing upstream.
    """
    limit = settings.max_concurrency
    if settings.provider == "offline":
        return None
    if settings.provider == "replay":
        return ProviderPlan("replay", "none", None, None, "none", settings.cassette_dir, limit)
    base = settings.base_url.rstrip("/") if settings.base_url else None
    mode = settings.record_mode if settings.provider == "record" else None
    cassettes = settings.cassette_dir if settings.provider == "record" else None
    if base or credential is not None or settings.provider == "openai":
        url = base or (credential.default_upstream if credential is not None else OPENAI_URL)
        return ProviderPlan(settings.provider, url, url, credential, mode, cassettes, limit)
    return ProviderPlan("record", "scripted", None, None, mode, cassettes, limit)


__all__ = ["ProviderPlan", "ProviderService", "ProxyClient", "plan_for", "preflight_problem"]
