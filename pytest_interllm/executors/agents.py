"""The `agents` executor: the original system's OpenAI Agents SDK orchestration, with full local tracing.

An orchestrator `Agent` with an explicit model calls codex through `MCPServerStdio(codex mcp-server)`. The
SDK's own defaults never decide anything: the model is explicit, tracing goes to a local processor (no
upload), and codex's session model comes from codex's own session record, not from the SDK.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_interllm import faults
from pytest_interllm.agent_factory import HOOKS, AgentFactoryError, blocked_at
from pytest_interllm.codex import process
from pytest_interllm.codex.events import CallResult
from pytest_interllm.executors.codex import CodexExecutor, config_toml
from pytest_interllm.outcome import CodexEvent, ScenarioOutcome
from pytest_interllm.prompt import PromptTemplate


class SpanCapture:
    """A `TracingProcessor` that keeps every span in memory, by trace: one trace per scenario, so scenarios in
    flight at once keep theirs apart."""

    def __init__(self) -> None:
        self.spans: dict[str, list[dict[str, Any]]] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    def pop(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of one trace, forgotten here."""
        with self._lock:
            return self.spans.pop(trace_id, [])

    def drop(self, trace_id: str) -> None:
        """Forget a trace and keep none of its later spans (a run left behind may still end one day)."""
        with self._lock:
            self._dropped.add(trace_id)
            self.spans.pop(trace_id, None)

    def on_trace_start(self, trace: Any) -> None:
        return None

    def on_trace_end(self, trace: Any) -> None:
        return None

    def on_span_start(self, span: Any) -> None:
        return None

    def on_span_end(self, span: Any) -> None:
        exported = json.loads(json.dumps(span.export() or {}, default=str))
        with self._lock:
            if str(exported.get("trace_id")) not in self._dropped:
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
                # What codex ran the turn under, as the codex executor reads it from session_configured.
                keys = ("cwd", "approval_policy", "sandbox_policy", "permission_profile")
                msg.update({key: payload[key] for key in keys if key in payload})
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


TAG_ENV = "INTERLLM_CODEX_TAG"  # marks the codex of one orchestrator run: found and killed by it when left behind
GRACE = 2.0  # seconds past a scenario's limit before its run is looked at: the run's own timeout fires first


class OrchestratorRun:
    """One scenario's orchestrator on a thread and event loop of its own: a factory, hook or tool of the user's
    that blocks can be left behind when the scenario's time is up, without holding up the other scenarios."""

    def __init__(self, build: Callable[[], Any], body: Callable[[Any], Coroutine[Any, Any, None]], tag: str) -> None:
        self.build = build  # the Agent: the user's factory, or the plugin's own
        self.body = body  # its run on this thread's loop
        self.tag = tag
        self.phase = "factory"
        self.error: BaseException | None = None  # what the factory (or the run) raised past its own handling
        self.stopped = False  # the executor closed (Ctrl-C, -x, SIGTERM): the waiter gives up
        self.wake = threading.Event()  # the run ended, or was stopped
        self._left = False  # abandoned or stopped: start nothing more
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        # A daemon thread: one that never comes back must not keep pytest from exiting.
        self.thread = threading.Thread(target=self._main, name="interllm-orchestrator", daemon=True)

    def _main(self) -> None:
        try:
            agent = self.build()
            loop = asyncio.new_event_loop()
            try:
                with self._lock:
                    if self._left:
                        return
                    self.phase = "run"
                    self._loop, self._task = loop, loop.create_task(self.body(agent))
                loop.run_until_complete(self._task)
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()
        except BaseException as exc:  # sys.exit() in a factory or hook, a cancellation: never out of this thread
            self.error = exc
        finally:
            self.wake.set()

    def leave(self, stopped: bool = False) -> None:
        """Start nothing more and cancel the run (which happens only once its loop is free again)."""
        with self._lock:
            self._left = True
            self.stopped = self.stopped or stopped
            if self._loop is not None and self._task is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed in between
                    self._loop.call_soon_threadsafe(self._task.cancel)
        if stopped:
            self.wake.set()

    def responsive(self, within: float = 1.0) -> bool:
        """Whether the run's event loop still turns (it is not held by blocking code)."""
        loop, answered = self._loop, threading.Event()
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(answered.set)
        except RuntimeError:
            return False
        return answered.wait(within)


class AgentsExecutor(CodexExecutor):
    """Runs each scenario as `Runner.run(orchestrator, prompt)` with codex behind `MCPServerStdio`."""

    def __init__(self, *args: Any, agent_factory: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capture = SpanCapture()
        self.agent_factory = agent_factory  # --interllm-agent: the user's own orchestrator, (codex, model) -> Agent
        self._given: dict[str, tuple[Any, Any]] = {}  # label → (agent, its codex server), for `interllm_agents`
        self._tracing = False
        self._runs: set[OrchestratorRun] = set()  # in flight now
        self._tags: set[str] = set()  # of every run: codex processes left behind are found by them at close
        self._runs_lock = threading.Lock()

    def codex_server(self, codex_home: Path, limit: float) -> Any:
        """The codex MCP server an orchestrator gets: our codex, an isolated CODEX_HOME, cwd = the rootdir."""
        from agents.mcp import MCPServerStdio

        return MCPServerStdio(
            name="codex",
            params={
                "command": self.codex.path,
                "args": ["mcp-server"],
                "env": {**self.codex_env(codex_home), TAG_ENV: uuid.uuid4().hex},
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
        from openai import AsyncOpenAI

        self.start()
        target, limit, expected, moved = self._prepare(output_file, model, expected_model, timeout)
        orchestrator_model = self.settings.orchestrator_model or expected
        call = self.endpoint.open(label, fault, fault_requests)
        base_url = call.url  # the orchestrator's requests and codex's: both audited under this scenario
        given = self._given.get(label)
        injected = faults.get(fault)
        owned = False  # a CODEX_HOME made for this scenario, removed after it
        if given is not None:  # a hand-written test's agent: its codex server's CODEX_HOME is fixed already
            codex_home = Path(given[1].params.env["CODEX_HOME"])
        elif self.settings.codex_home is None or (injected is not None and injected.config_model):
            # codex starts per scenario here, with its own CODEX_HOME: scenarios in flight at once must not share
            # the config.toml that names their provider URL.
            codex_home, owned = Path(tempfile.mkdtemp(prefix="codex-home-", dir=self.workdir)), True
        else:
            codex_home = self.codex_home  # the user's --interllm-codex-home, their config as it is
        if injected is not None and injected.config_model:  # the original machine: codex's config names a model
            (codex_home / "config.toml").write_text(f'model = "{injected.config_model}"\n' + config_toml(base_url))
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
        run_info: dict[str, Any] = {"trace_id": trace_id}
        codex = given[1] if given is not None else self.codex_server(codex_home, limit)
        client = AsyncOpenAI(base_url=base_url, api_key=self.token, max_retries=0)  # the scenario's provider
        run = OrchestratorRun(
            lambda: self._agent(given, codex, model or expected, orchestrator_model, client, run_info),
            lambda agent: self._run_agent(agent, client, prompt, limit, start + limit, result, run_info),
            str(codex.params.env.get(TAG_ENV, "")),
        )
        try:
            blocked = self._wait(run, limit)
        finally:
            call.close()
        if blocked is not None:  # left behind: what its thread may still write is no longer looked at
            self.capture.drop(trace_id)
            result = CallResult(timed_out=True, error=blocked)
            run_info = {"agent": run_info.get("agent", {})}
        elif run.phase == "factory" and run.error is not None:
            error = run.error
            if given is not None or self.agent_factory is None:
                raise error
            raise AgentFactoryError(
                f"--interllm-agent {self.settings.agent}: calling it failed: {type(error).__name__}: {error}"
            ) from None
        elif run.error is not None:  # sys.exit() or a KeyboardInterrupt raised by the user's code during the run
            result.error = f"{type(run.error).__name__}: {run.error}"
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
        outcome.session_config_source = "codex's session record, turn_context"
        outcome.final_output = str(run_info.get("final_output") or result.text or outcome.final_output)
        outcome.agent_replied = bool(outcome.final_output.strip())
        if owned:
            shutil.rmtree(codex_home, ignore_errors=True)
        return outcome

    def _agent(
        self, given: Any, codex: Any, model: str, orchestrator_model: str, client: Any, info: dict[str, Any]
    ) -> Any:
        """The orchestrator of one scenario: a hand-written test's, the user's factory's, or the plugin's own."""
        from agents import Agent, OpenAIResponsesModel

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
        return agent

    def _wait(self, run: OrchestratorRun, limit: float) -> str | None:
        """Run `run` and wait for it: None once it ended, else why it was left behind (its codex killed)."""
        with self._runs_lock:
            self._runs.add(run)
            self._tags.add(run.tag)
        try:
            run.thread.start()
            ended = run.wake.wait(limit + GRACE)
            where = blocked_at(run.thread, self.settings.rootdir) if not ended else None
            if not ended and where is None and run.phase == "run" and run.responsive():
                # Its own timeout fired and it is closing codex: it gets the time a stop gets.
                ended = run.wake.wait(self.stop_limit)
                where = blocked_at(run.thread, self.settings.rootdir) if not ended else None
            if run.stopped:
                raise concurrent.futures.CancelledError("the run was stopped")
            if ended:
                return None
            run.leave()
            self._kill(run.tag)
            return self._blocked(run.phase, where, limit)
        except BaseException:  # Ctrl-C or SIGTERM while waiting: the run and its codex end with the wait
            run.leave(stopped=True)
            self._kill(run.tag)
            raise
        finally:
            with self._runs_lock:
                self._runs.discard(run)

    def _blocked(self, phase: str, where: tuple[str, str] | None, limit: float) -> str:
        """What held a run past its time: the user's factory, a hook, other code of theirs, or the run itself."""
        at = f"{where[0]} at {where[1]}" if where else ""
        if phase == "factory":
            blocked = f" (blocked in {at})" if at else ""
            return f"your agent factory {self.settings.agent} did not return within {limit:g}s{blocked}; abandoned"
        if where is not None and where[0] in HOOKS:
            return (
                f"a hook of your agent blocked the orchestrator's event loop past the {limit:g}s timeout: {at} "
                "(a blocking call in an async hook, such as time.sleep); abandoned, its codex killed"
            )
        if where is not None:
            return (
                f"your agent's code blocked the orchestrator's event loop past the {limit:g}s timeout: {at}; "
                "abandoned, its codex killed"
            )
        return f"the orchestrator run did not end within {limit:g}s; abandoned, its codex killed"

    @staticmethod
    def _kill(tag: str) -> None:
        """Kill the codex processes of one run (found by their marker), and what they started."""
        if tag:
            for pid in process.with_env(f"{TAG_ENV}={tag}"):
                process.kill(pid)

    def close(self) -> None:
        """Stop the orchestrator runs still in flight (their codex killed if they do not end), then the rest."""
        with self._runs_lock:
            runs, tags = list(self._runs), set(self._tags)
        for run in runs:
            run.leave(stopped=True)
        deadline = time.monotonic() + self.stop_grace
        for run in runs:  # a cancelled run closes its codex itself; one held by blocking code of the user's cannot
            if blocked_at(run.thread, self.settings.rootdir) is None:
                run.thread.join(max(deadline - time.monotonic(), 0))
        for tag in tags:
            self._kill(tag)
        super().close()

    async def _run_agent(
        self,
        agent: Any,
        client: Any,
        prompt: str,
        limit: float,
        deadline: float,
        result: CallResult,
        info: dict[str, Any],
    ) -> None:
        from agents import OpenAIProvider, RunConfig, Runner, trace

        # Every model request of the run goes to the scenario's provider URL, whatever the agent names as its
        # model (a string, or none: the SDK's default): nothing reaches a provider unaudited.
        run_config = RunConfig(model_provider=OpenAIProvider(openai_client=client, use_responses=True))
        try:
            async with contextlib.AsyncExitStack() as servers:
                for server in agent.mcp_servers:
                    await servers.enter_async_context(server)
                with trace("interllm scenario", trace_id=info["trace_id"]):  # this scenario's spans, apart
                    run = await asyncio.wait_for(
                        Runner.run(agent, prompt, max_turns=4, run_config=run_config),
                        max(deadline - time.monotonic(), 0.1),
                    )
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
