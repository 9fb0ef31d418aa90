"""Codex's `codex/event` notifications, as kept for one scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CodexEvent:
    """One codex event: its wall-clock time, type and message."""

    time: float
    type: str
    msg: dict[str, Any]
    request_id: str | None = None

    @classmethod
    def from_params(cls, when: float, params: dict[str, Any]) -> CodexEvent:
        """Build from notification params `{_meta: {requestId}, id, msg: {type, ...}}`."""
        msg = params.get("msg")
        msg = msg if isinstance(msg, dict) else {}
        meta = params.get("_meta")
        request_id = meta.get("requestId") if isinstance(meta, dict) else None
        return cls(
            time=when,
            type=str(msg.get("type", "?")),
            msg=msg,
            request_id=None if request_id is None else str(request_id),
        )


@dataclass
class CallResult:
    """What one `codex` tool call gave back: its events, text, structured content and error state."""

    events: list[CodexEvent] = field(default_factory=list)
    text: str = ""
    structured: dict[str, Any] | None = None
    is_error: bool = False
    error: str | None = None
    timed_out: bool = False

    def of_type(self, *types: str) -> list[CodexEvent]:
        """Events of the given types, in arrival order."""
        return [e for e in self.events if e.type in types]

    @property
    def thread_id(self) -> str | None:
        """The codex thread (session) id, from the result or the session_configured event."""
        if self.structured and isinstance(self.structured.get("threadId"), str):
            return str(self.structured["threadId"])
        for event in self.of_type("session_configured"):
            value = event.msg.get("session_id") or event.msg.get("thread_id")
            if isinstance(value, str):
                return value
        return None
