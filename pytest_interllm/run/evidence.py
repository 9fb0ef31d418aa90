"""What an attempt's evidence says beyond itself: the tool calls codex ran (completed from what the provider was
sent), and whether its failure is transient (worth a retry, and after how long)."""

from __future__ import annotations

import re
from dataclasses import replace

from pytest_interllm.faults import RETRIED_CODES, TRANSIENT_STATUSES, USAGE_LIMIT
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome, ToolCall


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
