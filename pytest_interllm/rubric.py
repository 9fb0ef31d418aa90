"""The rubric's wire format, shared by the grader (which asks) and the scripted model (which answers offline): the
grader's Responses request with its JSON schema, reading one back, and the scripted grader's verdicts."""

from __future__ import annotations

import json
import re
from typing import Any

SCHEMA_NAME = "interllm_rubric"
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
