"""Cassettes: each scenario's exchanges with the provider (request summary, full response with its headers),
secrets redacted, and what a replayed request must repeat to be served from them."""

from __future__ import annotations

import difflib
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_interllm.providers.audit import user_texts
from pytest_interllm.redact import Redactor

RECORD_MODES = ("once", "new_episodes", "none", "all")
MISMATCH_STATUS = 409
_ENV_CONTEXT = "<environment_context>"


def _prompt_of(body: dict[str, Any]) -> str:
    """The scenario's own words in a request: user messages other than codex's environment context."""
    texts = [t for t in user_texts(body.get("input") or []) if not t.lstrip().startswith(_ENV_CONTEXT)]
    return "\n".join(t for t in texts if not t.lstrip().startswith("<"))


def match_key(body: dict[str, Any]) -> dict[str, Any]:
    """What a replayed request must repeat: model, prompt, offered tools and how far the turn has got."""
    items = body.get("input") or []
    outputs = sum(1 for i in items if isinstance(i, dict) and str(i.get("type", "")).endswith("_output"))
    prompt = _prompt_of(body)
    return {
        "model": body.get("model"),
        "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
        "tool_outputs": outputs,
        "stream": bool(body.get("stream")),
    }


class Cassettes:
    """`cassettes/<list-stem>/<scenario>.yaml`: request summaries and full responses, secrets redacted."""

    def __init__(self, root: Path, redactor: Redactor) -> None:
        self.root = root
        self.redactor = redactor

    def path(self, stem: str, label: str) -> Path:
        return self.root / stem / f"{label}.yaml"

    def load(self, stem: str, label: str) -> list[dict[str, Any]] | None:
        path = self.path(stem, label)
        if not path.is_file():
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        interactions = data.get("interactions") if isinstance(data, dict) else None
        return list(interactions) if isinstance(interactions, list) else []

    def save(self, stem: str, label: str, interactions: list[dict[str, Any]]) -> None:
        path = self.path(stem, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "scenario": label, "interactions": self.redactor.data(interactions)}
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
        tmp.replace(path)


class Tapes:
    """The proxy's cassette bookkeeping: where each scenario's replay stands, what this run recorded, and which
    scenarios it records whole (a new cassette in `once`/`new_episodes` mode)."""

    def __init__(self, cassettes: Cassettes | None, record_mode: str | None) -> None:
        self.cassettes = cassettes
        self.record_mode = record_mode
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], int] = {}
        self._recorded: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._recording: set[tuple[str, str]] = set()

    def begin(self, key: tuple[str, str]) -> None:
        """A scenario (or a retry of it) starts: replay from its first interaction again."""
        with self._lock:
            self._index[key] = 0
            if self.record_mode == "all":
                self._recorded[key] = []

    def next_index(self, key: tuple[str, str]) -> int:
        with self._lock:
            index = self._index.get(key, 0)
            self._index[key] = index + 1
        return index

    def replay(self, key: tuple[str, str], index: int, body: dict[str, Any]) -> Replayed | str | None:
        """The recorded answer, a mismatch explanation, or None when this request must go upstream."""
        if self.cassettes is None or self.record_mode == "all" or key in self._recording:
            return None
        interactions = self.cassettes.load(*key)
        if interactions is None and self.record_mode in ("once", "new_episodes"):
            with self._lock:
                self._recording.add(key)  # a new cassette: this run records all of it
            return None
        if interactions is None or index >= len(interactions):
            if self.record_mode == "none" or (self.record_mode == "once" and interactions is not None):
                have = "no cassette" if interactions is None else f"only {len(interactions)} recorded requests"
                return f"not recorded ({have} in {self.cassettes.path(*key)})"
            return None
        recorded = interactions[index]
        expected = recorded["request"]["match"]
        actual = match_key(body)
        if expected != actual:
            diff = [
                f"{k}: recorded {expected.get(k)!r}, now {actual.get(k)!r}"
                for k in actual
                if expected.get(k) != actual.get(k)
            ]
            before = recorded["request"].get("prompt", "")
            after = self.cassettes.redactor.text(_prompt_of(body))
            lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "recorded", "now", lineterm=""))
            return "; ".join(diff) + ("\n" + "\n".join(lines[:40]) if lines else "")
        response = recorded["response"]
        headers = response.get("headers") if isinstance(response.get("headers"), dict) else {}
        return Replayed(
            int(response["status"]),
            str(response["content_type"]),
            str(response["body"]).encode("utf-8"),
            {str(k): str(v) for k, v in headers.items()},
        )

    def store(
        self,
        key: tuple[str, str],
        index: int,
        body: dict[str, Any],
        answer: Replayed,
    ) -> None:
        """Keep one exchange in the scenario's cassette (written at once: a run cut short keeps what it had)."""
        if self.cassettes is None or self.record_mode == "none":
            return
        interaction = {
            "request": {
                "method": "POST",
                "path": "/v1/responses",
                "model": body.get("model"),
                "prompt": _prompt_of(body),
                "match": match_key(body),
            },
            "response": {
                "status": answer.status,
                "content_type": answer.content_type,
                "headers": answer.headers,
                "body": answer.content.decode("utf-8", "replace"),
            },
        }
        with self._lock:
            existing = self._recorded.get(key)
            if existing is None:
                existing = (self.cassettes.load(*key) or []) if self.record_mode == "new_episodes" else []
            existing = [*existing[:index], interaction]
            self._recorded[key] = existing
            self.cassettes.save(*key, existing)


@dataclass(frozen=True)
class Replayed:
    """One answer as a cassette holds it: status, content type, the headers codex reads, the body."""

    status: int
    content_type: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
