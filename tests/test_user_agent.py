"""Bring your own orchestrator: the user's Agents SDK agent under the same scenarios, checks and evidence."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from pytest_interllm.codex.process import alive
from tests.conftest import jsonl, run, write
from tests.test_no_orphans import Watch, codex_pids, ended, start
from tests.test_report import report_texts

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "acme_orchestrator.py"
USE = ("--interllm", "input/list.md", "--interllm-agent", "orch:build")


@pytest.fixture
def orchestrator(project: pytest.Pytester) -> Path:
    """The example orchestrator as the user's own module `orch`, beside their list."""
    path = project.path / "orch.py"
    shutil.copy(EXAMPLE, path)
    return path


def test_the_users_orchestrator_runs_the_scenarios(project: pytest.Pytester, orchestrator: Path) -> None:
    result = run(project, *USE, "--html=r.html")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "interllm: * executor agents (--interllm-agent orch:build: your orchestrator)",
            "interllm: orchestrator (OpenAI Agents SDK) yours (orch:build), expected model gpt-5-codex, tracing*",
        ]
    )
    for record in jsonl(project):
        assert [s["name"] for s in record["spans"] if s["type"] == "agent"] == ["acme-orchestrator"]
        assert set(record["orchestrator_models"]) == {"gpt-5-codex"}  # the user's agent, audited
        assert record["orchestrator"]["name"] == "acme-orchestrator"
        assert record["orchestrator"]["model"] == "gpt-5-codex"
        assert record["codex_arguments"] == {
            "model": "gpt-5-codex",
            "sandbox": "workspace-write",
            "approval-policy": "never",
        }
    text = "".join(report_texts(project.path / "r.html").values())
    assert "agent acme-orchestrator" in text and "You coordinate the OpenAI Codex agent" in text
    assert "function codex" in text  # its tool call, under its agent span


@pytest.mark.parametrize("given", ["flag+executor", "ini", "env"])
def test_the_users_orchestrator_given_every_other_way(
    project: pytest.Pytester, orchestrator: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """The run's settings (and so its header) are those of the flag run above: same executor, same orchestrator."""
    args: tuple[str, ...] = USE
    if given == "flag+executor":
        args = (*USE, "--interllm-executor", "agents")
    elif given == "ini":
        project.makeini("[pytest]\ninterllm_agent = orch:build\n")
        args = USE[:2]
    elif given == "env":
        monkeypatch.setenv("INTERLLM_AGENT", "orch:build")
        args = USE[:2]
    result = project.runpytest(*args, "--collect-only")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "interllm: * executor agents*",
            "interllm: orchestrator (OpenAI Agents SDK) yours (orch:build), expected model gpt-5-codex, tracing*",
        ]
    )


def test_an_agent_without_a_model_runs_the_sdks_default_and_fails(
    project: pytest.Pytester, orchestrator: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orchestrator.write_text(orchestrator.read_text().replace("model=model, ", ""))
    monkeypatch.setenv("OPENAI_DEFAULT_MODEL", "gpt-4o")  # what the field report's machine ran
    result = run(project, *USE)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "interllm: OPENAI_DEFAULT_MODEL=gpt-4o is set: an Agent of yours that names no model runs it",
            "[[]model-mismatch[]] expected gpt-5-codex for the orchestrator (acme-orchestrator), it ran gpt-4o "
            "(its Agent sets no model: the SDK's default)",
            "evidence:",
            "  orchestrator request 1 at ??:??:??: POST */v1/responses model='gpt-4o' status=200",
        ]
    )
    assert {r["session_model"] for r in jsonl(project)} == {"gpt-5-codex"}  # codex itself ran what it was told


def test_instructions_that_never_name_the_model_leave_codex_on_its_own(
    project: pytest.Pytester, orchestrator: Path
) -> None:
    orchestrator.write_text(orchestrator.read_text().replace("model: gpt-5-codex\n", ""))
    result = run(project, *USE, "-k", "scenario_001")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["[[]model-mismatch[]] expected gpt-5-codex, codex session ran *"])
    result.stdout.fnmatch_lines(["  codex tool call arguments: {*} (no model: codex falls back to its own config)"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import acme_missing_package\n", "*--interllm-agent orch:build: cannot import 'orch': ModuleNotFoundError*"),
        ("def build(codex, model):\n    return 'an agent'\n", "*orch:build: returned str, not an agents.Agent*"),
        ("x = 1\n", "*--interllm-agent orch:build: orch has no callable 'build'"),
        ("def build(codex, model):\n    raise KeyError('model')\n", "*orch:build: calling it failed: KeyError*"),
        ("import sys\ndef build(codex, model):\n    sys.exit(3)\n", "*orch:build: calling it failed: SystemExit: 3"),
        (
            "def build(codex, model):\n    raise GeneratorExit('gone')\n",
            "*orch:build: calling it failed: GeneratorExit: gone",
        ),
        (
            "import time\ndef build(codex, model):\n    time.sleep(3600)\n",
            "*orch:build: the factory did not return within 5s (--interllm-timeout); it is blocked in build at "
            "orch.py:3",
        ),
    ],
)
def test_a_factory_that_cannot_be_used_is_one_usage_error(project: pytest.Pytester, source: str, message: str) -> None:
    write(project.path / "orch.py", source)
    started = time.monotonic()
    result = project.runpytest_subprocess(*USE, "--interllm-timeout", "5", timeout=60)
    assert time.monotonic() - started < 40  # a factory that never returns does not hold up pytest's exit
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-interllm: {message}"])
    assert "START scenario" not in result.stdout.str()


def test_a_users_agent_needs_the_agents_executor(project: pytest.Pytester, orchestrator: Path) -> None:
    result = project.runpytest(*USE, "--interllm-executor", "codex", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --interllm-agent: a user's orchestrator runs with the agents executor, not codex"]
    )


HAND_WRITTEN = """
from agents import Agent

from orch import INSTRUCTIONS


def test_my_orchestrator(interllm_agents):
    agent = Agent(name="acme-orchestrator", model="gpt-5-codex", instructions=INSTRUCTIONS,
                  mcp_servers=[interllm_agents.codex])
    outcome = interllm_agents.run(
        agent, "Scenario 1: Copy logs\\n\\nWrite the complete document to the file `outputs/mine.md`.",
        output_file="outputs/mine.md", model="gpt-5-codex",
    )
    interllm_agents.check(outcome)
    assert outcome.session_model == "gpt-5-codex" and set(outcome.orchestrator_models) == {"gpt-5-codex"}
    assert outcome.orchestrator["name"] == "acme-orchestrator"
    assert any(s["span_data"]["type"] == "function" for s in outcome.spans)


def test_my_orchestrator_without_a_model(interllm_agents):
    agent = Agent(name="acme-orchestrator", instructions=INSTRUCTIONS, mcp_servers=[interllm_agents.codex])
    outcome = interllm_agents.run(
        agent, "Scenario 2: Copy more\\n\\nWrite the complete document to the file `outputs/mine2.md`.",
        output_file="outputs/mine2.md", model="gpt-5-codex",
    )
    try:
        interllm_agents.check(outcome)
    except Exception as failure:
        assert failure.failure_class == "model-mismatch"
        assert "for the orchestrator (acme-orchestrator)" in str(failure)
    else:
        raise AssertionError("an agent without a model passed")
"""


def test_hand_written_tests_use_their_own_agent(project: pytest.Pytester, orchestrator: Path) -> None:
    project.makepyfile(test_mine=HAND_WRITTEN)
    result = run(project, "test_mine.py")
    result.assert_outcomes(passed=2)


def test_a_spec_without_an_attribute_is_a_usage_error(project: pytest.Pytester, orchestrator: Path) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--interllm-agent", "orch", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-interllm: --interllm-agent 'orch': expected module:attr*"])


# A user's module whose factory or hook blocks (beside `orch`, the example): each blocks once, the first time.
BLOCKING = """
import itertools
import threading
import time
from pathlib import Path

from agents import Agent, AgentHooks

from orch import INSTRUCTIONS
from pytest_interllm.codex.process import children

_once = threading.Lock()
_calls = itertools.count()


class Hooks(AgentHooks):
    async def on_start(self, context, agent):
        if not _once.acquire(blocking=False):
            return
        home = agent.mcp_servers[0].params.env["CODEX_HOME"]
        for pid in children():  # this scenario's codex, for the test to watch
            try:
                if f"CODEX_HOME={home}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\\0"):
                    Path("blocked.pid").write_text(str(pid))
            except OSError:
                continue
        time.sleep(3600)  # holds the event loop: a blocking call in an async hook


def hooked(codex, model):
    return Agent(name="acme-orchestrator", model=model, instructions=INSTRUCTIONS, mcp_servers=[codex], hooks=Hooks())


def slow(codex, model):
    if next(_calls) == 2:  # call 0 is the start-up check: one scenario's call never returns
        time.sleep(3600)
    return Agent(name="acme-orchestrator", model=model, instructions=INSTRUCTIONS, mcp_servers=[codex])
"""


def line_of(text: str) -> int:
    """The line of `slow.py` that starts with `text`."""
    return next(n for n, line in enumerate(BLOCKING.splitlines(), 1) if line.startswith(text))


class LastSeen(Watch):
    """A `Watch` that also remembers when each codex server was last seen alive (wall clock)."""

    def __init__(self, cwd: Path) -> None:
        self.last: dict[int, float] = {}
        super().__init__(cwd)

    def _poll(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            pids = codex_pids(self.cwd)
            self.seen |= pids
            self.last.update(dict.fromkeys(pids, now))
            time.sleep(0.05)


@pytest.mark.parametrize("concurrency", ["1", "2"])
@pytest.mark.long
def test_a_hook_that_blocks_times_out_and_its_codex_is_killed(
    project: pytest.Pytester, orchestrator: Path, monkeypatch: pytest.MonkeyPatch, concurrency: str
) -> None:
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "0.5")  # the run goes on well after the blocked scenario
    write(project.path / "slow.py", BLOCKING)
    write(project.path / "input" / "list.md", "".join(f"- Copy partner bucket {i} to the archive\n" for i in range(5)))
    watch = LastSeen(project.path)
    proc = start(
        project,
        "--interllm",
        "input/list.md",
        "--interllm-agent",
        "slow:hooked",
        "--interllm-timeout",
        "5",
        "--interllm-concurrency",
        concurrency,
    )
    try:
        out = ended(proc, 150)  # no hang at exit, though one thread sleeps for an hour
    finally:
        proc.kill()
        proc.communicate()
    seen = watch.stop()
    assert "1 failed, 4 passed" in out, out
    where = f"on_start at slow.py:{line_of('        time.sleep(3600)')}"
    assert (
        f"[timeout] a hook of your agent blocked the orchestrator's event loop past the 5s timeout: {where} "
        "(a blocking call in an async hook, such as time.sleep); abandoned, its codex killed" in out
    ), out
    records = jsonl(project)
    [failed] = [r for r in records if r["result"] == "failed"]
    assert max(r["ended_at"] for r in records) > failed["ended_at"] + 2  # others ran on after it
    blocked = int((project.path / "blocked.pid").read_text())
    assert blocked in watch.last and watch.last[blocked] < failed["ended_at"] + 0.5  # killed with its scenario
    assert seen and [pid for pid in seen if alive(pid)] == []


@pytest.mark.long
def test_a_factory_that_blocks_on_a_scenario_times_out_and_the_others_go_on(
    project: pytest.Pytester, orchestrator: Path
) -> None:
    write(project.path / "slow.py", BLOCKING)
    args = ("--interllm", "input/list.md", "--interllm-agent", "slow:slow", "--interllm-timeout", "5")
    result = project.runpytest_subprocess(*args, "--interllm-concurrency", "2", timeout=120)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]timeout[]] your agent factory slow:slow did not return within 5s (blocked in slow at "
            f"slow.py:{line_of('    if next(_calls) == 2:') + 1}); abandoned"
        ]
    )
