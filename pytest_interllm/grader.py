"""Judged expectations: a rubric per scenario, graded by a model through the scenario's own provider.

The grader posts a Responses request (structured output: a JSON schema of one verdict and reason per
criterion) to the scenario's provider URL, with the run token: the scripted model offline, the audit proxy
otherwise, so grader requests are audited, priced, budgeted and kept in the scenario's cassette like any
other. Offline the scripted model grades deterministically (`scripted_verdicts`): it is not a model.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pytest_interllm.rubric import SCRIPTED, request_body

USER_AGENT = "pytest-interllm-grader/1"


@dataclass
class Criterion:
    """One criterion's verdict over the grader's votes."""

    criterion: str
    passed: bool
    reason: str
    votes: str  # "3/3" pass votes; shown when not unanimous

    def record(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "verdict": "pass" if self.passed else "fail",
            "reason": self.reason,
            "votes": self.votes,
        }


@dataclass
class Rubric:
    """A graded rubric, or why it could not be graded."""

    grader: str
    criteria: list[Criterion] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]


def _reply_text(content: bytes) -> str:
    """The assistant's text in a Responses reply (an SSE stream, or plain JSON)."""
    texts: list[str] = []
    body = content.decode("utf-8", "replace")
    chunks = [line[5:].strip() for line in body.splitlines() if line.startswith("data:")] or [body]
    for chunk in chunks:
        try:
            data = json.loads(chunk)
        except ValueError:
            continue
        items = [data.get("item")] if data.get("type") == "response.output_item.done" else data.get("output") or []
        for item in items:
            if isinstance(item, dict) and item.get("type") == "message":
                texts += [str(p.get("text", "")) for p in item.get("content") or [] if isinstance(p, dict)]
    return "".join(texts)


def _ask(url: str, token: str, body: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    import httpx2 as httpx  # only where rubrics are graded: the plugin's import stays light

    headers = {"authorization": f"Bearer {token}", "user-agent": USER_AGENT, "accept": "text/event-stream"}
    reply = httpx.post(f"{url.rstrip('/')}/responses", json=body, headers=headers, timeout=timeout)
    if reply.status_code >= 400:
        raise GraderError(f"HTTP {reply.status_code}: {reply.text[:300]}")
    try:
        verdicts = json.loads(_reply_text(reply.content)).get("criteria")
    except (ValueError, AttributeError) as exc:
        raise GraderError(f"the grader's reply is not the rubric JSON: {_reply_text(reply.content)[:300]!r}") from exc
    if not isinstance(verdicts, list):
        raise GraderError("the grader's reply has no `criteria` list")
    return [v for v in verdicts if isinstance(v, dict)]


class GraderError(Exception):
    """The grader could not judge (its request failed, or its reply was not the rubric)."""


def grade(
    url: str, token: str, model: str, criteria: list[str], document: str, votes: int, timeout: float, kind: str
) -> Rubric:
    """Grade `document` against `criteria`, `votes` times; each criterion takes the majority verdict. `kind`
    says who answers: `scripted` (offline), `replayed` (a cassette) or `model`."""
    import httpx2 as httpx

    name = f"{model}, temperature 0, {votes} vote{'s' * (votes > 1)}"
    label = {"scripted": SCRIPTED, "replayed": f"{name}, replayed from the cassette"}.get(kind, name)
    rubric = Rubric(grader=label)
    ballots: list[list[dict[str, Any]]] = []
    temperature = True
    try:
        for _ in range(votes):
            try:
                ballots.append(_ask(url, token, request_body(model, criteria, document, temperature), timeout))
            except GraderError as exc:
                if not temperature or "temperature" not in str(exc):
                    raise
                temperature = False  # a model that takes no temperature: ask again without it
                ballots.append(_ask(url, token, request_body(model, criteria, document, temperature), timeout))
    except (GraderError, httpx.HTTPError) as exc:
        rubric.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GraderError) else str(exc)
        return rubric
    for n, criterion in enumerate(criteria):
        said = [b[n] if n < len(b) else {} for b in ballots]
        yes = sum(1 for v in said if v.get("verdict") == "pass")
        passed = yes * 2 > len(said)
        reasons = Counter(str(v.get("reason", "")) for v in said if (v.get("verdict") == "pass") == passed)
        rubric.criteria.append(
            Criterion(criterion, passed, reasons.most_common(1)[0][0] if reasons else "", f"{yes}/{len(said)}")
        )
    return rubric
