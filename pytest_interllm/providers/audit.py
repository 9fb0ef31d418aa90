"""One audited provider request (a light module: the report and the checks import it)."""

from __future__ import annotations

from dataclasses import dataclass


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
