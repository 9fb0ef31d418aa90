"""The assertions of a scenario, computed from evidence: codex events, provider audit, filesystem."""

from __future__ import annotations

import os
import re
import time
from pathlib import PurePosixPath

from pytest_interllm.errors import AGENT, ScenarioFailure
from pytest_interllm.expectations import ALWAYS_NEVER, Changes, Expectations
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.provider_checks import check_served, code_text, coded, login_gone, usage_limit
from pytest_interllm.trajectory import commands, reported_changes
from pytest_interllm.workspace import inside_path, matches

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


def _diff_lines(outcome: ScenarioOutcome, limit: int = 12) -> list[str]:
    diff = outcome.workspace_diff or []
    lines = [f"workspace diff: {len(diff)} file(s)"] + [
        f"  {d['kind']} {d['path']}" + (" (binary)" if d.get("binary") else "") for d in diff[:limit]
    ]
    return lines + ([f"  … {len(diff) - limit} more"] if len(diff) > limit else [])


def _step_lines(outcome: ScenarioOutcome) -> list[str]:
    lines = []
    for step in outcome.trajectory:
        if step["kind"] == "command":
            code = "?" if step.get("exit_code") is None else step["exit_code"]
            lines.append(f"ran `{str(step['command']).splitlines()[0][:160]}` (exit {code})")
        elif step["kind"] == "file_change":
            lines.append(f"reported {step['change']} {step['path']}")
    return lines


def _changes_failure(outcome: ScenarioOutcome, expect: Expectations | None) -> ScenarioFailure | None:
    """The workspace diff against the scenario's `changes:` rules and against what the agent reported."""
    if outcome.workspace_diff is None:
        return None
    rules = expect.changes if expect is not None and expect.changes is not None else Changes()
    where = f" ({expect.source}:{expect.line_of('changes')})" if expect is not None and expect.source else ""
    evidence = _diff_lines(outcome) + _step_lines(outcome)
    changed = {d["path"]: d["kind"] for d in outcome.workspace_diff}
    reported = reported_changes(outcome.trajectory)
    ran = commands(outcome.trajectory)
    own = inside_path(outcome.output_path, PurePosixPath(outcome.output_path).name)
    for path in changed:
        glob = matches(path, (*ALWAYS_NEVER, *rules.never))
        if glob is not None:
            return ScenarioFailure(
                "changes-failed", f"changes.never: {path} {changed[path]} (matches {glob!r}){where}", evidence
            )
    for path in reported:
        if PurePosixPath(path).is_absolute():
            return ScenarioFailure(
                "changes-failed", f"changes.never: the agent changed {path}, outside its workspace{where}", evidence
            )
    for path, kind in changed.items():
        named = any(path in c or PurePosixPath(path).name in c for c in ran)
        if path not in reported and not named:
            return ScenarioFailure(
                "changes-failed",
                f"unreported change: {path} {kind} on disk, but the agent reported no change to it "
                "(no patch and no command of the agent names it)",
                evidence,
            )
    for path, kind in reported.items():
        if path not in changed:
            return ScenarioFailure(
                "changes-failed",
                f"reported change not on disk: the agent reported {kind} {path}, the workspace shows no change",
                evidence,
            )
    if rules.only is not None:
        for path in changed:
            if path != own and matches(path, rules.only) is None:
                return ScenarioFailure(
                    "changes-failed",
                    f"changes.only: {path} {changed[path]}, not allowed by {list(rules.only)}{where}",
                    evidence,
                )
    for glob in rules.must:
        if not any(matches(path, (glob,)) for path in changed):
            return ScenarioFailure(
                "changes-failed", f"changes.must: no file matching {glob!r} changed{where}", evidence
            )
    return None


def _commands_failure(outcome: ScenarioOutcome, expect: Expectations | None) -> ScenarioFailure | None:
    """The agent's commands against the scenario's `commands:` rules."""
    rules = expect.commands if expect is not None else None
    if rules is None:
        return None
    assert expect is not None
    where = f" ({expect.source}:{expect.line_of('commands')})" if expect.source else ""
    ran = commands(outcome.trajectory)
    evidence = _step_lines(outcome) or ["the agent ran no command"]
    for command in ran:
        for pattern in rules.never_run:
            if re.search(pattern, command):
                first = command.splitlines()[0][:160] if command else ""
                return ScenarioFailure(
                    "commands-failed", f"commands.never_run: ran `{first}` (matches '{pattern}'){where}", evidence
                )
    for pattern in rules.must_run:
        if not any(re.search(pattern, command) for command in ran):
            return ScenarioFailure(
                "commands-failed", f"commands.must_run: no command matched '{pattern}'{where}", evidence
            )
    if rules.max is not None and len(ran) > rules.max:
        return ScenarioFailure(
            "commands-failed", f"commands.max: ran {len(ran)} commands, at most {rules.max} allowed{where}", evidence
        )
    return None


def _check_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The scenario's `check:` command, run in the workspace after the agent stopped: its exit code decides."""
    check = outcome.check
    if check is None or (check["exit_code"] == 0 and not check["timed_out"]):
        return None
    output = [f"  {line}" for line in str(check["output"]).strip().splitlines()[-30:]] or ["  (no output)"]
    evidence = ["check output:", *output, *_diff_lines(outcome)]
    if check["timed_out"]:
        head = f"check `{check['command']}` timed out after {check['duration']:.1f}s (killed)"
    else:
        head = f"check `{check['command']}` exited {check['exit_code']}"
    return ScenarioFailure("check-failed", head, evidence)


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
        or _check_failure(outcome)
        or _changes_failure(outcome, expect)
        or _commands_failure(outcome, expect)
        or (_expectation_failure(outcome, expect) if expect is not None else None)
        or _rubric_failure(outcome)
    )
