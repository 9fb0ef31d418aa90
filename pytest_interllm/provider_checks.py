"""The provider's side of a verdict, read from the audited requests and codex's own events: the model that served
(a reroute), a plan's usage limit, a login that expired during the run, and a failure the provider named by its
code (inside a 200 stream, or an HTTP error's)."""

from __future__ import annotations

import re
import time

from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.faults import LOGIN_EXPIRED, RETRIED_CODES, USAGE_LIMIT
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome

# codex's own word of a reroute: app-server's notification, the MCP server's `codex/event`.
REROUTE_EVENTS = ("model/rerouted", "model_reroute")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
REROUTE_HINT = (
    "the backend served another model than the one codex asked for (a reroute: the ChatGPT backend sends accounts "
    "flagged for high-risk cyber activity to a fallback model, see https://chatgpt.com/cyber); codex's own warning "
    "names the reason. The test ran on the wrong model: check the account or the provider's routing"
)


def when(epoch: float | None) -> str:
    """A reset time as people read it, with how far off it is."""
    if epoch is None:
        return "an unknown time"
    left = epoch - time.time()
    ahead = f" (in {left / 3600:.1f} h)" if left >= 5400 else f" (in {max(left, 0) / 60:.0f} min)"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) + ahead


def same_model(asked: str, served: str) -> bool:
    """codex's comparison (case ignored); a dated snapshot of the model asked for is that model."""
    asked, served = asked.lower(), served.lower()
    return served == asked or (served.startswith(asked + "-") and bool(_SNAPSHOT.search(served[len(asked) :])))


def _requests(outcome: ScenarioOutcome) -> list[AuditRecord]:
    return [*outcome.requests, *outcome.orchestrator_requests]


def reroutes(outcome: ScenarioOutcome) -> list[tuple[str, str, str]]:
    """Each reroute codex reported: (from, to, reason)."""
    found = []
    for event in outcome.events:
        if event.type in REROUTE_EVENTS:
            msg = event.msg
            found.append(
                (
                    str(msg.get("fromModel") or msg.get("from_model") or ""),
                    str(msg.get("toModel") or msg.get("to_model") or ""),
                    str(msg.get("reason") or ""),
                )
            )
    return found


def check_served(outcome: ScenarioOutcome, evidence: list[str]) -> ScenarioFailure | None:
    """Every request must have been served by the expected model: `openai-model`, the completed response's model,
    and codex's own reroute notice."""
    expected = outcome.expected_model
    served = [
        (n, r) for n, r in enumerate(outcome.requests, 1) if r.served_model and not same_model(expected, r.served_model)
    ]
    rerouted = [(f, t, why) for f, t, why in reroutes(outcome) if t and not same_model(expected, t)]
    if not served and not rerouted:
        return None
    to = served[0][1].served_model if served else rerouted[0][1]
    asked = served[0][1].model if served else rerouted[0][0]
    reason = next((why for _, _, why in rerouted if why), "")
    lines = [
        f"provider request {n}: asked for {r.model!r}, served by {r.served_model!r} (openai-model header / completed "
        "response)"
        for n, r in served
    ]
    lines += [f"codex: model rerouted from {f!r} to {t!r}" + (f" ({why})" if why else "") for f, t, why in rerouted]
    because = f"; codex says rerouted: {reason}" if reason else ""
    return ScenarioFailure(
        "model-mismatch",
        f"expected {expected}, the backend served {to} (codex asked for {asked}{because})",
        lines + evidence,
        hint=REROUTE_HINT,
    )


def usage_limit(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """A plan's usage limit (HTTP 429 `usage_limit_reached`): no retry helps, and no later scenario can run."""
    hit = [r for r in _requests(outcome) if r.error_code == USAGE_LIMIT]
    if not hit:
        return None
    last = hit[-1]
    plan = f" (plan {last.plan_type})" if last.plan_type else ""
    until = when(last.resets_at)
    local = " — answered by the proxy, which remembers the limit: nothing more was sent upstream" if last.local else ""
    return ScenarioFailure(
        "usage-limit",
        f"the usage limit of the ChatGPT plan{plan} is reached until {until}: HTTP 429 {USAGE_LIMIT}",
        [
            f"request at {time.strftime('%H:%M:%S', time.localtime(r.time))}: model={r.model!r} status={r.status} "
            f"{r.error_code}: {r.error_message or ''}{local if r.local else ''}"
            for r in hit
        ],
        stops_run=f"the usage limit of the ChatGPT plan{plan} is reached until {until}: scenario not started",
    )


def login_gone(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The login expired during the run and could not be refreshed: every later request would fail the same way."""
    hit = [r for r in _requests(outcome) if r.status == 401 and r.error_code in LOGIN_EXPIRED]
    if not hit:
        return None
    last = hit[-1]
    return ScenarioFailure(
        "provider-error",
        f"the login expired during the run: HTTP 401 {last.error_code}: {last.error_message or ''}",
        [f"request: model={r.model!r} status={r.status} {r.error_code}" for r in hit],
        hint="sign codex in again in a terminal (`codex login`) and start the run again; the run stopped here",
        stops_run="the codex login expired during the run (sign in again with `codex login`): scenario not started",
    )


def coded(outcome: ScenarioOutcome) -> AuditRecord | None:
    """The last request whose answer named its failure by a code (in a 200 stream, or an HTTP error's)."""
    failed = [r for r in _requests(outcome) if r.error_code]
    return failed[-1] if failed else None


def code_text(record: AuditRecord) -> str:
    """How a coded failure was handled, for the headline: retried after what, or not retried."""
    how = RETRIED_CODES.get(record.error_code or "")
    return f"retried after {how}" if how else "not retried: it would fail the same way"
