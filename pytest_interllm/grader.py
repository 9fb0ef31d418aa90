"""Judged expectations: a rubric per scenario, graded by a model through the scenario's own provider.

The grader posts a Responses request (structured output: a JSON schema of one verdict and reason per
criterion) to the scenario's provider URL, with the run token: the scripted model offline, the audit proxy
otherwise, so grader requests are audited, priced, budgeted and kept in the scenario's cassette like any
other. Offline the scripted model grades deterministically (`scripted_verdicts`): it is not a model.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SCHEMA_NAME = "interllm_rubric"
USER_AGENT = "pytest-interllm-grader/1"
SCRIPTED = "the scripted grader (quoted phrases and content words matched in the file; not a model)"
INSTRUCTIONS = (
    "You are a strict reviewer. For each criterion, decide whether the document meets it. Judge only what the "
    "document says; do not assume anything that is not written. Reply with the JSON the schema asks for: one "
    "entry per criterion, in the given order, with verdict pass or fail and a one-line reason."
)
SCHEMA = {
    "type": "object",
    "properties": {
        "criteria": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "criterion": {"type": "string"},
                    "verdict": {"type": "string", "enum": ["pass", "fail"]},
                    "reason": {"type": "string"},
                },
                "required": ["criterion", "verdict", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["criteria"],
    "additionalProperties": False,
}
_QUOTED = re.compile(r"[\"“”']([^\"“”']{2,})[\"“”']")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]{3,}")
_STOP = frozenset(
    {
        "about",
        "after",
        "also",
        "been",
        "before",
        "being",
        "both",
        "does",
        "each",
        "from",
        "have",
        "into",
        "just",
        "like",
        "make",
        "more",
        "most",
        "must",
        "only",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "under",
        "uses",
        "using",
        "very",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "with",
        "within",
        "without",
        "would",
        "your",
    }
)


def request_body(model: str, criteria: list[str], document: str, temperature: bool = True) -> dict[str, Any]:
    """The grader's Responses request: the criteria and the document, structured output, temperature 0."""
    text = f"Criteria (JSON): {json.dumps(criteria)}\n\nDocument:\n<<<\n{document}\n>>>"
    body: dict[str, Any] = {
        "model": model,
        "instructions": INSTRUCTIONS,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}],
        "text": {"format": {"type": "json_schema", "name": SCHEMA_NAME, "schema": SCHEMA, "strict": True}},
        "store": False,
        "stream": True,
    }
    if temperature:
        body["temperature"] = 0
    return body


def read_request(body: dict[str, Any]) -> tuple[list[str], str] | None:
    """The criteria and the document of a grader request (for the scripted model), or None."""
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("name") != SCHEMA_NAME:
        return None
    for item in body.get("input") or []:
        for part in item.get("content") or [] if isinstance(item, dict) else []:
            text = str(part.get("text", "")) if isinstance(part, dict) else ""
            found = re.match(r"Criteria \(JSON\): (.*?)\n\nDocument:\n<<<\n(.*)\n>>>\Z", text, re.DOTALL)
            if found:
                return [str(c) for c in json.loads(found.group(1))], found.group(2)
    return None


def scripted_verdicts(criteria: list[str], document: str) -> list[dict[str, str]]:
    """The offline grader: a criterion holds when every phrase it quotes occurs in the document (ignoring case);
    one without a quoted phrase holds when at least half of its content words do."""
    text = document.lower()
    verdicts = []
    for criterion in criteria:
        phrases = _QUOTED.findall(criterion)
        if phrases:
            missing = [p for p in phrases if p.lower() not in text]
            found = [p for p in phrases if p.lower() in text]
            reason = f"missing {', '.join(map(repr, missing))}" if missing else f"found {', '.join(map(repr, found))}"
            verdicts.append({"criterion": criterion, "verdict": "fail" if missing else "pass", "reason": reason})
            continue
        words = [w for w in dict.fromkeys(w.lower() for w in _WORD.findall(criterion)) if w not in _STOP]
        present = [w for w in words if w in text]
        holds = bool(words) and len(present) * 2 >= len(words)
        reason = f"{len(present)} of {len(words)} content words present" + (
            f" ({', '.join(present)})" if present else ""
        )
        verdicts.append({"criterion": criterion, "verdict": "pass" if holds else "fail", "reason": reason})
    return verdicts


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
