"""The `agents` executor: the original system's OpenAI Agents SDK orchestration, with full local tracing.

An orchestrator `Agent` with an explicit model calls codex through `MCPServerStdio(codex mcp-server)`. The
SDK's own defaults never decide anything: the model is explicit, tracing goes to a local processor (no
upload), and codex's session model comes from codex's own session record, not from the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_interllm.codex.events import CallResult
from pytest_interllm.executors.codex import CodexExecutor, config_toml
from pytest_interllm.faults import CONFIG_DEFAULT_MODEL
from pytest_interllm.outcome import CodexEvent, ScenarioOutcome
from pytest_interllm.prompt import PromptTemplate


class SpanCapture:
    """A `TracingProcessor` that keeps every span in memory, by trace: one trace per scenario, so scenarios in
    flight at once keep theirs apart."""

    def __init__(self) -> None:
        self.spans: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def pop(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of one trace, forgotten here."""
        with self._lock:
            return self.spans.pop(trace_id, [])

    def on_trace_start(self, trace: Any) -> None:
        return None

    def on_trace_end(self, trace: Any) -> None:
        return None

    def on_span_start(self, span: Any) -> None:
        return None

    def on_span_end(self, span: Any) -> None:
        exported = json.loads(json.dumps(span.export() or {}, default=str))
        with self._lock:
            self.spans.setdefault(str(exported.get("trace_id")), []).append(exported)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


def rollout_events(codex_home: Path, thread_id: str) -> list[CodexEvent]:
    """codex's own session record (`sessions/**/rollout-*-<thread>.jsonl`) as codex events."""
    events: list[CodexEvent] = []
    for path in sorted(codex_home.glob(f"sessions/**/rollout-*{thread_id}.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
            kind = entry.get("type")
            when = _timestamp(entry.get("timestamp"))
            if kind == "turn_context":
                msg = {"type": "session_configured", "model": payload.get("model"), "session_id": thread_id}
                events.append(CodexEvent(time=when, type="session_configured", msg=msg))
            elif kind == "response_item":
                events.append(CodexEvent(time=when, type="raw_response_item", msg={"item": payload}))
            elif kind == "event_msg":
                events.append(CodexEvent(time=when, type=str(payload.get("type", "?")), msg=payload))
    return events


def _timestamp(value: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def _item(item: Any) -> dict[str, Any]:
    raw: Any = getattr(item, "raw_item", None)
    dumped = raw.model_dump() if raw is not None and hasattr(raw, "model_dump") else raw
    out = {"type": getattr(item, "type", type(item).__name__), "raw": dumped}
    if hasattr(item, "output"):
        out["output"] = item.output
    loaded: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return loaded


def _output_text(output: Any) -> str:
    """The text of an MCP tool output as the SDK hands it over (a JSON list of content parts, or text)."""
    parsed = output
    if isinstance(output, str):
        try:
            parsed = json.loads(output)
        except ValueError:
            return output
    if isinstance(parsed, dict):
        parsed = [parsed]
    if isinstance(parsed, list):
        return "\n".join(str(p.get("text", "")) for p in parsed if isinstance(p, dict))
    return str(output)


class AgentsExecutor(CodexExecutor):
    """Runs each scenario as `Runner.run(orchestrator, prompt)` with codex behind `MCPServerStdio`."""

    def __init__(self, *args: Any, agent_factory: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capture = SpanCapture()
        self.agent_factory = agent_factory  # --interllm-agent: the user's own orchestrator, (codex, model) -> Agent
        self._given: dict[str, tuple[Any, Any]] = {}  # label → (agent, its codex server), for `interllm_agents`
        self._tracing = False

    def codex_server(self, codex_home: Path, limit: float) -> Any:
        """The codex MCP server an orchestrator gets: our codex, an isolated CODEX_HOME, cwd = the rootdir."""
        from agents.mcp import MCPServerStdio

        return MCPServerStdio(
            name="codex",
            params={
                "command": self.codex.path,
                "args": ["mcp-server"],
                "env": self.codex_env(codex_home),
                "cwd": str(self.settings.rootdir),
            },
            client_session_timeout_seconds=limit,
            cache_tools_list=True,
        )

    def give(self, label: str, agent: Any, codex: Any) -> None:
        """Runs under `label` use this agent (whose `mcp_servers` hold `codex`), not the factory's; None ends it."""
        if agent is None:
            self._given.pop(label, None)
        else:
            self._given[label] = (agent, codex)

    def _start_server(self) -> None:
        """No long-lived server: the SDK owns one `MCPServerStdio` per scenario. Tracing is set up once."""
        from agents import set_trace_processors, set_tracing_disabled

        if self._tracing:
            return
        self._tracing = True

        set_tracing_disabled(False)
        processors: list[Any] = [self.capture]  # replaces the uploading processor: nothing leaves the machine
        if self.settings.upload_traces:
            from agents.tracing.processors import default_processor

            processors.append(default_processor())  # asked for explicitly, with a real key (checked at start)
        set_trace_processors(processors)

    def _instructions(self, model: str) -> str:
        text = resources.files("pytest_interllm.templates").joinpath("orchestrator.txt").read_text("utf-8")
        template = PromptTemplate.parse(text, "<packaged orchestrator.txt>", ("model", "cwd", "sandbox"))
        return template.render(model=model, cwd=self.settings.rootdir, sandbox=self.settings.sandbox)

    def _attempt(
        self,
        prompt: str,
        output_file: Path | str,
        model: str | None,
        expected_model: str | None,
        timeout: float | None,
        fault: str | None,
        fault_requests: int | None,
        label: str,
    ) -> ScenarioOutcome:
        self.start()
        target, limit, expected, moved = self._prepare(output_file, model, expected_model, timeout)
        orchestrator_model = self.settings.orchestrator_model or expected
        call = self.endpoint.open(label, fault, fault_requests)
        base_url = call.url  # the orchestrator's requests and codex's: both audited under this scenario
        given = self._given.get(label)
        owned = False  # a CODEX_HOME made for this scenario, removed after it
        if given is not None:  # a hand-written test's agent: its codex server's CODEX_HOME is fixed already
            codex_home = Path(given[1].params.env["CODEX_HOME"])
        elif self.settings.codex_home is None or fault == "omit-model":
            # codex starts per scenario here, with its own CODEX_HOME: scenarios in flight at once must not share
            # the config.toml that names their provider URL.
            codex_home, owned = Path(tempfile.mkdtemp(prefix="codex-home-", dir=self.workdir)), True
        else:
            codex_home = self.codex_home  # the user's --interllm-codex-home, their config as it is
        if fault == "omit-model":  # the original machine: codex's config defaults to gpt-4o
            (codex_home / "config.toml").write_text(f'model = "{CONFIG_DEFAULT_MODEL}"\n' + config_toml(base_url))
        elif codex_home != self.codex_home:
            (codex_home / "config.toml").write_text(config_toml(base_url))
        outcome = ScenarioOutcome(
            prompt=prompt,
            expected_model=expected,
            output_path=self.settings.relative(target),
            fault=fault,
            expected_config=self.expected_config(),
            output_notes=[moved] if moved else [],
            expected_orchestrator_model=orchestrator_model,
        )
        trace_id = f"trace_{uuid.uuid4().hex}"
        start = time.monotonic()
        result = CallResult()
        run_info: dict[str, Any] = {"trace_id": trace_id, "given": given}
        try:
            self.runner.run(
                self._run_agent(
                    prompt, model or expected, orchestrator_model, codex_home, limit, result, run_info, base_url
                ),
                limit + 60,
            )
        finally:
            call.close()
        records = call.requests()
        outcome.duration = time.monotonic() - start
        codex_requests = [r for r in records if r.user_agent.startswith("codex")]
        outcome.orchestrator_requests = [r for r in records if not r.user_agent.startswith("codex")]
        outcome.orchestrator_models = [r.model for r in outcome.orchestrator_requests]
        thread = next((r.thread_id for r in codex_requests if r.thread_id), None)
        if thread:
            result.events = rollout_events(codex_home, thread)
            result.structured = result.structured or {"threadId": thread}
        outcome.requests = codex_requests
        if not thread and result.text and not result.error:
            # codex answered the tool call without ever starting a session: an MCP error result
            result.is_error = True
        outcome.arguments = run_info.get("codex_arguments", {})
        outcome.spans = self.capture.pop(trace_id)
        outcome.agent_items = run_info.get("new_items", [])
        outcome.agent_usage = run_info.get("usage", {})
        outcome.orchestrator = run_info.get("agent", {})
        self._fill(outcome, result, self.stderr_path.stat().st_size if self.stderr_path.exists() else 0, target)
        outcome.final_output = str(run_info.get("final_output") or result.text or outcome.final_output)
        outcome.agent_replied = bool(outcome.final_output.strip())
        if owned:
            shutil.rmtree(codex_home, ignore_errors=True)
        return outcome

    async def _run_agent(
        self,
        prompt: str,
        model: str,
        orchestrator_model: str,
        codex_home: Path,
        limit: float,
        result: CallResult,
        info: dict[str, Any],
        base_url: str,
    ) -> None:
        from agents import Agent, OpenAIProvider, OpenAIResponsesModel, RunConfig, Runner, trace
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=base_url, api_key=self.token, max_retries=0)
        given = info.get("given")
        codex = given[1] if given is not None else self.codex_server(codex_home, limit)
        if given is not None:
            agent = given[0]
        elif self.agent_factory is not None:
            agent = self.agent_factory(codex, orchestrator_model)  # the user's own orchestrator
        else:
            agent = Agent(
                name="interllm-orchestrator",
                instructions=self._instructions(model),
                model=OpenAIResponsesModel(orchestrator_model, client),
                mcp_servers=[codex],
            )
        declared = agent.model if isinstance(agent.model, str) or agent.model is None else type(agent.model).__name__
        instructions = agent.instructions if isinstance(agent.instructions, str) else "(set by a function)"
        info["agent"] = {"name": agent.name, "model": declared, "instructions": instructions}
        # Every model request of the run goes to the scenario's provider URL, whatever the agent names as its
        # model (a string, or none: the SDK's default): nothing reaches a provider unaudited.
        run_config = RunConfig(model_provider=OpenAIProvider(openai_client=client, use_responses=True))
        try:
            async with contextlib.AsyncExitStack() as servers:
                for server in agent.mcp_servers:
                    await servers.enter_async_context(server)
                with trace("interllm scenario", trace_id=info["trace_id"]):  # this scenario's spans, apart
                    run = await asyncio.wait_for(Runner.run(agent, prompt, max_turns=4, run_config=run_config), limit)
        except TimeoutError:
            result.timed_out = True
            result.error = f"no answer from the orchestrator and codex within {limit:g}s"
            return
        except Exception as exc:  # the SDK's error is the evidence; classification happens later
            result.error = f"{type(exc).__name__}: {exc}"
            return
        finally:
            await client.close()
        info["final_output"] = run.final_output
        info["new_items"] = [_item(i) for i in run.new_items]
        info["usage"] = {
            "requests": len(run.raw_responses),
            "input_tokens": sum(getattr(r.usage, "input_tokens", 0) for r in run.raw_responses),
            "output_tokens": sum(getattr(r.usage, "output_tokens", 0) for r in run.raw_responses),
        }
        for item in info["new_items"]:
            raw = item.get("raw") or {}
            if item["type"] == "tool_call_item" and raw.get("name") == "codex":
                try:
                    info["codex_arguments"] = {
                        k: v for k, v in json.loads(raw.get("arguments") or "{}").items() if k != "prompt"
                    }
                except ValueError:
                    info["codex_arguments"] = {"unparsed": raw.get("arguments")}
            if item["type"] == "tool_call_output_item":
                result.text = _output_text(item.get("output", ""))
