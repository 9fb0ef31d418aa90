"""One attempt pipeline for every transport: clear the output path, open the scenario's provider endpoint, run the
turn, read back the evidence (requests, tool calls, codex's stderr, the output file), retry transient provider
errors, and re-run a scenario that a shared codex took down with it.

`Executor` is the object behind the `interllm_codex` fixture: `run()` sends a prompt through the real codex and
returns a `ScenarioOutcome`; `check()` raises `ScenarioFailure` when the outcome is wrong. It owns the worker's
codex process (started by the transport, reused, retired after a stalled turn or a crash) and its temporary
directory.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

from pytest_interllm import faults, trajectory, workspace
from pytest_interllm.checks import check_outcome
from pytest_interllm.codex.config import KEY_ENV, codex_call, config_toml
from pytest_interllm.codex.locate import CodexBinary
from pytest_interllm.endpoint import Endpoint
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.faults import RETRIED_CODES, TRANSIENT_STATUSES, USAGE_LIMIT
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome, ToolCall
from pytest_interllm.outputs import OutputGuard
from pytest_interllm.runtime import LoopRunner
from pytest_interllm.settings import Settings
from pytest_interllm.transports.base import CodexProcess, Transport, TransportContext, TurnRequest
from pytest_interllm.workdirs import Workdir
from pytest_interllm.workspace import Spec

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Crash:
    """The `crash` fault's trigger for one attempt: kills its codex process and remembers that it did, so the
    attempt that crashed a shared server is told apart from the others in flight on it."""

    def __init__(self, server: CodexProcess | None) -> None:
        self.server = server
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        if self.server is not None:
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


def transient_wait(outcome: ScenarioOutcome) -> float | None:
    """Seconds to wait before a retry when the failure is transient, else None. A failure the provider names by its
    code decides by the code (a rate limit after its stated delay, an overload with backoff, anything else never:
    a context too long, a quota or plan spent, a policy refusal, a login gone); else by the HTTP status."""
    if outcome.timed_out:
        return None  # our own hard timeout: the scenario had its time
    failed = [r for r in [*outcome.requests, *outcome.orchestrator_requests] if r.status >= 400 or r.error_code]
    if (outcome.is_error or outcome.error) and failed:
        last = failed[-1]
        if last.error_code and (last.status < 400 or last.error_code == USAGE_LIMIT or last.status == 401):
            return (last.retry_after or 0.5) if last.error_code in RETRIED_CODES else None
        if last.status in TRANSIENT_STATUSES:
            return last.retry_after or 0.5
    if outcome.is_error and re.search(r"idle timeout", outcome.final_output, re.IGNORECASE):
        return 0.5  # codex saw the provider's stream stall; our own hard timeout is never retried
    return None


class ExecutorClosed(RuntimeError):
    """An attempt asked for codex after the executor began to close (Ctrl-C, SIGTERM, -x with scenarios in flight)."""


class Executor:
    """One worker's agent: a transport, its codex process, an isolated CODEX_HOME, the provider `endpoint` the
    plugin gave it, on the worker's event loop `runner`."""

    def __init__(
        self,
        settings: Settings,
        codex: CodexBinary,
        endpoint: Endpoint,
        runner: LoopRunner,
        transport: type[Transport],
        label: str = "main",
        agent_factory: object = None,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.runner = runner
        self.codex = codex
        self.label = label
        self._workdir = Workdir(label)  # locked while this process lives: a later run removes it if this one dies
        self.workdir = self._workdir.path
        self.home = self.workdir / "home"
        self.codex_home = settings.codex_home or self.workdir / "codex-home"
        self.stderr_path = self.workdir / "codex-stderr.log"
        self.transport = transport(
            TransportContext(
                codex_path=codex.path,
                cwd=settings.rootdir,
                sandbox=settings.sandbox,
                runner=runner,
                workdir=self.workdir,
                stderr_path=self.stderr_path,
                env=self.codex_env,
                codex_home=self.codex_home,
                user_codex_home=settings.codex_home is not None,
                orchestrator_model=settings.orchestrator_model,
                upload_traces=settings.upload_traces,
                agent=settings.agent,
                agent_factory=agent_factory,
            )
        )
        self.server: CodexProcess | None = None
        self._spawned = False  # a transport without a long-lived process has set itself up once
        self.restarts = 0
        self.outputs = OutputGuard(settings)  # clears each output path without losing a user's file
        self._attempts_lock = threading.Lock()
        self._tokens = itertools.count()
        self._active: set[int] = set()  # attempts running now
        self._overlapped: set[int] = set()  # attempts that ran beside another one
        self._users: dict[int, int] = {}  # id of a codex process → attempts running on it
        self._retired: dict[int, CodexProcess] = {}  # no new attempt may use them; stopped once their last is done
        self._closing = False  # the run is ending: no codex may start any more (a re-run or retry cut short)
        self._starting = threading.RLock()  # scenarios in flight call start() from their threads
        self._every: list[CodexProcess] = []  # every codex process started: none may outlive close()

    @property
    def token(self) -> str:
        return self.endpoint.token

    def codex_env(self, codex_home: Path | None = None) -> dict[str, str]:
        """The whole environment codex gets: a clean HOME, its CODEX_HOME and the run's provider token only."""
        return {
            "HOME": str(self.home),
            "CODEX_HOME": str(codex_home or self.codex_home),
            KEY_ENV: self.token,
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }

    # -- the codex process ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the provider endpoint and the codex process (idempotent; scenarios in flight share them)."""
        with self._starting:
            if self._closing:  # an attempt in flight re-running or retrying as the run ends, or restart()
                raise ExecutorClosed("the run is ending: no codex is started any more")
            self.endpoint.start()
            if self.settings.codex_home is None and not (self.codex_home / "config.toml").exists():
                self.codex_home.mkdir(parents=True, exist_ok=True)
                (self.codex_home / "config.toml").write_text(config_toml(self.endpoint.base_url), encoding="utf-8")
            self.home.mkdir(parents=True, exist_ok=True)
            if self.server is not None and self.server.alive:
                return
            self._stop_server()  # it died between scenarios: make sure nothing of it is left
            if self.server is None and not self._spawned:
                self.server = self.transport.spawn()
                if self.server is not None:
                    self._every.append(self.server)
                self._spawned = self.server is None  # set up once; a process is spawned again when it dies

    def _stop_server(self) -> None:
        if self.server is not None:
            self.runner.run(self.server.stop(self.transport.stop_grace), self.transport.stop_limit)
        self.server = None

    def restart(self) -> None:
        """Replace the codex process now (whatever runs on it)."""
        with self._starting:
            self._stop_server()
            self.restarts += 1
            self.start()

    def _acquire(self) -> tuple[CodexProcess | None, Crash]:
        """The codex process one attempt runs on (started if needed), counted as in use until `_release`, and the
        `crash` fault's trigger for it (which also remembers that this attempt's fault killed it)."""
        with self._starting:
            self.start()  # ExecutorClosed once the run ends: a re-run or retry cut short starts no codex
            server = self.server
            if server is not None:
                self._users[id(server)] = self._users.get(id(server), 0) + 1
            return server, Crash(server)

    def _release(self, server: CodexProcess | None, retire: bool = False) -> None:
        """An attempt is done with `server`. `retire` (a stalled turn, a crash): no later attempt gets it, and it
        stops once the last attempt still on it is done — never under another scenario's feet."""
        if server is None:
            return
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
            self.runner.run(server.stop(self.transport.stop_grace), self.transport.stop_limit)

    # -- attempts ------------------------------------------------------------------------------------------------

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
        workspace: Spec | None = None,
    ) -> ScenarioOutcome:
        """Send `prompt` through codex; `model=None` leaves the model to codex's own configuration. With a
        `workspace`, each attempt runs in a fresh copy of its fixture (see `workspace.py`).

        Transient provider errors (HTTP 429/5xx, a stalled stream) are retried with backoff, at most
        `settings.provider_retries` times; the outcome counts the retries and keeps the earlier errors.
        """
        retries: list[str] = []
        reruns: list[str] = []
        while True:
            outcome = self._attempt(
                prompt, output_file, model, expected_model, timeout, fault, fault_requests, label, workspace
            )
            if outcome.crashed and outcome.stderr_shared and not outcome.crash_caused and not reruns:
                # A shared codex died under several scenarios: not known to be this one's doing. Judged on its own
                # run on a fresh server instead (once: a scenario that crashes codex again is codex-crashed).
                reruns.append(
                    f"re-run on a fresh codex server: the server (pid {outcome.codex_pid}) died while other scenarios "
                    "were in flight on it, and this scenario was not known to have caused it"
                )
                continue
            outcome.reruns = reruns
            wait = transient_wait(outcome)
            if wait is None or len(retries) >= self.settings.provider_retries:
                outcome.provider_retries = len(retries)
                outcome.retry_errors = retries
                return outcome
            retries.append(outcome.error or (outcome.final_output.splitlines() or ["error"])[0][:200])
            time.sleep(min(wait * (2 ** len(retries) - 1), 30.0))

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
        spec: Spec | None = None,
    ) -> ScenarioOutcome:
        # The output path is cleared first: an earlier output of the plugin removed, a user's file moved aside.
        target, moved = self.outputs.prepare(output_file)
        limit = timeout or self.settings.timeout
        expected = expected_model or model or self.settings.model
        s = self.settings
        # With `workspace:`, a fresh copy of the fixture is codex's cwd and sandbox root, and the output file is
        # written inside it (copied to the output dir afterwards).
        root = workspace.create(spec.fixture, label, spec.solution) if spec is not None else s.rootdir
        before = workspace.snapshot(root) if spec is not None else {}
        written = root / workspace.inside_path(s.relative(target), target.name) if spec is not None else target
        server, crash = self._acquire()
        call = self.endpoint.open(label, fault, fault_requests, on_crash=crash)
        injected = faults.get(fault)
        arguments = codex_call(prompt, model, call.url, str(root), s.sandbox)
        if injected is not None and injected.by_call:  # a caller that gets its own call wrong
            arguments = injected.shape_call(arguments)
            if injected.config_model is not None:  # codex's own config default fills what the call left out
                arguments["config"] = {**arguments["config"], "model": injected.config_model}
        outcome = ScenarioOutcome(
            prompt=prompt,
            expected_model=expected,
            output_path=s.relative(target),
            arguments={k: v for k, v in arguments.items() if k not in ("prompt", "config")},
            fault=fault,
            codex_pid=server.pid if server is not None else None,
            expected_config={**self.expected_config(), "cwd": str(root)},
            output_notes=[moved] if moved else [],
            workspace=str(root) if spec is not None else None,
        )
        request = TurnRequest(prompt, arguments, limit, call.url, label, injected, expected)
        stderr_seen = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        start = time.monotonic()
        token = self._enter()
        try:
            self.transport.turn(server, request, outcome)
        except BaseException as exc:
            self._leave(token)
            call.close()
            if server is not None and not isinstance(exc, Exception):
                server.kill()  # Ctrl-C, SIGTERM: the run is stopping, codex goes now rather than after its grace
            self._release(server, retire=True)
            raise
        outcome.stderr_shared = self._leave(token)
        call.close()
        outcome.duration = time.monotonic() - start
        outcome.crashed = outcome.crashed or (server is not None and not server.alive and not outcome.timed_out)
        outcome.crash_caused = crash.fired
        self.transport.attribute(outcome, call.requests())
        if outcome.session_config:
            outcome.session_config_source = self.transport.config_source
        if spec is not None:
            self._in_workspace(outcome, spec, root, before, written, target)
        self._read_back(outcome, stderr_seen, target)
        outcome.trajectory = trajectory.build(outcome.events, root, outcome.tool_calls)
        # A timed-out turn may still run in codex: no later scenario gets this process.
        self._release(server, retire=self.transport.retire_after(outcome))
        return outcome

    @staticmethod
    def _in_workspace(
        outcome: ScenarioOutcome,
        spec: Spec,
        root: Path,
        before: dict[str, workspace.Entry],
        written: Path,
        target: Path,
    ) -> None:
        """What an attempt left in its workspace: the diff (ours, not the agent's word), the check's result, and the
        output file copied to the run's output dir."""
        outcome.workspace_diff = workspace.diff(before, workspace.snapshot(root))
        if spec.check:
            outcome.check = workspace.run_check(spec.check, root, spec.check_timeout).record()
        if written.is_file() and not written.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(written, target)

    def _read_back(self, outcome: ScenarioOutcome, stderr_seen: int, target: Path) -> None:
        """What every transport's attempt leaves: the provider's models, tokens from the audited requests when codex
        reported none, the tool calls the provider received, codex's new stderr, the output file."""
        outcome.provider_models = [r.model for r in outcome.requests]
        if not outcome.tokens_in and not outcome.tokens_out:
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
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Stop the transport and codex, then the provider endpoint; end the loop; remove the temporary home."""
        with self._starting:
            self._closing = True
        self.transport.close()
        with self._attempts_lock:
            cut_short = bool(self._active)
        if cut_short:  # -x, Ctrl-C, SIGTERM with scenarios in flight: their codex goes now, not after its grace
            for server in [self.server, *self._retired.values()]:
                if server is not None:
                    server.kill()
        self._stop_server()
        for server in list(self._retired.values()):  # still in use when the run stopped (-x, Ctrl-C)
            self.runner.run(server.stop(self.transport.stop_grace), self.transport.stop_limit)
        self._retired.clear()
        for server in self._every:  # one a scenario cut short was still stopping from its own thread
            if server.alive:
                server.kill()
        self.outputs.close()  # codex is stopped: what attempts cut short wrote is recorded now
        self.endpoint.stop()
        self._workdir.remove()  # codex is gone: before the loop's end, which may wait on what is cut short
        self.runner.close()  # anything still in flight (-x, Ctrl-C) is cancelled, and its thread woken
