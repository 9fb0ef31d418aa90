"""The preflight: one request before any scenario of a real run, shaped as the installed codex shapes its own (its
body, headers and originator, captured from it: codex/capture.py), and what its answer means, each cause in its
own words: a refused credential, a model the backend does not serve, a Cloudflare or network block, a spent plan."""

from __future__ import annotations

import time
from typing import Any

PREFLIGHT = ("_preflight", "preflight")  # the audit's scenario label of the preflight request
PROMPT = "Reply with the single word OK."
SKIP = " (--interllm-preflight off skips this check)"
# Request headers of codex's own that the preflight repeats (the rest are a transport's: length, host, ...).
_KEPT = ("user-agent", "originator", "version", "session-id", "thread-id", "x-codex-turn-metadata",
         "x-codex-beta-features", "x-codex-window-id", "x-client-request-id", "accept", "content-type",
         "x-openai-internal-codex-responses-lite")  # fmt: skip


def preflight_body(model: str, shape: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The preflight's body and codex's headers: the captured request of the installed codex (`shape`) with the
    run's model, or, when none could be captured, a minimal request."""
    if isinstance(shape, dict) and isinstance(shape.get("body"), dict):
        body = {**shape["body"], "model": model, "stream": True}
        headers = {k: str(v) for k, v in (shape.get("headers") or {}).items() if k.lower() in _KEPT}
        return body, headers
    body = {
        "model": model,
        "instructions": "You are a connectivity check. Reply with the single word OK.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]}],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "store": False,
        "stream": True,
    }
    return body, {"user-agent": "pytest-interllm preflight"}


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "an unknown time"


def preflight_problem(answer: dict[str, Any], credential: str) -> str | None:
    """Why the run must not start after the preflight's answer (a usage error's text), or None."""
    status, text, model = int(answer.get("status") or 0), str(answer.get("text") or ""), answer.get("model")
    upstream = answer.get("upstream")
    if answer.get("local"):  # the proxy refused to send (an expired or unreadable login): its own words
        return f"preflight: {text}"
    if status == 0:
        return f"preflight: cannot reach {upstream}: {text}{SKIP}"
    if answer.get("code") == "usage_limit_reached":
        plan = f" (plan {answer['plan_type']})" if answer.get("plan_type") else ""
        return (
            f"preflight: the usage limit of your ChatGPT plan{plan} is reached until {_when(answer.get('resets_at'))}: "
            f"no scenario can run before then; run again after it, or with an API key (OPENAI_API_KEY){SKIP}"
        )
    html = "html" in str(answer.get("content_type") or "")
    if status == 403 and (answer.get("cloudflare") or html):
        return (
            f"preflight: {upstream} blocked the request at its edge (HTTP 403, a Cloudflare page, not an answer about "
            f"your credential): this network or address is refused; try from another network, or check a proxy or "
            f"VPN{SKIP}"
        )
    if status in (401, 403):
        return (
            f"preflight: {upstream} refused the credential, {credential}: HTTP {status}: {text}. Check the key, or "
            f"sign codex in again with `codex login`{SKIP}"
        )
    if status in (400, 404) and "model" in text.lower():
        return f"preflight: {upstream} does not serve the model {model!r}: HTTP {status}: {text}{SKIP}"
    if status >= 400:
        return f"preflight: {upstream} answered HTTP {status}: {text}{SKIP}"
    return None
