"""Running one item: its repeated attempts (`--interllm-repeat`), the rerun of a failed attempt
(`--interllm-retries`), their cost, and the one verdict the item reports.

Repeats measure: every attempt counts, and the item passes when enough of them pass (`min_pass`). Retries
forgive: a failed attempt is run again until it passes or the retries run out, and only its last run counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any, Protocol

from pytest_interllm.cost import Budget, Prices
from pytest_interllm.endpoint import Endpoint
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.grader import USER_AGENT, grade
from pytest_interllm.outcome import ScenarioOutcome


@dataclass
class Attempt:
    """One counted attempt of an item: its last run's evidence and its failure, if any."""

    number: int
    outcome: ScenarioOutcome
    failure: ScenarioFailure | None


@dataclass
class Verdict:
    """The attempts of one item and what they add up to."""

    min_pass: float
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def passes(self) -> int:
        return sum(1 for a in self.attempts if a.failure is None)

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and self.passes / len(self.attempts) >= self.min_pass - 1e-9

    def classes(self) -> Counter[str]:
        """Failure classes of the failed attempts."""
        return Counter(a.failure.failure_class for a in self.attempts if a.failure is not None)

    def summary(self) -> str:
        """`2/3 passed — no-output-file ×1`."""
        text = f"{self.passes}/{len(self.attempts)} passed"
        failed = ", ".join(f"{name} ×{count}" for name, count in self.classes().most_common())
        return f"{text} — {failed}" if failed else text

    def pass_at(self, k: int) -> float:
        """pass@k: the chance that at least one of k attempts passes (unbiased, from n attempts)."""
        n, c = len(self.attempts), self.passes
        return 1.0 - comb(n - c, k) / comb(n, k) if 0 < k <= n else 0.0

    def pass_hat(self, k: int) -> float:
        """pass^k: the chance that all of k attempts pass."""
        n, c = len(self.attempts), self.passes
        return comb(c, k) / comb(n, k) if 0 < k <= n else 0.0

    @property
    def shown(self) -> Attempt:
        """The attempt whose evidence the item shows: the first failed one when the item fails, else the last."""
        failed = [a for a in self.attempts if a.failure is not None]
        return failed[0] if failed and not self.passed else self.attempts[-1]

    def failure(self) -> ScenarioFailure | None:
        """The item's failure: the attempt's own with one attempt, else one naming how many passed."""
        if self.passed:
            return None
        if len(self.attempts) == 1:
            return self.attempts[0].failure
        common = self.classes().most_common(1)[0][0]
        evidence = [f"attempt {a.number}: {a.failure}" for a in self.attempts if a.failure is not None]
        shown = self.shown.failure
        return ScenarioFailure(
            common,
            f"{self.summary()} (min_pass {self.min_pass:g})",
            evidence + ([f"attempt {self.shown.number} in detail:", *shown.evidence] if shown else []),
        )

    def record(self) -> dict[str, Any] | None:
        """The repeat figures for the JSONL log and the report (None for one attempt)."""
        n = len(self.attempts)
        if n <= 1:
            return None
        return {
            "passed": self.passes,
            "attempts": n,
            "min_pass": self.min_pass,
            "classes": dict(self.classes()),
            "pass_at_1": round(self.pass_at(1), 4),
            "pass_at_n": round(self.pass_at(n), 4),
            "pass_hat_n": round(self.pass_hat(n), 4),
        }


@dataclass(frozen=True)
class Request:
    """What one item asks the executor for."""

    prompt: str
    output_file: Path
    model: str
    timeout: float
    label: str
    expectations: Expectations
    fault: str | None


@dataclass(frozen=True)
class Grader:
    """Who grades rubrics: a model (default: the item's own), how many votes, and who answers."""

    model: str | None = None
    votes: int = 1
    kind: str = "scripted"  # or "replayed", "model": who answers the grader's requests


class AttemptRunner(Protocol):
    """What `run_item` needs of an executor (`run.attempt.Executor` is one): run an attempt, check it, and the
    provider endpoint the grader asks through."""

    endpoint: Endpoint

    def run(
        self,
        prompt: str,
        *,
        output_file: Path | str,
        model: str | None = None,
        expected_model: str | None = None,
        timeout: float | None = None,
        fault: str | None = None,
        fault_requests: int | None = None,
        label: str = "scenario",
    ) -> ScenarioOutcome: ...

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None: ...


def _check(executor: AttemptRunner, outcome: ScenarioOutcome, expectations: Expectations) -> ScenarioFailure | None:
    try:
        executor.check(outcome, expectations)
    except ScenarioFailure as failure:
        return failure
    return None


def _grade(executor: AttemptRunner, request: Request, outcome: ScenarioOutcome, label: str, grader: Grader) -> None:
    """Grade the output file against the rubric through the scenario's own provider (its cassette, its audit)."""
    call = executor.endpoint.open(label, fresh=False)
    try:
        rubric = grade(
            call.url,
            executor.endpoint.token,
            grader.model or request.model,
            list(request.expectations.rubric),
            outcome.output_text,
            grader.votes,
            request.timeout,
            grader.kind,
        )
    finally:
        call.close()
    outcome.grader = rubric.grader
    outcome.grader_error = rubric.error
    outcome.rubric = [c.record() for c in rubric.criteria]
    outcome.grader_requests = [r for r in call.requests() if r.user_agent.startswith(USER_AGENT)]


def run_item(
    executor: AttemptRunner,
    request: Request,
    repeat: int,
    retries: int,
    min_pass: float,
    prices: Prices,
    budget: Budget,
    grader: Grader | None = None,
) -> Verdict:
    """`repeat` attempts of one item, each rerun after a failure while `retries` allow."""
    verdict = Verdict(min_pass=min_pass)
    grader = grader or Grader()
    for number in range(1, repeat + 1):
        # Each repeated attempt has its own label: its own cassette, never a replay of attempt 1. The
        # scripted model counts `fault_requests` across them (it strips the `~N`).
        label = request.label if number == 1 else f"{request.label}~{number}"
        earlier: list[str] = []
        for run in range(1, retries + 2):
            outcome = executor.run(
                request.prompt,
                output_file=request.output_file,
                model=request.model,
                expected_model=request.model,
                timeout=request.timeout,
                fault=request.fault,
                fault_requests=request.expectations.fault_requests,
                label=label,
            )
            outcome.attempts = run
            outcome.earlier_failures = earlier
            failure = _check(executor, outcome, request.expectations)
            if failure is None and request.expectations.rubric:
                # Judged only once the deterministic checks hold: a grader call spent on a missing file is waste.
                _grade(executor, request, outcome, label, grader)
                failure = _check(executor, outcome, request.expectations)
            outcome.cost_usd = prices.of_requests(outcome.every_request)
            budget.add(outcome.cost_usd)
            if failure is not None and failure.stops_run:
                budget.halt(failure.stops_run)  # a spent plan, a login gone: no rerun, no later scenario helps
            if failure is None or run > retries or failure.stops_run:
                verdict.attempts.append(Attempt(number, outcome, failure))
                break
            earlier.append(str(failure))
        if budget.halted() is not None:
            break
    return verdict
