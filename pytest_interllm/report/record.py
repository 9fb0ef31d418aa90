"""One JSON-able record per scenario: what the report, the JSONL log and the summary are made from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pytest_interllm.errors import CONFIGURATION, ScenarioFailure
from pytest_interllm.outcome import ScenarioOutcome


class AttemptView(Protocol):
    """One counted attempt of an item, as the report reads it."""

    number: int
    outcome: ScenarioOutcome
    failure: ScenarioFailure | None
    replaced: list[ScenarioFailure]  # earlier runs that failed for infrastructure, re-run in its place


class VerdictView(Protocol):
    """An item's attempts and their figures, as the report reads them (the run layer's `Verdict` is one)."""

    @property
    def attempts(self) -> Sequence[AttemptView]: ...

    def record(self) -> dict[str, Any] | None: ...


PREVIEW_LINES = 12
TEXT_LIMIT = 200_000
OUTPUT_LIMIT = 20_000  # the output file's text, for a later run's baseline diff


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def build(
    *,
    index: int,
    name: str,
    title: str,
    section: str,
    nodeid: str,
    outcome: ScenarioOutcome | None,
    result: str,
    failure: str | None,
    expected_model: str,
    executor: str = "codex",
    free: bool = False,
    failure_class: str | None = None,
    failure_group: str | None = None,
    verdict: VerdictView | None = None,
) -> dict[str, Any]:
    """The record of one scenario, pass or fail; `outcome` is None when it never reached codex."""
    record: dict[str, Any] = {
        "index": index,
        "name": name,
        "title": title,
        "section": section,
        "nodeid": nodeid,
        "result": result,
        "expected_model": expected_model,
        "failure_class": None,
        "failure_group": None,
        "failure": failure,
        "prompt": "",
        "final_output": "",
        "session_model": None,
        "provider_models": [],
        "requests": [],
        "tool_calls": [],
        "events": [],
        "output_path": None,
        "output_exists": False,
        "output_preview": "",
        "tokens_in": 0,
        "tokens_out": 0,
        "duration": 0.0,
        "error": None,
        "fault": None,
        "attempts": 1,
        "provider_retries": 0,
        "thread_id": None,
        "cost_usd": None if free else 0.0,
        "executor": executor,
        "expected_config": {},
        "session_config": {},
        "output_text": "",
        "output_notes": [],
        "reruns": [],
        "infra_reruns": [],
        "repeat": None,
        "runs": [],
        "rubric": [],
        "grader": None,
        "trajectory": [],
        "workspace": None,
        "workspace_kept": False,
        "workspace_diff": None,
        "check": None,
        "started_at": None,
        "ended_at": None,
    }
    if outcome is None:
        # It never reached codex (its list, its output path): nothing of the agent's was measured.
        record.update(failure_group=CONFIGURATION if result == "failed" else None)
        return record
    record.update(_evidence(outcome, free))
    record.update(failure_class=failure_class, failure_group=failure_group)
    if verdict is not None:
        many = len(verdict.attempts) > 1
        record["infra_reruns"] = [
            f"attempt {a.number}: {failure}" if many else str(failure)
            for a in verdict.attempts
            for failure in a.replaced
        ]
    if verdict is not None and len(verdict.attempts) > 1:
        record["repeat"] = verdict.record()
        record["runs"] = [
            {
                "attempt": a.number,
                "result": "failed" if a.failure else "passed",
                "failure_class": a.failure.failure_class if a.failure else None,
                "failure_group": a.failure.group if a.failure else None,
                "failure": str(a.failure) if a.failure else None,
                **{k: v for k, v in _evidence(a.outcome, free).items() if k in RUN_KEYS},
            }
            for a in verdict.attempts
        ]
        # The item's totals are its attempts' (the evidence shown is one attempt's).
        runs = [a.outcome for a in verdict.attempts]
        record.update(
            tokens_in=sum(o.tokens_in for o in runs),
            tokens_out=sum(o.tokens_out for o in runs),
            duration=round(sum(o.duration for o in runs), 4),
            cost_usd=None if free else round(sum(o.cost_usd for o in runs), 6),
            output_notes=[note for o in runs for note in o.output_notes],
            reruns=[why for o in runs for why in o.reruns],
        )
        # The output file the item left is the last attempt's that wrote one (the shown attempt may be a failed
        # one that wrote nothing): its text feeds a later run's baseline diff.
        wrote = [o for o in runs if o.output_exists]
        if wrote:
            record.update(
                output_path=wrote[-1].output_path,
                output_exists=True,
                output_preview="\n".join(wrote[-1].output_text.splitlines()[:PREVIEW_LINES]),
                output_text=_clip(wrote[-1].output_text, OUTPUT_LIMIT),
            )
    if outcome.spans or outcome.orchestrator_requests:
        record.update(
            orchestrator_models=list(outcome.orchestrator_models),
            codex_arguments={k: v for k, v in outcome.arguments.items() if k != "prompt"},
            spans=[_span(s) for s in outcome.spans],
            agent_items=outcome.agent_items,
            agent_usage=outcome.agent_usage,
            orchestrator=dict(outcome.orchestrator),
        )
    return record


# What each repeated attempt keeps in the log, beside its result.
RUN_KEYS = (
    "final_output",
    "rubric",
    "session_model",
    "provider_models",
    "tool_calls",
    "output_exists",
    "output_preview",
    "tokens_in",
    "tokens_out",
    "duration",
    "cost_usd",
    "thread_id",
    "trajectory",
    "workspace",
    "workspace_kept",
    "workspace_diff",
    "check",
)


def _evidence(outcome: ScenarioOutcome, free: bool) -> dict[str, Any]:
    """The record's fields that come from one run's outcome."""
    return dict(
        prompt=_clip(outcome.prompt),
        final_output=_clip(outcome.final_output),
        session_model=outcome.session_model,
        provider_models=list(outcome.provider_models),
        requests=[
            {
                "time": r.time,
                "path": r.path,
                "model": r.model,
                "status": r.status,
                "latency": round(r.latency, 4),
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "thread_id": r.thread_id,
                "replayed": r.replayed,
                "sandbox_mode": r.sandbox_mode,
                "grader": grader,
                "served_model": r.served_model,
                "error_code": r.error_code,
                "error_message": r.error_message,
                "cached_tokens": r.cached_tokens,
                "reasoning_tokens": r.reasoning_tokens,
                "request_id": r.request_id,
                "turn_state": r.turn_state,
                "plan_usage": dict(r.plan_usage),
                "first_delta": r.first_delta,
                "upstream_done": r.upstream_done,
                "body_sha256": r.body_sha256,
                "local": r.local,
            }
            for grader, requests in ((False, outcome.requests), (True, outcome.grader_requests))
            for r in requests
        ],
        rubric=[dict(c) for c in outcome.rubric],
        grader=outcome.grader,
        tool_calls=[
            {
                "call_id": c.call_id,
                "command": _clip(c.command, 20_000),
                "exit_code": c.exit_code,
                "duration": c.duration,
                "output": _clip(c.output, 20_000),
                "ok": c.exit_code == 0,
            }
            for c in outcome.tool_calls
        ],
        events=[{"time": e.time, "type": e.type} for e in outcome.events if e.type != "raw_response_item"],
        output_path=outcome.output_path,
        output_exists=outcome.output_exists,
        output_preview="\n".join(outcome.output_text.splitlines()[:PREVIEW_LINES]),
        tokens_in=outcome.tokens_in,
        tokens_out=outcome.tokens_out,
        duration=round(outcome.duration, 4),
        error=outcome.error,
        fault=outcome.fault,
        attempts=outcome.attempts,
        provider_retries=outcome.provider_retries,
        thread_id=outcome.thread_id,
        cost_usd=None if free else round(outcome.cost_usd, 6),
        output_notes=list(outcome.output_notes),
        reruns=list(outcome.reruns),
        expected_config=dict(outcome.expected_config),
        session_config=dict(outcome.session_config),
        output_text=_clip(outcome.output_text, OUTPUT_LIMIT),
        trajectory=[
            {**step, "diff": _clip(step["diff"], OUTPUT_LIMIT)} if "diff" in step else dict(step)
            for step in outcome.trajectory
        ],
        workspace=outcome.workspace,
        workspace_kept=outcome.workspace_kept,
        workspace_diff=None
        if outcome.workspace_diff is None
        else [{**d, "diff": _clip(d["diff"], OUTPUT_LIMIT)} for d in outcome.workspace_diff],
        check=dict(outcome.check) if outcome.check is not None else None,
    )


def _span(span: dict[str, Any]) -> dict[str, Any]:
    """The parts of an exported Agents SDK span that explain a run."""
    data = span.get("span_data") or {}
    return {
        "id": span.get("id"),
        "parent_id": span.get("parent_id"),
        "type": data.get("type"),
        "name": data.get("name") or data.get("server") or "",
        "started_at": span.get("started_at"),
        "ended_at": span.get("ended_at"),
        "input": _clip(str(data.get("input") or data.get("result") or ""), 4000),
        "output": _clip(str(data.get("output") or ""), 4000),
        "error": span.get("error"),
    }
