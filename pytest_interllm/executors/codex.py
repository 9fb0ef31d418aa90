"""The `codex` executor: one reused `codex mcp-server` per worker, one `codex` tool call per scenario."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from pytest_interllm import faults
from pytest_interllm.checks import check_outcome
from pytest_interllm.codex.events import CallResult, session_config, tool_calls
from pytest_interllm.codex.locate import CodexBinary
from pytest_interllm.codex.server import CodexServer
from pytest_interllm.endpoint import Endpoint
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.faults import TRANSIENT_STATUSES
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome, ToolCall
from pytest_interllm.outputs import OutputGuard
from pytest_interllm.runtime import LoopRunner
from pytest_interllm.settings import Settings
from pytest_interllm.workdirs import Workdir

PROVIDER_ID = "interllm"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
KEY_ENV = "INTERLLM_PROVIDER_KEY"


class CodexProcess(Protocol):
    """What an executor needs of its codex process: `CodexServer` (MCP) or app-server's `_Sdk`."""

    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    def kill(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


class Crash:
    """The `crash` fault's trigger for one attempt: kills its codex process and remembers that it did, so the
    attempt that crashed a shared server is told apart from the others in flight on it."""

    def __init__(self, server: CodexProcess) -> None:
        self.server = server
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.server.kill()


def merge_tool_calls(seen: list[ToolCall], requests: list[AuditRecord]) -> list[ToolCall]:
    """The tool calls codex reported, completed from the history every request carried to the provider: a call
    codex reported without its output (or not at all) still shows what the model was sent back."""
    merged = {call.call_id: call for call in seen}
    for request in requests:
        for call in request.tool_calls:
            known = merged.get(call.call_id)
            if known is None:
                merged[call.call_id] = call
            elif not known.output.strip() and call.output.strip():
                merged[call.call_id] = replace(
                    known,
                    output=call.output,
                    exit_code=known.exit_code if known.exit_code is not None else call.exit_code,
                    command=known.command or call.command,
                )
    return list(merged.values())


def provider_config(base_url: str) -> dict[str, Any]:
    """The model provider table codex gets, in its own config and in every call's `config`."""
    return {
        "name": PROVIDER_ID,
        "base_url": base_url,
        "env_key": KEY_ENV,
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
    }


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_toml(base_url: str) -> str:
    """`config.toml` for an isolated CODEX_HOME: our provider, no analytics."""
    table = "\n".join(f"{k} = {_toml(v)}" for k, v in provider_config(base_url).items())
    return (
        f'model_provider = "{PROVIDER_ID}"\n\n[model_providers.{PROVIDER_ID}]\n{table}\n\n'
        "[analytics]\nenabled = false\n"
    )


class CodexExecutor:
    """One worker's agent: an isolated CODEX_HOME and one reused codex MCP server, talking to the provider
    `endpoint` the plugin gave it, on the worker's event loop `runner`.

    This is the object behind the `interllm_codex` fixture: `run()` sends a prompt through the real codex
    and returns a `ScenarioOutcome`; `check()` raises `ScenarioFailure` when the outcome is wrong.
    """

    stop_grace, stop_limit = 5.0, 15.0  # how long the codex process gets to end, and the whole stop

    def __init__(
        self, settings: Settings, codex: CodexBinary, endpoint: Endpoint, runner: LoopRunner, label: str = "main"
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.runner = runner
        self.codex = codex
        self.label = label
        self.server: CodexProcess | None = None
        self._workdir = Workdir(label)  # locked while this process lives: a later run removes it if this one dies
        self.workdir = self._workdir.path
        self.home = self.workdir / "home"
        self.codex_home = settings.codex_home or self.workdir / "codex-home"
        self.stderr_path = self.workdir / "codex-stderr.log"
        self.restarts = 0
        self.outputs = OutputGuard(settings)  # clears each output path without losing a user's file
        self._attempts_lock = threading.Lock()
        self._tokens = itertools.count()
        self._active: set[int] = set()  # attempts running now
        self._overlapped: set[int] = set()  # attempts that ran beside another one
        self._users: dict[int, int] = {}  # id of a codex process → attempts running on it
        self._retired: dict[int, CodexProcess] = {}  # no new attempt may use them; stopped once their last is done
        self._starting = threading.RLock()  # scenarios in flight call start() and restart() from their threads

    @property
    def token(self) -> str:
        return self.endpoint.token

    def start(self) -> None:
        """Start the provider endpoint and the codex server (idempotent; scenarios in flight share them)."""
        with self._starting:
            self.endpoint.start()
            if self.settings.codex_home is None and not (self.codex_home / "config.toml").exists():
                self.codex_home.mkdir(parents=True, exist_ok=True)
                (self.codex_home / "config.toml").write_text(config_toml(self.endpoint.base_url), encoding="utf-8")
            self.home.mkdir(parents=True, exist_ok=True)
            if self.server is None or not self.server.alive:
                self._stop_server()  # it died between scenarios: make sure nothing of it is left
                self._start_server()

    def codex_env(self, codex_home: Path | None = None) -> dict[str, str]:
        """The whole environment codex gets: a clean HOME, its CODEX_HOME and the run's provider token only."""
        return {
            "HOME": str(self.home),
            "CODEX_HOME": str(codex_home or self.codex_home),
            KEY_ENV: self.token,
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }

    def _start_server(self) -> None:
        server = CodexServer(self.codex.path, self.codex_env(), self.settings.rootdir, self.stderr_path)
        self.runner.run(server.start(), 60)
        self.server = server

    def _stop_server(self) -> None:
        if self.server is not None:
            self.runner.run(self.server.stop(self.stop_grace), self.stop_limit)
        self.server = None

    def restart(self) -> None:
        """Replace the codex server now (whatever runs on it)."""
        with self._starting:
            self._stop_server()
            self.restarts += 1
            self._start_server()

    def _acquire(self) -> tuple[CodexProcess, Crash]:
        """The codex process one attempt runs on (started if needed), counted as in use until `_release`, and the
        `crash` fault's trigger for it (which also remembers that this attempt's fault killed it)."""
        with self._starting:
            self.start()
            server = self.server
            assert server is not None
            self._users[id(server)] = self._users.get(id(server), 0) + 1
            return server, Crash(server)

    def _release(self, server: CodexProcess, retire: bool = False) -> None:
        """An attempt is done with `server`. `retire` (a stalled turn, a crash): no later attempt gets it, and it
        stops once the last attempt still on it is done — never under another scenario's feet."""
        with self._starting:
            left = self._users.get(id(server), 1) - 1
            if left:
                self._users[id(server)] = left
            else:
                self._users.pop(id(server), None)
            if retire and server is self.server:
                self.server = None
                self.restarts += 1
                self._retired[id(server)] = server
            stop = left == 0 and self._retired.pop(id(server), None) is not None
        if stop:
            self.runner.run(server.stop(self.stop_grace), self.stop_limit)

    def arguments(self, prompt: str, model: str | None, base_url: str, fault: str | None = None) -> dict[str, Any]:
        """The `codex` tool call arguments: explicit model, cwd, sandbox and approval policy."""
        config: dict[str, Any] = {
            "model_provider": PROVIDER_ID,
            "model_providers": {PROVIDER_ID: provider_config(base_url)},
        }
        args: dict[str, Any] = {
            "prompt": prompt,
            "cwd": str(self.settings.rootdir),
            "sandbox": self.settings.sandbox,
            "approval-policy": "never",
            "config": config,
        }
        if model is not None:
            args["model"] = model
        injected = faults.get(fault)
        if injected is not None and injected.by_call:  # a caller that gets its own call wrong
            args = injected.shape_call(args)
            if injected.config_model is not None:
                config["model"] = injected.config_model  # codex's own config default fills what the call left out
        return args

    def expected_config(self) -> dict[str, str]:
        """The session configuration every scenario asks for (checked against what codex reports)."""
        return {"sandbox": self.settings.sandbox, "approval-policy": "never", "cwd": str(self.settings.rootdir)}

    def run(
        self,
        prompt: str,
        *,
        output_file: Path | str,
        model: str | None = None,
        expected_model: str | None = None,
        timeout: float | None = None,
        fault: str | None = None,
        fault_requests: int | None = None,
        label: str = "scenario",
    ) -> ScenarioOutcome:
        """Send `prompt` through codex; `model=None` leaves the model to codex's own configuration.

        Transient provider errors (HTTP 429/5xx, a stalled stream) are retried with backoff, at most
        `settings.provider_retries` times; the outcome counts the retries and keeps the earlier errors.
        """
        retries: list[str] = []
        reruns: list[str] = []
        while True:
            outcome = self._attempt(prompt, output_file, model, expected_model, timeout, fault, fault_requests, label)
            if outcome.crashed and outcome.stderr_shared and not outcome.crash_caused and not reruns:
                # A shared codex died under several scenarios: not known to be this one's doing. Judged on its own
                # run on a fresh server instead (once: a scenario that crashes codex again is codex-crashed).
                reruns.append(
                    f"re-run on a fresh codex server: the server (pid {outcome.codex_pid}) died while other scenarios "
                    "were in flight on it, and this scenario was not known to have caused it"
                )
                continue
            outcome.reruns = reruns
            wait = self._transient(outcome)
            if wait is None or len(retries) >= self.settings.provider_retries:
                outcome.provider_retries = len(retries)
                outcome.retry_errors = retries
                return outcome
            retries.append(outcome.error or (outcome.final_output.splitlines() or ["error"])[0][:200])
            time.sleep(min(wait * (2 ** len(retries) - 1), 30.0))

    @staticmethod
    def _transient(outcome: ScenarioOutcome) -> float | None:
        """Seconds to wait before a retry when the failure is transient, else None."""
        if outcome.timed_out:
            return None  # our own hard timeout: the scenario had its time
        bad = [r for r in [*outcome.requests, *outcome.orchestrator_requests] if r.status >= 400]
        if (outcome.is_error or outcome.error) and bad and bad[-1].status in TRANSIENT_STATUSES:
            return bad[-1].retry_after or 0.5
        if outcome.is_error and re.search(r"idle timeout", outcome.final_output, re.IGNORECASE):
            return 0.5  # codex saw the provider's stream stall; our own hard timeout is never retried
        return None

    def _prepare(
        self, output_file: Path | str, model: str | None, expected_model: str | None, timeout: float | None
    ) -> tuple[Path, float, str, str | None]:
        """The output file cleared for this attempt (its directory made; an earlier output of the plugin removed, a
        user's file moved aside), the time limit, the expected model, and a note when a user's file was moved."""
        target, moved = self.outputs.prepare(output_file)
        return target, timeout or self.settings.timeout, expected_model or model or self.settings.model, moved

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
        target, limit, expected, moved = self._prepare(output_file, model, expected_model, timeout)
        server, crash = self._acquire()
        assert isinstance(server, CodexServer)
        call = self.endpoint.open(label, fault, fault_requests, on_crash=crash)
        arguments = self.arguments(prompt, model, call.url, fault)
        outcome = ScenarioOutcome(
            prompt=prompt,
            expected_model=expected,
            output_path=self.settings.relative(target),
            arguments={k: v for k, v in arguments.items() if k not in ("prompt", "config")},
            fault=fault,
            codex_pid=server.pid,
            expected_config=self.expected_config(),
            output_notes=[moved] if moved else [],
        )
        stderr_seen = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        start = time.monotonic()
        token = self._enter()
        try:
            result = self.runner.run(server.call(arguments, limit), limit + 30)
        except BaseException:
            self._leave(token)
            call.close()
            self._release(server, retire=True)
            raise
        outcome.stderr_shared = self._leave(token)
        call.close()
        outcome.duration = time.monotonic() - start
        outcome.crashed = not server.alive and not result.timed_out
        outcome.crash_caused = crash.fired
        outcome.requests = call.requests()
        self._fill(outcome, result, stderr_seen, target)
        # A timed-out call may leave its turn running in codex: no later scenario gets this server.
        self._release(server, retire=result.timed_out or outcome.crashed)
        return outcome

    def _fill(self, outcome: ScenarioOutcome, result: CallResult, stderr_seen: int, target: Path) -> None:
        outcome.events = result.events
        outcome.final_output = result.text
        outcome.is_error = result.is_error
        outcome.structured = result.structured
        outcome.agent_replied = bool(result.text.strip() or result.of_type("agent_message", "task_complete"))
        outcome.error = result.error
        outcome.timed_out = result.timed_out
        outcome.thread_id = result.thread_id
        configured = result.of_type("session_configured")
        if configured:
            value = configured[0].msg.get("model")
            outcome.session_model = value if isinstance(value, str) else None
            outcome.session_time = configured[0].time
            outcome.session_config = session_config(configured[0].msg)
            outcome.session_config_source = "session_configured"
        if not outcome.final_output:
            done = result.of_type("task_complete")
            if done and isinstance(done[-1].msg.get("last_agent_message"), str):
                outcome.final_output = str(done[-1].msg["last_agent_message"])
        outcome.tool_calls = tool_calls(result.events)
        counts = result.of_type("token_count")
        usage = (counts[-1].msg.get("info") or {}).get("total_token_usage") if counts else None
        if isinstance(usage, dict):
            outcome.tokens_in = int(usage.get("input_tokens", 0))
            outcome.tokens_out = int(usage.get("output_tokens", 0))
        self._read_back(outcome, stderr_seen, target, tokens_reported=isinstance(usage, dict))

    def _enter(self) -> int:
        """An attempt starts: its token. Attempts overlapping in time share codex's stderr."""
        with self._attempts_lock:
            token = next(self._tokens)
            if self._active:
                self._overlapped |= {*self._active, token}
            self._active.add(token)
            return token

    def _leave(self, token: int) -> bool:
        """An attempt ends: whether another one ran at any moment during it."""
        with self._attempts_lock:
            self._active.discard(token)
            shared = token in self._overlapped
            self._overlapped.discard(token)
            return shared

    def _read_back(self, outcome: ScenarioOutcome, stderr_seen: int, target: Path, tokens_reported: bool) -> None:
        """What every executor reads after a run: the provider's models, tokens from the audited requests when
        codex reported none, the tool calls the provider received, codex's new stderr, the output file."""
        outcome.provider_models = [r.model for r in outcome.requests]
        if not tokens_reported:
            outcome.tokens_in = sum(r.input_tokens for r in outcome.requests)
            outcome.tokens_out = sum(r.output_tokens for r in outcome.requests)
        outcome.tool_calls = merge_tool_calls(outcome.tool_calls, outcome.requests)
        outcome.codex_stderr = ""
        if not outcome.stderr_shared:  # with other scenarios in flight, no line of it is known to be this one's
            try:
                with self.stderr_path.open("rb") as fh:
                    fh.seek(stderr_seen)
                    outcome.codex_stderr = ANSI.sub("", fh.read().decode("utf-8", "replace"))
            except OSError:
                pass
        problem = self.outputs.settle(target)
        if problem is not None:
            outcome.output_notes.append(problem)
        if target.is_file():
            outcome.output_exists = True
            outcome.output_size = target.stat().st_size
            outcome.output_text = target.read_text(encoding="utf-8", errors="replace")

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None:
        """Raise `ScenarioFailure` unless the model, the output file and the expectations hold."""
        failure: ScenarioFailure | None = check_outcome(outcome, expectations)
        outcome.failure_class = failure.failure_class if failure else None
        outcome.failure = str(failure) if failure else None
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Stop codex and the provider endpoint, end the loop and remove the temporary home."""
        self._stop_server()
        for server in list(self._retired.values()):  # still in use when the run stopped (-x, Ctrl-C)
            self.runner.run(server.stop(self.stop_grace), self.stop_limit)
        self._retired.clear()
        self.outputs.close()  # codex is stopped: what attempts cut short wrote is recorded now
        self.endpoint.stop()
        self.runner.cancel_all()  # anything still in flight (-x, Ctrl-C) ends now, its thread with it
        self.runner.close()
        self._workdir.remove()
