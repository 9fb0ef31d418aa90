"""Judged expectations: a rubric per scenario, graded through the scenario's own provider, audited and replayed."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import pytest

from pytest_interllm import grader
from pytest_interllm.checks import check_outcome
from pytest_interllm.outcome import ScenarioOutcome
from tests.conftest import StandIn, run, write
from tests.test_providers import log_of
from tests.test_report import report_texts

RUBRIC = """\
1:
  rubric:
    - Says how to roll back ("rollback")
    - Says how to check the result ("verification")
2:
  rubric:
    - Says how to roll back ("rollback")
    - Uses "quantum key distribution" for the keys
3:
  rubric: Explains the verification and the rollback steps
"""


def log(result: pytest.RunResult, project: pytest.Pytester) -> dict[int, dict[str, Any]]:
    return {r["index"]: r for r in log_of(result, project)}


def test_a_rubric_passes_or_names_the_failed_criterion(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", RUBRIC)
    result = run(project, "--interllm", "input/list.md", "--html=r.html", "--interllm-summary", "s.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            '[[]rubric-failed[]] 1 of 2 criteria failed: Uses "quantum key distribution" for the keys',
            "evidence:",
            "  grader: the scripted grader (quoted phrases and content words matched in the file; not a model)",
            "  ✓ Says how to roll back (\"rollback\") — found 'rollback'",
            "  ✗ Uses \"quantum key distribution\" for the keys — missing 'quantum key distribution'",
        ]
    )
    records = log(result, project)
    schema = json.loads(resources.files("pytest_interllm.schema").joinpath("run-record.schema.json").read_text())
    for record in records.values():
        jsonschema.validate(record, schema)
    assert [c["verdict"] for c in records[1]["rubric"]] == ["pass", "pass"]
    assert records[3]["rubric"][0]["reason"] == "2 of 4 content words present (verification, rollback)"
    # The grader's request is audited beside codex's, marked as the grader's; codex's model check ignores it.
    assert [q["grader"] for q in records[2]["requests"]] == [False, False, True]
    assert records[2]["provider_models"] == ["gpt-5-codex", "gpt-5-codex"]
    texts = report_texts(project.path / "r.html")
    failing = next(t for i, t in texts.items() if "scenario_002" in i)
    assert "rubric (2 criteria)" in failing and "graded by the scripted grader" in failing
    assert "grader request POST" in failing
    summary = (project.path / "s.md").read_text()
    assert '| ❌ 1/2: Uses "quantum key distribution" for the keys |' in summary and "| ✅ 2/2 |" in summary


def test_a_graded_run_replays_with_the_same_verdicts(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", RUBRIC)
    recorded = run(project, "--interllm", "input/list.md", "--interllm-provider", "record")
    recorded.assert_outcomes(passed=2, failed=1)
    replayed = run(project, "--interllm", "input/list.md", "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=2, failed=1)
    replayed.stdout.fnmatch_lines(["interllm: proxy: 9 requests, 0 sent upstream, 9 replayed*"])
    assert "cassette-mismatch" not in replayed.stdout.str()
    before, after = log(recorded, project), log(replayed, project)
    assert [(r["rubric"], r["result"]) for r in before.values()] == [(r["rubric"], r["result"]) for r in after.values()]


def test_a_real_provider_grades_with_the_grader_model_and_votes(
    project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-grader-real-key-5a4b3c2d1e0f"
    server = upstream((key,))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    write(project.path / "scenarios" / "list.yaml", '1:\n  rubric: [Says how to roll back ("rollback")]\n')
    args = (
        "--interllm-base-url",
        server.url,
        "--interllm-grader-model",
        "gpt-5.2-codex",
        "--interllm-grader-votes",
        "3",
    )
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001", *args, "--interllm-preflight", "off")
    result.assert_outcomes(passed=1, deselected=2)
    [record] = log(result, project).values()
    graders = [q for q in record["requests"] if q["grader"]]
    assert [q["model"] for q in graders] == ["gpt-5.2-codex"] * 3  # another model than the scenario's: allowed
    assert record["grader"] == "gpt-5.2-codex, temperature 0, 3 votes" and record["rubric"][0]["votes"] == "3/3"
    bodies = [h for h in server.seen if h.get("user-agent") == grader.USER_AGENT]
    assert len(bodies) == 3 and {h["authorization"] for h in bodies} == {f"Bearer {key}"}
    assert record["cost_usd"] > 0


def test_every_repeated_attempt_is_graded(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", '2:\n  rubric: Uses "quantum key distribution" for the keys\n')
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_002", "--interllm-repeat", "2")
    result.assert_outcomes(failed=1, deselected=2)
    [record] = log(result, project).values()
    assert [r["failure_class"] for r in record["runs"]] == ["rubric-failed", "rubric-failed"]
    assert all(r["rubric"][0]["verdict"] == "fail" for r in record["runs"])


def test_the_majority_decides_and_a_split_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    ballots = iter(
        [
            [{"verdict": "pass", "reason": "yes"}],
            [{"verdict": "fail", "reason": "no"}],
            [{"verdict": "pass", "reason": "yes"}],
        ]
    )
    monkeypatch.setattr(grader, "_ask", lambda *args: next(ballots))
    rubric = grader.grade("http://x/v1", "t", "m", ["c"], "doc", 3, 5, "model")
    [criterion] = rubric.criteria
    assert (criterion.passed, criterion.votes, criterion.reason) == (True, "2/3", "yes")
    outcome = ScenarioOutcome("p", "m", "o", output_exists=True, output_size=3, output_text="doc")
    outcome.rubric = [{"criterion": "c", "verdict": "fail", "reason": "no", "votes": "1/3"}]
    failure = check_outcome(outcome)
    assert failure is not None and failure.failure_class == "rubric-failed"
    assert "✗ c — no (votes 1/3)" in failure.evidence


def test_a_model_without_temperature_is_asked_again_and_an_unusable_grader_is_a_provider_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, Any]] = []

    def ask(url: str, token: str, body: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        seen.append(body)
        if "temperature" in body:
            raise grader.GraderError("HTTP 400: Unsupported parameter: 'temperature' is not supported with this model")
        return [{"verdict": "pass", "reason": "ok"}]

    monkeypatch.setattr(grader, "_ask", ask)
    assert grader.grade("http://x/v1", "t", "m", ["c"], "doc", 1, 5, "model").criteria[0].passed
    assert ["temperature" in body for body in seen] == [True, False]
    monkeypatch.setattr(grader, "_ask", lambda *a: (_ for _ in ()).throw(grader.GraderError("HTTP 500: boom")))
    rubric = grader.grade("http://x/v1", "t", "m", ["c"], "doc", 1, 5, "model")
    outcome = ScenarioOutcome("p", "m", "o", output_exists=True, output_size=3, output_text="doc")
    outcome.grader_error = rubric.error
    failure = check_outcome(outcome)
    assert failure is not None and failure.failure_class == "provider-error"
    assert failure.headline == "the grader could not judge the rubric: HTTP 500: boom"


@pytest.mark.parametrize("executor", ["agents", "app-server"])
def test_every_executor_is_graded(project: pytest.Pytester, executor: str) -> None:
    write(project.path / "scenarios" / "list.yaml", RUBRIC)
    result = run(project, "--interllm", "input/list.md", "--interllm-executor", executor, "-k", "not scenario_003")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ['[[]rubric-failed[]] 1 of 2 criteria failed: Uses "quantum key distribution" for the keys']
    )
    record = log(result, project)[2]
    assert [q["grader"] for q in record["requests"]][-1] is True
