"""What the Agents SDK path leaves as evidence: the SDK's spans (kept locally, one trace per scenario), the items
of its run, and codex's own session record (`rollout-*.jsonl`), read as codex events."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from pytest_interllm.outcome import CodexEvent


class SpanCapture:
    """A `TracingProcessor` that keeps every span in memory, by trace: one trace per scenario, so scenarios in
    flight at once keep theirs apart."""

    def __init__(self) -> None:
        self.spans: dict[str, list[dict[str, Any]]] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    def pop(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of one trace, forgotten here."""
        with self._lock:
            return self.spans.pop(trace_id, [])

    def drop(self, trace_id: str) -> None:
        """Forget a trace and keep none of its later spans (a run left behind may still end one day)."""
        with self._lock:
            self._dropped.add(trace_id)
            self.spans.pop(trace_id, None)

    def on_trace_start(self, trace: Any) -> None:
        return None

    def on_trace_end(self, trace: Any) -> None:
        return None

    def on_span_start(self, span: Any) -> None:
        return None

    def on_span_end(self, span: Any) -> None:
        exported = json.loads(json.dumps(span.export() or {}, default=str))
        with self._lock:
            if str(exported.get("trace_id")) not in self._dropped:
                self.spans.setdefault(str(exported.get("trace_id")), []).append(exported)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


def rollout_events(codex_home: Path, thread_id: str) -> list[CodexEvent]:
    """codex's own session record (`sessions/**/rollout-*-<thread>.jsonl`) as codex events."""
    events: list[CodexEvent] = []
    for path in sorted(codex_home.glob(f"sessions/**/rollout-*{thread_id}.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
            kind = entry.get("type")
            when = _timestamp(entry.get("timestamp"))
            if kind == "turn_context":
                msg = {"type": "session_configured", "model": payload.get("model"), "session_id": thread_id}
                # What codex ran the turn under, as the codex executor reads it from session_configured.
                keys = ("cwd", "approval_policy", "sandbox_policy", "permission_profile")
                msg.update({key: payload[key] for key in keys if key in payload})
                events.append(CodexEvent(time=when, type="session_configured", msg=msg))
            elif kind == "response_item":
                events.append(CodexEvent(time=when, type="raw_response_item", msg={"item": payload}))
            elif kind == "event_msg":
                events.append(CodexEvent(time=when, type=str(payload.get("type", "?")), msg=payload))
    return events


def _timestamp(value: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def run_item_record(item: Any) -> dict[str, Any]:
    raw: Any = getattr(item, "raw_item", None)
    dumped = raw.model_dump() if raw is not None and hasattr(raw, "model_dump") else raw
    out = {"type": getattr(item, "type", type(item).__name__), "raw": dumped}
    if hasattr(item, "output"):
        out["output"] = item.output
    loaded: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return loaded


def output_text(output: Any) -> str:
    """The text of an MCP tool output as the SDK hands it over (a JSON list of content parts, or text)."""
    parsed = output
    if isinstance(output, str):
        try:
            parsed = json.loads(output)
        except ValueError:
            return output
    if isinstance(parsed, dict):
        parsed = [parsed]
    if isinstance(parsed, list):
        return "\n".join(str(p.get("text", "")) for p in parsed if isinstance(p, dict))
    return str(output)
