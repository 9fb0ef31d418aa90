"""The Agents SDK executor: the original orchestration, offline, with the real SDK and the real codex."""

from __future__ import annotations

import pytest

from tests.conftest import assert_nothing_left_open, jsonl, outputs, run, strict, write
from tests.test_report import report_texts


def records(project: pytest.Pytester) -> dict[int, dict]:
    return {r["index"]: r for r in jsonl(project)}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_scenarios_pass_through_the_sdk_with_a_span_tree(project: pytest.Pytester, xdist: list[str]) -> None:
    result = run(
        project,
        "--interllm",
        "input/list.md",
        "--interllm-executor",
        "agents",
        "--html=reports/report.html",
        "--self-contained-html",
        *xdist,
        *strict(project),
    )
    result.assert_outcomes(passed=3)
    assert_nothing_left_open(result)
    assert outputs(project) == ["scenario_001.md", "scenario_002.md", "scenario_003.md"]
    result.stdout.fnmatch_lines(
        [
            "interllm: * executor agents",
            "interllm: orchestrator (OpenAI Agents SDK) model gpt-5-codex, tracing kept local*",
        ]
    )
    by_index = records(project)
    for record in by_index.values():
        kinds = [s["type"] for s in record["spans"]]
        assert {"agent", "response", "function", "mcp_tools"} <= set(kinds)
        assert record["orchestrator_models"] and set(record["orchestrator_models"]) == {"gpt-5-codex"}
        assert record["session_model"] == "gpt-5-codex" and set(record["provider_models"]) == {"gpt-5-codex"}
        assert record["codex_arguments"]["model"] == "gpt-5-codex"
        assert record["final_output"].startswith("Wrote the plan for")
        assert any(i["type"] == "tool_call_item" for i in record["agent_items"])
        assert record["agent_usage"]["requests"] == 2
    for text in report_texts(project.path / "reports" / "report.html").values():
        assert "Agents SDK spans (" in text and "agent interllm-orchestrator" in text


def test_orchestrator_omitting_the_model_is_a_mismatch(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "2:\n  fault: omit-model\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-executor", "agents")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]model-mismatch[]] expected gpt-5-codex, codex session ran gpt-4o (session_configured at ??:??:??)",
            "evidence:",
            "  session_configured at ??:??:??: model='gpt-4o'",
            "  provider request 1 at ??:??:??: POST */v1/responses model='gpt-4o' status=200",
        ]
    )
    result.stdout.fnmatch_lines(["  codex tool call arguments: {*} (no model: codex falls back to its own config)"])
    record = records(project)[2]
    assert record["orchestrator_models"] == ["gpt-5-codex", "gpt-5-codex"]
    assert "model" not in record["codex_arguments"]


def test_call_tool_result_cascade_is_mcp_protocol_with_the_raw_payload(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: mcp-no-content\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-executor", "agents", "-k", "scenario_001")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "[[]mcp-protocol[]] codex answered the tool call with an error result without structuredContent*",
            "*raw result text: 'Failed to parse configuration for Codex tool: unknown variant `sometimes`*",
        ]
    )


def test_provider_error_on_the_orchestrator_request(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: http-401\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-executor", "agents", "-k", "scenario_001")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["[[]provider-error[]] the orchestrator's model request failed with HTTP 401*"])


def test_executor_from_the_ini_and_default_model_env_ignored(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makeini("[pytest]\naddopts = -p no:cacheprovider\ninterllm_executor = agents\n")
    monkeypatch.setenv("OPENAI_DEFAULT_MODEL", "gpt-4o")
    result = run(
        project, "--interllm", "input/list.md", "-k", "scenario_003", "--interllm-orchestrator-model", "gpt-5.2-codex"
    )
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "interllm: OPENAI_DEFAULT_MODEL=gpt-4o is set and ignored*",
            "interllm: orchestrator (OpenAI Agents SDK) model gpt-5.2-codex, tracing kept local*",
        ]
    )
    record = records(project)[3]
    assert set(record["orchestrator_models"]) == {"gpt-5.2-codex"}
    assert record["session_model"] == "gpt-5-codex" and set(record["provider_models"]) == {"gpt-5-codex"}


def test_trace_upload_needs_a_real_key(project: pytest.Pytester) -> None:
    result = project.runpytest(
        "--interllm", "input/list.md", "--interllm-executor", "agents", "--interllm-upload-traces", "--collect-only"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --interllm-upload-traces: traces go to the OpenAI dashboard only with*"])
