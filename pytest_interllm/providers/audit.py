"""One audited provider request (a light module: the report and the checks import it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request


@dataclass(frozen=True)
class AuditRecord:
    """One request the provider saw: who asked, for which model, and how it was answered."""

    time: float
    method: str
    path: str
    model: str | None
    status: int
    thread_id: str | None
    user_agent: str
    latency: float
    input_tokens: int = 0
    output_tokens: int = 0
    scenario: str | None = None
    fault: str | None = None
    retry_after: float | None = None
    mismatch: str | None = None
    replayed: bool = False


def audit_request(
    request: Request, start: float, model: str | None, status: int, tin: int = 0, tout: int = 0, **extra: Any
) -> AuditRecord:
    """The audit record of one HTTP request to a provider (`start` from `time.monotonic()`)."""
    return AuditRecord(
        time=time.time(),
        method=request.method,
        path=request.url.path,
        model=model,
        status=status,
        thread_id=request.headers.get("thread-id") or request.headers.get("session-id"),
        user_agent=request.headers.get("user-agent", ""),
        latency=time.monotonic() - start,
        input_tokens=tin,
        output_tokens=tout,
        **extra,
    )
