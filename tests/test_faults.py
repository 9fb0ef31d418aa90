"""Every fault of the original script, injected into a real run: classified, explained, contained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_interllm import faults
from pytest_interllm.codex.locate import CodexBinary
from pytest_interllm.codex.process import alive
from pytest_interllm.errors import CLASSES
from pytest_interllm.faults import EXPECTED_CLASS, FAULT_LIST
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome
from pytest_interllm.run.evidence import transient_wait
from pytest_interllm.settings import Settings
from pytest_interllm.wiring import make_executor
from tests.conftest import outputs, run, write
from tests.test_no_orphans import server_pids

HEADLINES = {
    "http-400-empty-model": "expected gpt-5-codex, codex ran with an empty model*",
    "http-401": "codex returned HTTP 401 (invalid_api_key): unexpected status 401 Unauthorized: Incorrect API key*",
    "http-429": "codex returned HTTP 429 (rate_limit_exceeded) after 1 retries: *429 Too Many Requests*",
    "http-500": "codex returned HTTP 500 (server_error) after 1 retries: *",
    "http-503": "codex returned HTTP 503 (server_is_overloaded) after 1 retries: *",
    "stall": "no answer from codex within 3s",
    "bad-sse": "codex returned an error: stream disconnected before completion*",
    "exec-missing": "{out} not written: codex could not start the command",
    "write-outside": "{out} not written: the sandbox refused the write (exit 1)",
    "no-write": "{out} was not created; the agent replied: Here is the plan for*",
    "mcp-no-content": "codex answered the tool call with an error result without structuredContent*",
    "crash": "the codex server died during the call (*Connection closed*)",
    "omit-model": "expected gpt-5-codex, codex session ran gpt-4o (session_configured at ??:??:??)",
    "subagent-model": "expected gpt-5-codex, the provider was asked for gpt-5.6-luna by a sub-agent the agent spawned",
    "wrong-sandbox": "asked for sandbox workspace-write, codex ran with sandbox read-only",
    "reroute": "expected gpt-5-codex, the backend served gpt-5.2 (codex asked for gpt-5-codex; codex says rerouted: "
    "high_risk_cyber_activity)",
    "usage-limit": "the usage limit of the ChatGPT plan (plan plus) is reached until 20??-??-?? ??:?? UTC (in * min): "
    "HTTP 429 usage_limit_reached",
    "stream-failed": "the provider failed the response with server_is_overloaded inside its HTTP 200 stream after 1 "
    "retries (retried after backoff): Our servers are currently overloaded. Please try again later.",
    "token-expiring": "the login expired during the run: HTTP 401 token_expired: Provided authentication token is "
    "expired. Please try signing in again.",
}
# Who caused each fault's failure: its class's group, but the agent's own sub-agent on another model is the agent's.
CAUSED_BY = {fault: CLASSES[cls].group for fault, cls in EXPECTED_CLASS.items() if cls in CLASSES} | {
    "subagent-model": "agent"
}
STOPPED = {
    "usage-limit": "the usage limit of the ChatGPT plan (plan plus) is reached until 20??-??-?? ??:?? UTC (in * min)",
    "token-expiring": "the codex login expired during the run (sign in again with `codex login`)",
}
WRITES = ("omit-model", "subagent-model", "reroute", "slow-stream")  # the agent works and writes its file


@pytest.mark.long
def test_every_fault_is_classified_and_the_scenarios_beside_it_pass(project: pytest.Pytester) -> None:
    """One run: each fault that does not stop the run in its own scenario, a clean scenario before and after each
    (after a crash or a timeout the next one runs on a fresh codex); last, a transient 429 that a provider retry gets
    past. The faults that stop the run: test_a_fault_that_stops_the_run_skips_the_rest."""
    # The faults that change files run in a workspace of their own: test_workspace.py.
    kept = [f for f in EXPECTED_CLASS if not faults.REGISTRY[f].stops_run and not faults.REGISTRY[f].needs_workspace]
    titles: list[str] = []
    for fault in kept:
        titles += [f"Clean copy of partner bucket {len(titles) + 1}", f"Fault {fault}: stream the CDC events"]
    titles += [f"Clean copy of partner bucket {len(titles) + 1}", "Transient 429: rotate the SFTP keys"]
    write(project.path / "input" / "list.md", "".join(f"- {t}\n  - verify the checksums\n" for t in titles))
    at = {fault: 2 * n for n, fault in enumerate(kept, 1)}  # the fault's scenario number
    total = len(titles)
    write(
        project.path / "scenarios" / "list.yaml",
        "".join(f"{at[fault]}:\n  fault: {fault}\n  timeout: 3\n" for fault in kept)
        + f"{total}:\n  fault: http-429\n  fault_requests: 1\n",
    )
    result = run(project, "--interllm", "input/list.md", "--interllm-provider-retries", "1")
    failing = [fault for fault in kept if EXPECTED_CLASS[fault] != "passed"]
    result.assert_outcomes(passed=total - len(failing), failed=len(failing))
    for index, title in enumerate(titles[:-1], 1):
        if index % 2:
            result.stdout.fnmatch_lines([f"*END   scenario {index}/{total}: {title} — PASSED in*"])
    for fault in kept:
        index, expected = at[fault], EXPECTED_CLASS[fault]
        if expected == "passed":
            result.stdout.fnmatch_lines([f"*END   scenario {index}/{total}: Fault {fault}: *— PASSED in*"])
            continue
        result.stdout.fnmatch_lines([f"*END   scenario {index}/{total}: Fault {fault}: *— FAILED [[]{expected}[]]*"])
        headline = HEADLINES[fault].format(out=f"outputs/scenario_{index:03d}.md")
        result.stdout.fnmatch_lines(
            [f"[[]{expected}[]] {headline}", f"caused by: {CAUSED_BY[fault]}*", "*check next: *"]
        )
    # Our own hard timeout is never retried.
    assert "provider retr" not in next(line for line in result.outlines if f"END   scenario {at['stall']}/" in line)
    assert "Traceback" not in result.stdout.str()
    # The agent that answered in the conversation instead of writing the file: its final_output is kept.
    result.stdout.fnmatch_lines(
        [
            "final_output:",
            "  Here is the plan for 'Fault no-write: stream the CDC events':",
            "*- [[] []] verify the checksums*",
        ]
    )
    result.stdout.fnmatch_lines([f"*END   scenario {total}/{total}: Transient 429: * — PASSED (1 provider retry) in*"])
    # Under the model faults the agent works (partly on the wrong model) and writes its file; the others prevent it.
    written = [i for i in range(1, total + 1) if i % 2 or i in [at[fault] for fault in WRITES] + [total]]
    assert outputs(project) == [f"scenario_{i:03d}.md" for i in written]


@pytest.mark.parametrize("fault", list(STOPPED))
def test_a_fault_that_stops_the_run_skips_the_rest(project: pytest.Pytester, fault: str) -> None:
    """A spent plan or a login gone on scenario 2: its class and headline; scenario 1 passed, 3 is skipped with the
    reason."""
    assert faults.REGISTRY[fault].stops_run
    write(project.path / "scenarios" / "list.yaml", f"2:\n  fault: {fault}\n  timeout: 3\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-provider-retries", "1", "-rs")
    expected = EXPECTED_CLASS[fault]
    result.stdout.fnmatch_lines(
        [
            "*END   scenario 1/3: Copy the orders table to the warehouse — PASSED in*",
            f"*END   scenario 2/3: Stream CDC events to Kafka — FAILED [[]{expected}[]]*",
            "*END   scenario 3/3: Pick up CSV drops from SFTP — SKIPPED in*",
        ]
    )
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] input/list.md:9: {STOPPED[fault]}: scenario not started"])
    result.stdout.fnmatch_lines([f"interllm: run stopped: {STOPPED[fault]} (1 skipped)"])
    result.stdout.fnmatch_lines([f"[[]{expected}[]] {HEADLINES[fault]}", "*check next: *"])
    assert "Traceback" not in result.stdout.str()
    assert outputs(project) == ["scenario_001.md"]


def test_a_sub_agent_on_another_model_is_caught_by_the_provider_audit(project: pytest.Pytester) -> None:
    """codex's session says the expected model; only the requests the provider received show the sub-agent's."""
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: subagent-model\n")
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "[[]model-mismatch[]] expected gpt-5-codex, the provider was asked for gpt-5.6-luna by a sub-agent the "
            "agent spawned",
            "evidence:",
            "  session_configured at ??:??:??: model='gpt-5-codex'",
            "  provider request 1 at ??:??:??: POST */v1/responses model='gpt-5-codex' status=200",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  provider request ? at ??:??:??: POST */v1/responses model='gpt-5.6-luna' status=200 thread=* "
            "(not the session's thread)",
        ]
    )
    result.stdout.fnmatch_lines(
        ['  tool call interllm_agent_*: `spawn_agent {*"model": "gpt-5.6-luna"}` → {"agent_id"*', "caused by: agent"]
    )
    assert '<property name="interllm_session_model" value="gpt-5-codex"' in (project.path / "junit.xml").read_text()


def test_whole_scenario_rerun_reports_flaky(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: no-write\n  fault_requests: 1\n")
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-retries", "1")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*END   scenario 1/3: * — PASSED (flaky: attempt 2) in*"])
    # Without the retry the same attempt fails: test_repeats_give_one_verdict_per_item (its first attempt).


def test_fault_for_the_whole_run_from_the_environment(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_FAULT", "omit-model")
    result = run(project, "--interllm", "input/list.md", "-n", "2")
    result.assert_outcomes(failed=3)
    headline = "[model-mismatch] expected gpt-5-codex, codex session ran gpt-4o"
    # One headline per failure section; the short summary repeats it (untruncated under CI=true).
    assert [line.startswith(headline) for line in result.stdout.lines].count(True) == 3


def test_unknown_fault_names_the_yaml_line(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1: {}\n2:\n  fault: http-418\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(["*scenarios/list.yaml:3: unknown fault 'http-418' (known: http-400-empty-model*"])


def test_timeout_from_the_command_line_restarts_codex_for_the_next_scenario(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: stall\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-timeout", "2", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["[[]timeout[]] no answer from codex within 2s"])
    stalled, after, last = server_pids(project.path / "junit.xml")
    assert stalled != after == last  # a new server after the timeout, then kept while nothing goes wrong
    assert not alive(stalled)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--interllm-executor", "agents", "--interllm-fault", "crash"],
            {},
            "--interllm-fault: the crash fault is not available with the agents executor*",
        ),
        (
            ["--interllm-provider", "record"],
            {"INTERLLM_FAULT": "no-write"},
            "INTERLLM_FAULT: fault 'no-write' is acted out by the built-in scripted model: it needs "
            "--interllm-provider offline (this run's provider is record)",
        ),
    ],
)
def test_a_fault_this_run_cannot_inject_is_a_usage_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_listed_fault_another_provider_cannot_inject_is_skipped_not_ignored(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: no-write\n2:\n  fault: omit-model\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-provider", "record", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] input/list.md*: fault 'no-write' is acted out by the built-in scripted model*; skipped"]
    )
    # omit-model is the executor's own call: it works with any provider.
    result.stdout.fnmatch_lines(["[[]model-mismatch[]] expected gpt-5-codex, codex session ran gpt-4o*"])


def _audit(status: int, retry_after: float | None = None) -> AuditRecord:
    return AuditRecord(0.0, "POST", "/v1/responses", "gpt-5-codex", status, None, "codex", 0.1, retry_after=retry_after)


@pytest.mark.parametrize(
    ("outcome", "wait"),
    [
        (ScenarioOutcome("p", "m", "o", is_error=True, requests=[_audit(429, 1.0)]), 1.0),  # honours Retry-After
        (ScenarioOutcome("p", "m", "o", is_error=True, requests=[_audit(503)]), 0.5),
        (ScenarioOutcome("p", "m", "o", is_error=True, final_output="stream error: idle timeout waiting for SSE"), 0.5),
        (ScenarioOutcome("p", "m", "o", is_error=True, requests=[_audit(401)]), None),  # not transient
        (ScenarioOutcome("p", "m", "o", timed_out=True, error="no answer", requests=[_audit(429, 1.0)]), None),
        (ScenarioOutcome("p", "m", "o", timed_out=True, error="no answer from codex within 2s"), None),  # ours
    ],
    ids=["429", "503", "idle-stream", "401", "429-then-timeout", "hard-timeout"],
)
def test_which_provider_errors_are_retried(outcome: ScenarioOutcome, wait: float | None) -> None:
    assert transient_wait(outcome) == wait


def test_provider_retries_back_off_exponentially_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        rootdir=tmp_path, lists=(), model="gpt-5-codex", model_explicit=False, provider="offline", executor="codex",
        timeout=5, timeout_explicit=False, max_scenarios=None, codex=None, codex_home=None,
        sandbox="workspace-write", template=None, output_dir=tmp_path / "outputs",
    )  # fmt: skip
    assert settings.provider_retries == 2  # the default
    executor = make_executor(settings, CodexBinary("/nonexistent/codex", "codex-cli 0.153.4"), "unit")
    attempts: list[int] = []

    def rate_limited(*args: object) -> ScenarioOutcome:
        attempts.append(1)
        return ScenarioOutcome("p", "m", "o", is_error=True, final_output="429", requests=[_audit(429, 1.0)])

    sleeps: list[float] = []
    monkeypatch.setattr(executor, "_attempt", rate_limited)
    monkeypatch.setattr("pytest_interllm.run.attempt.time.sleep", sleeps.append)
    try:
        outcome = executor.run("p", output_file="o.md")
    finally:
        executor.close()
    assert len(attempts) == 3 and sleeps == [1.0, 3.0]  # Retry-After 1 s, then doubled (1 × (2² − 1))
    assert outcome.provider_retries == 2 and outcome.retry_errors == ["429", "429"]


def test_the_readme_fault_table_is_the_registry() -> None:
    """Each fault's row in the README (name, what happens, class) is its one entry in faults.py."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| fault | what happens (real codex, scripted model) | class |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.*) \| (?:`([a-z-]+)`|— \(passes\)) \|$", table, re.MULTILINE)
    assert [(name, what, expected or None) for name, what, expected in rows] == [
        (fault.name, fault.what, fault.expected) for fault in FAULT_LIST
    ]
