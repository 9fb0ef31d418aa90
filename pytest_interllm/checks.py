"""The assertions of a scenario, computed from evidence: codex events, provider audit, filesystem."""

from __future__ import annotations

import os
import re
import time

from pytest_interllm.errors import AGENT, ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.provider_checks import check_served, code_text, coded, login_gone, usage_limit
from pytest_interllm.workspace_checks import changes_failure, check_failure, commands_failure

_EMPTY_MODEL = re.compile(r"model is not supported|model[^\n]{0,40}(?:empty|missing|required)", re.IGNORECASE)
_NOT_FOUND = re.compile(r"No such file or directory|command not found|os error 2", re.IGNORECASE)
_API_ERROR = re.compile(
    r"(APIStatusError|APIConnectionError|APITimeoutError|InternalServerError|RateLimitError|AuthenticationError|"
    r"BadRequestError|PermissionDeniedError|NotFoundError|UnprocessableEntityError|ConflictError)\b"
)
_DENIED = re.compile(
    r"Read-only file system|Permission denied|Operation not permitted|os error 13|os error 30", re.IGNORECASE
)


def _clock(when: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when)) if when else "?"


def _tail(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _request_lines(outcome: ScenarioOutcome, who: str = "provider") -> list[str]:
    """One line per audited request: codex's (`provider`), or the Agents SDK orchestrator's."""
    session = outcome.thread_id
    requests = outcome.orchestrator_requests if who == "orchestrator" else outcome.requests
    return [
        f"{who} request {n} at {_clock(r.time)}: POST {r.path} model={r.model!r} status={r.status}"
        + (f" {r.error_code}" if r.error_code else "")
        + (f" x-request-id={r.request_id}" if r.request_id and (r.error_code or r.status >= 400) else "")
        + (f" served by {r.served_model!r}" if r.served_model and r.served_model != r.model else "")
        + (
            f" thread={r.thread_id} (not the session's thread)"
            if session and r.thread_id not in (None, session)
            else ""
        )
        for n, r in enumerate(requests, 1)
    ]


def _session_line(outcome: ScenarioOutcome) -> list[str]:
    if outcome.session_model is None:
        return ["no session_configured event from codex"]
    return [f"session_configured at {_clock(outcome.session_time)}: model={outcome.session_model!r}"]


def check_model(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The session model and every audited request model must equal the expected model."""
    expected = outcome.expected_model
    evidence = _session_line(outcome) + _request_lines(outcome)
    if outcome.arguments:
        shown = {k: v for k, v in outcome.arguments.items() if k in ("model", "cwd", "sandbox", "approval-policy")}
        missing = "" if "model" in outcome.arguments else " (no model: codex falls back to its own config)"
        evidence.append(f"codex tool call arguments: {shown}{missing}")
    session = outcome.session_model
    if session == "" or any(m == "" for m in outcome.provider_models):
        return ScenarioFailure(
            "empty-model",
            f"expected {expected}, codex ran with an empty model "
            f"(session_configured at {_clock(outcome.session_time)})",
            evidence,
        )
    if session is not None and session != expected:
        return ScenarioFailure(
            "model-mismatch",
            f"expected {expected}, codex session ran {session} (session_configured at {_clock(outcome.session_time)})",
            evidence,
        )
    orchestrator = _orchestrator_mismatch(outcome)
    if orchestrator is not None:
        return orchestrator
    others = sorted({str(m) for m in outcome.provider_models if m != expected})
    if others:
        # Who chose the other model: a sub-agent the agent spawned runs on a thread of its own (the agent's doing);
        # on the session's own thread, the request or its configuration asked for it.
        strays = [r.thread_id for r in outcome.requests if r.model != expected]
        sub_agent = outcome.thread_id is not None and all(t not in (None, outcome.thread_id) for t in strays)
        return ScenarioFailure(
            "model-mismatch",
            f"expected {expected}, the provider was asked for {', '.join(others)}"
            + (" by a sub-agent the agent spawned" if sub_agent else ""),
            evidence + _tool_evidence(outcome),
            group=AGENT if sub_agent else None,
        )
    return check_served(outcome, evidence)


def _orchestrator_mismatch(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The agents executor: every orchestrator request must run the expected orchestrator model."""
    expected = outcome.expected_orchestrator_model
    ran = sorted({str(m) for m in outcome.orchestrator_models if m != expected})
    if expected is None or not ran:
        return None
    agent = outcome.orchestrator
    declared = agent.get("model")
    why = "its Agent sets no model: the SDK's default" if declared is None else f"its Agent says model={declared!r}"
    name = f" ({agent['name']})" if agent.get("name") else ""
    return ScenarioFailure(
        "model-mismatch",
        f"expected {expected} for the orchestrator{name}, it ran {', '.join(ran)} ({why})",
        _request_lines(outcome, "orchestrator"),
        hint="the orchestrator runs the model its Agent names: give the Agent `model=` (your factory gets the expected "
        "one as its `model` argument); without it the Agents SDK runs OPENAI_DEFAULT_MODEL or its own default",
    )


def check_config(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The session's sandbox, approval policy and cwd (thread/start) and each request's sandbox mode (codex's
    turn metadata) must be what the run asked for."""
    asked = outcome.expected_config
    evidence: list[str] = []
    wrong: dict[str, str] = {}
    for key, value in outcome.session_config.items():
        if key not in asked:
            continue
        # codex reports the cwd resolved: a rootdir reached through a symlink is the same directory.
        same = os.path.realpath(value) == os.path.realpath(asked[key]) if key == "cwd" else value == asked[key]
        if not same:
            wrong.setdefault(key, value)
            evidence.append(f"session ({outcome.session_config_source}): {key}={value!r}, asked {asked[key]!r}")
    for n, request in enumerate(outcome.requests, 1):
        mode = request.sandbox_mode
        if mode and "sandbox" in asked and mode != asked["sandbox"]:
            wrong.setdefault("sandbox", mode)
            evidence.append(f"provider request {n} at {_clock(request.time)}: turn metadata sandbox_mode={mode!r}")
    if not wrong:
        return None
    ran = ", ".join(f"{key} {value}" for key, value in wrong.items())
    want = ", ".join(f"{key} {asked[key]}" for key in wrong)
    if outcome.arguments:
        shown = {k: v for k, v in outcome.arguments.items() if k in ("sandbox", "approval-policy", "cwd")}
        evidence.append(f"codex call arguments: {shown}")
    return ScenarioFailure("config-mismatch", f"asked for {want}, codex ran with {ran}", evidence)


def _excerpt(output: str) -> str:
    """The command's own output on one line (codex prefixes it with chunk and timing lines)."""
    text = output.split("Output:\n", 1)[-1] if "Output:\n" in output else output
    return _tail(" ⏎ ".join(line.strip() for line in text.splitlines() if line.strip()), 240)


def _tool_evidence(outcome: ScenarioOutcome) -> list[str]:
    return [
        f"tool call {c.call_id}: {'' if c.exit_code is None else f'exit {c.exit_code} '}"
        f"`{c.command.splitlines()[0][:120] if c.command else ''}`"
        + (f" → {_excerpt(c.output)}" if c.output.strip() else "")
        for c in outcome.tool_calls
    ]


def _call_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """Failures of the MCP call itself: timeout, crash, protocol."""
    stderr = [f"codex stderr: {_tail(outcome.codex_stderr)}"] if outcome.codex_stderr.strip() else []
    if outcome.timed_out:
        return ScenarioFailure(
            "timeout",
            outcome.error or "codex did not answer in time",
            _session_line(outcome) + _request_lines(outcome) + stderr,
        )
    if outcome.crashed:
        return ScenarioFailure(
            "codex-crashed", f"the codex server died during the call ({outcome.error})", _session_line(outcome) + stderr
        )
    if outcome.error and _API_ERROR.match(outcome.error):
        bad = [r for r in [*outcome.requests, *outcome.orchestrator_requests] if r.status >= 400]
        status = f"HTTP {bad[-1].status}" if bad else "an error"
        status += f" ({bad[-1].error_code})" if bad and bad[-1].error_code else ""
        retried = f" after {outcome.provider_retries} retries" if outcome.provider_retries else ""
        return ScenarioFailure(
            "provider-error",
            f"the orchestrator's model request failed with {status}{retried}: {outcome.error}",
            _request_lines(outcome) + stderr,
        )
    if outcome.error and outcome.arguments.get("model") == "" and outcome.session_model is None:
        return ScenarioFailure(
            "empty-model",
            f"expected {outcome.expected_model}, codex was asked for an empty model and refused to start: "
            f"{outcome.error}",
            [f"codex call arguments: {outcome.arguments}", *stderr],
        )
    if outcome.error:
        return ScenarioFailure("mcp-protocol", f"the codex tool call failed: {outcome.error}", stderr)
    if outcome.is_error and outcome.structured is None and outcome.session_model is None:
        raw = outcome.final_output.strip()
        return ScenarioFailure(
            "mcp-protocol",
            "codex answered the tool call with an error result without structuredContent (no threadId, no "
            "session): a client validating the output schema fails here ('CallToolResult content Field required')",
            [f"raw result text: {raw[:500]!r}", f"call arguments: {outcome.arguments}"],
        )
    return None


def _provider_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """codex answered with isError: the provider (or codex) refused the turn."""
    stderr = [f"codex stderr: {_tail(outcome.codex_stderr)}"] if outcome.codex_stderr.strip() else []
    if outcome.is_error:
        bad = [r for r in outcome.requests if r.status >= 400]
        text = outcome.final_output.strip().splitlines()[0][:200] if outcome.final_output.strip() else "no text"
        if _EMPTY_MODEL.search(outcome.final_output):
            empty = any(m == "" for m in outcome.provider_models) or "'' model" in outcome.final_output
            return ScenarioFailure(
                "empty-model" if empty else "provider-error",
                f"the provider rejected the model: {text}"
                if empty
                else f"the provider does not serve {outcome.session_model or outcome.expected_model}: {text}",
                _session_line(outcome) + _request_lines(outcome),
            )
        if re.search(r"idle timeout|timed out", outcome.final_output, re.IGNORECASE):
            return ScenarioFailure("timeout", f"the provider stream stalled: {text}", _request_lines(outcome))
        retried = f" after {outcome.provider_retries} retries" if outcome.provider_retries else ""
        earlier = [f"earlier attempt: {e}" for e in outcome.retry_errors]
        named = coded(outcome)
        if named is not None and named.status < 400:  # a `response.failed` inside a 200 stream: its code says why
            return ScenarioFailure(
                "provider-error",
                f"the provider failed the response with {named.error_code} inside its HTTP 200 stream{retried} "
                f"({code_text(named)}): {named.error_message or text}",
                [*_request_lines(outcome), f"codex: {text}", *earlier, *stderr],
            )
        status = f"HTTP {bad[-1].status}" if bad else "an error"
        status += f" ({bad[-1].error_code})" if bad and bad[-1].error_code else ""
        return ScenarioFailure(
            "provider-error", f"codex returned {status}{retried}: {text}", _request_lines(outcome) + earlier + stderr
        )
    return None


def _file_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    if outcome.output_exists and outcome.output_size > 0:
        return None
    evidence = _tool_evidence(outcome)
    failed = [c for c in outcome.tool_calls if c.exit_code != 0]  # None: codex could not run it at all
    for call in failed:
        if _DENIED.search(call.output):
            return ScenarioFailure(
                "sandbox-denied",
                f"{outcome.output_path} not written: the sandbox refused the write (exit {call.exit_code})",
                evidence,
            )
    for call in failed:
        if call.exit_code == 127 or _NOT_FOUND.search(call.output):
            return ScenarioFailure(
                "exec-not-found",
                f"{outcome.output_path} not written: "
                + (
                    f"codex ran a command that does not exist (exit {call.exit_code})"
                    if call.exit_code is not None
                    else "codex could not start the command"
                ),
                evidence,
            )
    if _NOT_FOUND.search(outcome.codex_stderr) and "exec" in outcome.codex_stderr:
        return ScenarioFailure(
            "exec-not-found",
            f"{outcome.output_path} not written: codex could not start the command",
            [*evidence, f"codex stderr: {_tail(outcome.codex_stderr)}"],
        )
    state = "is empty" if outcome.output_exists else "was not created"
    reply = outcome.final_output.strip().replace("\n", " ")
    return ScenarioFailure(
        "no-output-file",
        f"{outcome.output_path} {state}; the agent replied: {reply[:160] or '(nothing)'}",
        evidence or ["codex ran no tool call"],
    )


def _expectation_failure(outcome: ScenarioOutcome, expect: Expectations) -> ScenarioFailure | None:
    text = outcome.output_text
    missing = [s for s in expect.must_contain if s.lower() not in text.lower()]
    where = f" ({expect.source}:{expect.line})" if expect.source else ""
    if missing:
        return ScenarioFailure(
            "expectation-failed",
            f"{outcome.output_path} lacks {', '.join(map(repr, missing))}{where}",
            [f"output starts: {text[:300]!r}"],
        )
    words = len(text.split())
    if expect.min_words is not None and words < expect.min_words:
        return ScenarioFailure(
            "expectation-failed",
            f"{outcome.output_path} has {words} words, expected at least {expect.min_words}{where}",
            [f"output starts: {text[:300]!r}"],
        )
    return None


def _cassette_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    missed = [r for r in [*outcome.requests, *outcome.orchestrator_requests] if r.mismatch]
    if not missed:
        return None
    first = missed[0]
    reason, _, diff = first.mismatch.partition("\n") if first.mismatch else ("", "", "")
    return ScenarioFailure(
        "cassette-mismatch",
        f"{first.scenario}: {reason}",
        [f"request at {_clock(first.time)}: model={first.model!r}", *diff.splitlines()],
    )


def _rubric_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The grader's verdicts: every criterion of the rubric must hold."""
    grader = [f"grader: {outcome.grader}"] if outcome.grader else []
    if outcome.grader_error:
        return ScenarioFailure(
            "provider-error", f"the grader could not judge the rubric: {outcome.grader_error}", grader
        )
    failed = [c for c in outcome.rubric if c["verdict"] != "pass"]
    if not failed:
        return None
    evidence = grader + [
        f"{'✓' if c['verdict'] == 'pass' else '✗'} {c['criterion']} — {c['reason']}"
        + (f" (votes {c['votes']})" if c["votes"].split("/")[0] not in ("0", c["votes"].split("/")[1]) else "")
        for c in outcome.rubric
    ]
    names = "; ".join(c["criterion"] for c in failed)
    return ScenarioFailure(
        "rubric-failed", f"{len(failed)} of {len(outcome.rubric)} criteria failed: {names}", evidence
    )


def check_outcome(outcome: ScenarioOutcome, expect: Expectations | None = None) -> ScenarioFailure | None:
    """All checks in order of cause: a spent plan or a login gone, the call, the model, the output file, the
    expectations."""
    return (
        usage_limit(outcome)
        or login_gone(outcome)
        or _call_failure(outcome)
        or _cassette_failure(outcome)
        or check_model(outcome)
        or check_config(outcome)
        or _provider_failure(outcome)
        or _file_failure(outcome)
        or check_failure(outcome)
        or changes_failure(outcome, expect)
        or commands_failure(outcome, expect)
        or (_expectation_failure(outcome, expect) if expect is not None else None)
        or _rubric_failure(outcome)
    )
