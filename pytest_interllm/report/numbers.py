"""Pass rates read from the records: agent-attributable attempts with their 95% Wilson interval, and the failures
of infrastructure and configuration counted apart — per scenario, per model and per run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_interllm.errors import AGENT, CONFIGURATION, INFRASTRUCTURE, group_of
from pytest_interllm.stats import wilson


@dataclass(frozen=True)
class Tally:
    """Attempts counted by who decided them: `measured` are the agent's (passed, or failed by the agent)."""

    passed: int = 0
    measured: int = 0
    infrastructure: int = 0
    configuration: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.passed + other.passed,
            self.measured + other.measured,
            self.infrastructure + other.infrastructure,
            self.configuration + other.configuration,
        )

    @property
    def failed(self) -> int:
        """Attempts the agent failed."""
        return self.measured - self.passed

    @property
    def rate(self) -> float | None:
        return self.passed / self.measured if self.measured else None

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of the pass rate ((0, 1) when nothing was measured)."""
        return wilson(self.passed, self.measured)

    def text(self) -> str:
        """`16/17 passed = 94.1% (95% CI 73.0–99.0%)`, or `no attempt measured the agent`."""
        if not self.measured:
            return "no attempt measured the agent"
        low, high = self.interval
        return f"{self.passed}/{self.measured} passed = {self.rate:.1%} (95% CI {low * 100:.1f}–{high:.1%})"

    def apart(self) -> str:
        """`1 infrastructure failure apart`, or "" when every attempt measured the agent."""
        parts = [
            f"{count} {group} failure{'s' if count > 1 else ''}"
            for group, count in ((INFRASTRUCTURE, self.infrastructure), (CONFIGURATION, self.configuration))
            if count
        ]
        return f"{' and '.join(parts)} apart" if parts else ""

    def record(self) -> dict[str, Any]:
        """The figures for the JSONL summary record."""
        low, high = self.interval
        return {
            "passed": self.passed,
            "measured": self.measured,
            "infrastructure": self.infrastructure,
            "configuration": self.configuration,
            "pass_rate": round(self.rate, 4) if self.rate is not None else None,
            "interval": [round(low, 4), round(high, 4)],
        }


def _one(result: str, failure_class: str | None, group: str | None) -> Tally:
    """One attempt's count."""
    if result == "passed":
        return Tally(passed=1, measured=1)
    who = group_of(failure_class, group)
    if who == AGENT:
        return Tally(measured=1)
    return Tally(infrastructure=1) if who == INFRASTRUCTURE else Tally(configuration=1)


def tally(record: dict[str, Any]) -> Tally:
    """A scenario's attempts (each repeated attempt, or its one), counted by who decided them. Skipped and xfail
    items count nothing. Records of logs older than the groups get their class's own group."""
    if record.get("result") not in ("passed", "failed"):
        return Tally()
    runs = record.get("runs") or [record]
    total = Tally()
    for run in runs:
        total += _one(str(run.get("result")), run.get("failure_class"), run.get("failure_group"))
    return total


def run_tally(records: list[dict[str, Any]], model: str | None = None) -> Tally:
    """The run's attempts (of one model's items, when `model` is given): pooled over its scenarios."""
    total = Tally()
    for record in records:
        if model is None or record.get("expected_model") == model:
            total += tally(record)
    return total


def summary_record(
    records: list[dict[str, Any]],
    counts: dict[str, int],
    alpha: float,
    baseline: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSONL log's last line: the run's figures (`record: summary`, the schema's second kind of line)."""
    models = list(dict.fromkeys(str(r["expected_model"]) for r in records))
    return {
        "record": "summary",
        "counts": counts,
        "alpha": alpha,
        "run": run_tally(records).record(),
        "models": {model: run_tally(records, model).record() for model in models},
        "baseline": baseline,
        "gate": gate,
    }
