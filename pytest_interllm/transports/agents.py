"""The agents transport: the original system's OpenAI Agents SDK orchestration, with full local tracing.

An orchestrator `Agent` with an explicit model calls codex through `MCPServerStdio(codex mcp-server)`. The
SDK's own defaults never decide anything: the model is explicit, tracing goes to a local processor (no
upload), and codex's session model comes from codex's own session record, not from the SDK. Each scenario's
orchestrator runs on a thread and event loop of its own (`OrchestratorRun`), so a factory or hook of the
user's that blocks is left behind at the time limit, its codex killed.
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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_interllm.agent_factory import HOOKS, AgentFactoryError, blocked_at
from pytest_interllm.codex import process
from pytest_interllm.codex.config import config_toml
from pytest_interllm.codex.events import CallResult
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome
from pytest_interllm.prompt import PromptTemplate
from pytest_interllm.runtime import collector_paused
from pytest_interllm.transports.agents_evidence import SpanCapture, output_text, rollout_events, run_item_record
from pytest_interllm.transports.base import CodexProcess, Transport, TransportContext, TurnRequest
from pytest_interllm.transports.mcp import fill_from_call

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


@dataclass
class _Turn:
    """What one turn leaves for `attribute`: codex's home, the call's result and the run's facts."""

    codex_home: Path
    owned: bool  # a CODEX_HOME made for this turn, removed after it
    result: CallResult
    info: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""


class AgentsTransport(Transport):
    """Each turn is `Runner.run(orchestrator, prompt)` with codex behind `MCPServerStdio` (one codex per turn)."""

    name = "agents"
    config_source = "codex's session record, turn_context"

    def __init__(self, context: TransportContext) -> None:
        super().__init__(context)
        self.capture = SpanCapture()
        self._given: dict[str, tuple[Any, Any]] = {}  # label → (agent, its codex server), for `interllm_agents`
        self._runs: set[OrchestratorRun] = set()  # in flight now
        self._tags: set[str] = set()  # of every run: codex processes left behind are found by them at close
        self._runs_lock = threading.Lock()
        self._turns: dict[int, _Turn] = {}  # id of an outcome → its turn, until `attribute`

    def spawn(self) -> None:
        """No long-lived codex: the SDK owns one `MCPServerStdio` per turn. Tracing is set up once, here."""
        with collector_paused():
            from agents import set_trace_processors, set_tracing_disabled

        set_tracing_disabled(False)
        processors: list[Any] = [self.capture]  # replaces the uploading processor: nothing leaves the machine
        if self.context.upload_traces:
            from agents.tracing.processors import default_processor

            processors.append(default_processor())  # asked for explicitly, with a real key (checked at start)
        set_trace_processors(processors)
        return None

    def codex_server(self, codex_home: Path, limit: float, cwd: str | None = None) -> Any:
        """The codex MCP server an orchestrator gets: our codex, an isolated CODEX_HOME, cwd = the rootdir (or the
        attempt's workspace)."""
        from agents.mcp import MCPServerStdio

        return MCPServerStdio(
            name="codex",
            params={
                "command": self.context.codex_path,
                "args": ["mcp-server"],
                "env": {**self.context.env(codex_home), TAG_ENV: uuid.uuid4().hex},
                "cwd": cwd or str(self.context.cwd),
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

    def _instructions(self, model: str, cwd: str) -> str:
        text = resources.files("pytest_interllm.templates").joinpath("orchestrator.txt").read_text("utf-8")
        template = PromptTemplate.parse(text, "<packaged orchestrator.txt>", ("model", "cwd", "sandbox"))
        return template.render(model=model, cwd=cwd, sandbox=self.context.sandbox)

    def _codex_home(self, request: TurnRequest, given: Any) -> tuple[Path, bool]:
        """This turn's CODEX_HOME (with the config.toml naming its provider URL), and whether it was made for it."""
        ctx, fault = self.context, request.fault
        config_model = fault.config_model if fault is not None else None
        if given is not None:  # a hand-written test's agent: its codex server's CODEX_HOME is fixed already
            home, owned = Path(given[1].params.env["CODEX_HOME"]), False
        elif not ctx.user_codex_home or config_model:
            # codex starts per turn here, with its own CODEX_HOME: turns in flight at once must not share the
            # config.toml that names their provider URL.
            home, owned = Path(tempfile.mkdtemp(prefix="codex-home-", dir=ctx.workdir)), True
        else:
            home, owned = ctx.codex_home, False  # the user's --interllm-codex-home, their config as it is
        if config_model or home != ctx.codex_home:  # a fault may have codex's own config name a model
            (home / "config.toml").write_text(config_toml(request.url, model=config_model))
        return home, owned

    def turn(self, process: CodexProcess | None, request: TurnRequest, outcome: ScenarioOutcome) -> None:
        from openai import AsyncOpenAI

        limit, start = request.limit, time.monotonic()
        model = request.arguments.get("model") or request.expected_model
        orchestrator_model = self.context.orchestrator_model or request.expected_model
        outcome.expected_orchestrator_model = orchestrator_model
        given = self._given.get(request.label)
        home, owned = self._codex_home(request, given)
        turn = _Turn(home, owned, CallResult(), trace_id=f"trace_{uuid.uuid4().hex}")
        turn.info["trace_id"] = turn.trace_id
        self._turns[id(outcome)] = turn
        cwd = str(request.arguments.get("cwd") or self.context.cwd)  # the rootdir, or the attempt's workspace
        codex = given[1] if given is not None else self.codex_server(home, limit, cwd)
        client = AsyncOpenAI(base_url=request.url, api_key=self._token(codex), max_retries=0)  # the scenario's
        info, result = turn.info, turn.result
        run = OrchestratorRun(
            lambda: self._agent(given, codex, model, orchestrator_model, client, info, cwd),
            lambda agent: self._run_agent(agent, client, request.prompt, limit, start + limit, result, info),
            str(codex.params.env.get(TAG_ENV, "")),
        )
        blocked = self._wait(run, limit)
        if blocked is not None:  # left behind: what its thread may still write is no longer looked at
            self.capture.drop(turn.trace_id)
            turn.result = CallResult(timed_out=True, error=blocked)
            turn.info = {"agent": info.get("agent", {})}
        elif run.phase == "factory" and run.error is not None:
            error = run.error
            self._turns.pop(id(outcome), None)
            if given is not None or self.context.agent_factory is None:
                raise error
            raise AgentFactoryError(
                f"--interllm-agent {self.context.agent}: calling it failed: {type(error).__name__}: {error}"
            ) from None
        elif run.error is not None:  # sys.exit() or a KeyboardInterrupt raised by the user's code during the run
            result.error = f"{type(run.error).__name__}: {run.error}"

    @staticmethod
    def _token(codex: Any) -> str:
        """The run's provider token, as codex's own environment holds it."""
        from pytest_interllm.codex.config import KEY_ENV

        return str(codex.params.env.get(KEY_ENV, ""))

    def attribute(self, outcome: ScenarioOutcome, records: list[AuditRecord]) -> None:
        """codex's requests apart from the orchestrator's; codex's session from its own record."""
        turn = self._turns.pop(id(outcome))
        result, info = turn.result, turn.info
        codex_requests = [r for r in records if r.user_agent.startswith("codex")]
        outcome.orchestrator_requests = [r for r in records if not r.user_agent.startswith("codex")]
        outcome.orchestrator_models = [r.model for r in outcome.orchestrator_requests]
        thread = next((r.thread_id for r in codex_requests if r.thread_id), None)
        if thread:
            result.events = rollout_events(turn.codex_home, thread)
            result.structured = result.structured or {"threadId": thread}
        outcome.requests = codex_requests
        if not thread and result.text and not result.error:
            # codex answered the tool call without ever starting a session: an MCP error result
            result.is_error = True
        outcome.arguments = info.get("codex_arguments", {})
        outcome.spans = self.capture.pop(turn.trace_id)
        outcome.agent_items = info.get("new_items", [])
        outcome.agent_usage = info.get("usage", {})
        outcome.orchestrator = info.get("agent", {})
        fill_from_call(outcome, result)
        outcome.final_output = str(info.get("final_output") or result.text or outcome.final_output)
        outcome.agent_replied = bool(outcome.final_output.strip())
        if turn.owned:
            shutil.rmtree(turn.codex_home, ignore_errors=True)

    def retire_after(self, outcome: ScenarioOutcome) -> bool:
        return False  # no shared codex process

    def _agent(
        self,
        given: Any,
        codex: Any,
        model: str,
        orchestrator_model: str,
        client: Any,
        info: dict[str, Any],
        cwd: str,
    ) -> Any:
        """The orchestrator of one scenario: a hand-written test's, the user's factory's, or the plugin's own."""
        from agents import Agent, OpenAIResponsesModel

        if given is not None:
            agent = given[0]
        elif self.context.agent_factory is not None:
            agent = self.context.agent_factory(codex, orchestrator_model)  # the user's own orchestrator
        else:
            agent = Agent(
                name="interllm-orchestrator",
                instructions=self._instructions(model, cwd),
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
            where = blocked_at(run.thread, self.context.cwd) if not ended else None
            if not ended and where is None and run.phase == "run" and run.responsive():
                # Its own timeout fired and it is closing codex: it gets the time a stop gets.
                ended = run.wake.wait(self.stop_limit)
                where = blocked_at(run.thread, self.context.cwd) if not ended else None
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
            return f"your agent factory {self.context.agent} did not return within {limit:g}s{blocked}; abandoned"
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
        deadline = time.monotonic() + self.context.stop_grace
        for run in runs:  # a cancelled run closes its codex itself; one held by blocking code of the user's cannot
            if blocked_at(run.thread, self.context.cwd) is None:
                run.thread.join(max(deadline - time.monotonic(), 0))
        for tag in tags:
            self._kill(tag)

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
        info["new_items"] = [run_item_record(i) for i in run.new_items]
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
                result.text = output_text(item.get("output", ""))
