"""The checks on hand-built evidence: each rule of the model and output-file assertions, one at a time."""

from __future__ import annotations

import pytest

from pytest_interllm.checks import check_model, check_outcome
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome


def request(model: str | None, thread: str = "t-session") -> AuditRecord:
    return AuditRecord(
        time=0.0,
        method="POST",
        path="/v1/responses",
        model=model,
        status=200,
        thread_id=thread,
        user_agent="codex_cli_rs/0.153.4",
        latency=0.1,
    )


def outcome(session: str | None = "gpt-5-codex", *requests: AuditRecord, size: int = 120) -> ScenarioOutcome:
    return ScenarioOutcome(
        prompt="p",
        expected_model="gpt-5-codex",
        output_path="outputs/scenario_001.md",
        session_model=session,
        requests=list(requests),
        provider_models=[r.model for r in requests],
        thread_id="t-session",
        output_exists=True,
        output_size=size,
        output_text="x" * size,
    )


def test_the_expected_model_everywhere_passes() -> None:
    assert check_outcome(outcome("gpt-5-codex", request("gpt-5-codex"), request("gpt-5-codex"))) is None


def test_a_request_on_another_model_fails_although_the_session_matches() -> None:
    failure = check_model(outcome("gpt-5-codex", request("gpt-5-codex"), request("gpt-5.6-luna", "t-sub")))
    assert failure is not None and failure.failure_class == "model-mismatch"
    assert (
        failure.headline
        == "expected gpt-5-codex, the provider was asked for gpt-5.6-luna by a sub-agent the agent spawned"
    )
    assert failure.group == "agent"  # the agent's own sub-agent chose the model
    assert failure.evidence[2] == (
        "provider request 2 at ?: POST /v1/responses model='gpt-5.6-luna' status=200 thread=t-sub "
        "(not the session's thread)"
    )


def test_another_model_on_the_sessions_own_thread_is_the_configurations() -> None:
    failure = check_model(outcome("gpt-5-codex", request("gpt-5-codex"), request("gpt-4o")))
    assert failure is not None and failure.failure_class == "model-mismatch"
    assert failure.headline == "expected gpt-5-codex, the provider was asked for gpt-4o"
    assert failure.group == "configuration"  # the request (or its configuration) asked for it
    session = check_model(outcome("gpt-4o", request("gpt-4o")))
    assert session is not None and session.group == "configuration"


def test_an_empty_request_model_is_empty_model() -> None:
    failure = check_model(outcome("gpt-5-codex", request("gpt-5-codex"), request("")))
    assert failure is not None and failure.failure_class == "empty-model"


def test_the_session_model_is_checked_before_the_requests() -> None:
    failure = check_model(outcome("gpt-4o", request("gpt-4o")))
    assert failure is not None and failure.headline.startswith("expected gpt-5-codex, codex session ran gpt-4o")


@pytest.mark.parametrize(("exists", "size", "state"), [(True, 0, "is empty"), (False, 0, "was not created")])
def test_an_empty_or_missing_output_file_fails(exists: bool, size: int, state: str) -> None:
    evidence = outcome("gpt-5-codex", request("gpt-5-codex"), size=size)
    evidence.output_exists = exists
    failure = check_outcome(evidence)
    assert failure is not None and failure.failure_class == "no-output-file"
    assert failure.headline.startswith(f"outputs/scenario_001.md {state}; the agent replied:")


def test_the_log_schema_knows_every_failure_class() -> None:
    import json
    from importlib import resources

    from pytest_interllm.errors import FAILURE_CLASSES

    schema = json.loads(resources.files("pytest_interllm.schema").joinpath("run-record.schema.json").read_text())
    assert schema["$defs"]["scenario"]["properties"]["failure_class"]["enum"] == [None, *FAILURE_CLASSES]
