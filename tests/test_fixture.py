"""The `interllm_codex` fixture in hand-written tests, and the model assertion both ways."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import StandIn, outputs, run, write

HAND_WRITTEN = """
import os

import pytest
from pytest_interllm.errors import ScenarioFailure

PROMPT = "Scenario 1: Copy logs\\n\\n- gzip them\\n\\nWrite the complete document to the file `outputs/hand.md`."


def test_expected_model_runs(interllm_codex):
    outcome = interllm_codex.run(PROMPT, output_file="outputs/hand.md", model="gpt-5-codex")
    interllm_codex.check(outcome)
    assert outcome.session_model == "gpt-5-codex"
    assert outcome.provider_models == ["gpt-5-codex", "gpt-5-codex"]
    assert [(r.status, r.thread_id) for r in outcome.requests] == [(200, outcome.thread_id)] * 2
    types = [e.type for e in outcome.events]
    assert types[0] == "session_configured" and types[-1] == "task_complete" and "exec_command_end" in types
    [call] = outcome.tool_calls
    assert call.exit_code == 0 and call.command.startswith("mkdir -p outputs && cat > outputs/hand.md")
    assert outcome.output_text.startswith("# Scenario 1: Copy logs")
    assert outcome.tokens_in > 0 and outcome.tokens_out > 0
    assert outcome.cost_usd == 0.0  # the scripted model: no spend


def test_model_left_to_codex_config_is_a_mismatch(interllm_codex):
    outcome = interllm_codex.run(PROMPT, output_file="outputs/hand.md", model=None, expected_model="gpt-5-codex")
    with pytest.raises(ScenarioFailure) as info:
        interllm_codex.check(outcome)
    assert info.value.failure_class == "model-mismatch"
    assert str(info.value).startswith("[model-mismatch] expected gpt-5-codex, codex session ran gpt-4o")
    assert outcome.session_model == "gpt-4o"
    assert set(outcome.provider_models) == {"gpt-4o"}
    assert "final_output" not in outcome.final_output and outcome.final_output.startswith("Wrote the plan")


def test_codex_gets_only_its_own_environment(interllm_codex):
    outcome = interllm_codex.run(PROMPT, output_file="outputs/hand.md", model="gpt-5-codex")
    with open(f"/proc/{outcome.codex_pid}/environ", "rb") as fh:
        environ = dict(e.split(b"=", 1) for e in fh.read().split(b"\\0") if e)
    # Ours, and what mcp's stdio client always passes on (USER, SHELL, TERM, LOGNAME): nothing else.
    mcp_defaults = {b"LOGNAME", b"SHELL", b"TERM", b"USER"}
    assert set(environ) - mcp_defaults == {b"CODEX_HOME", b"HOME", b"INTERLLM_PROVIDER_KEY", b"LANG", b"PATH"}
    assert environ[b"HOME"] != os.environ["HOME"].encode()  # a clean HOME: no shell setup of the user's
    assert os.environ["OPENAI_API_KEY"].encode() not in b"".join(environ.values())


@pytest.mark.interllm(model="gpt-5.2-codex", timeout=2)
def test_marker_sets_model_and_timeout(interllm_codex):
    outcome = interllm_codex.run(PROMPT, output_file="outputs/hand.md")
    interllm_codex.check(outcome)
    assert outcome.session_model == "gpt-5.2-codex"
    stalled = interllm_codex.run(PROMPT, output_file="outputs/hand.md", fault="stall")
    with pytest.raises(ScenarioFailure, match=r"^\\[timeout\\] no answer from codex within 2s"):
        interllm_codex.check(stalled)
"""


@pytest.fixture
def codex_home(project: pytest.Pytester) -> str:
    """A CODEX_HOME whose config.toml defaults to gpt-4o, like the field report's machine."""
    write(project.path / "codex-home" / "config.toml", 'model = "gpt-4o"\n')
    project.makepyfile(test_hand=HAND_WRITTEN)
    return str(project.path / "codex-home")


def test_model_assertion_passes_and_fails_for_real(
    project: pytest.Pytester, codex_home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-never-for-codex-0a1b2c3d4e")
    result = run(project, "test_hand.py", "--interllm-codex-home", codex_home, "--interllm-provider", "offline", "-v")
    result.assert_outcomes(passed=4)
    # Each run removes the file first, so the last (stalled) run leaves none: a stale file never passes.
    assert outputs(project) == []


def test_explicit_model_beats_a_codex_config_default(project: pytest.Pytester, codex_home: str) -> None:
    # Scenario items always pass `model`, so codex's own default cannot take over.
    result = run(project, "--interllm", "input/list.md", "--interllm-codex-home", codex_home, "-k", "scenario_001")
    result.assert_outcomes(passed=1, deselected=2)


def test_hand_written_tests_run_for_real_with_a_real_provider(
    project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `--interllm` lists the fixture still honours the provider: the audit proxy, the user's key."""
    key = "sk-hand-written-real-key-0a9b8c7d6e"
    server = upstream((key,))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    project.makepyfile(
        test_real="""
PROMPT = "Scenario 1: Copy logs\\n\\nWrite the complete document to the file `outputs/real.md`."


def test_real(interllm_codex):
    outcome = interllm_codex.run(PROMPT, output_file="outputs/real.md", model="gpt-5-codex")
    interllm_codex.check(outcome)
    assert outcome.cost_usd > 0  # estimated from the packaged price table: this run spends
    assert [r.status for r in outcome.requests] == [200, 200]
"""
    )
    result = run(project, "test_real.py", "--interllm-provider", "openai", "--interllm-base-url", server.url)
    result.assert_outcomes(passed=1)
    assert len(server.seen) == 2 and {h["authorization"] for h in server.seen} == {f"Bearer {key}"}
