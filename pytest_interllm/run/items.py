"""Running one item: its repeated attempts (`--interllm-repeat`), the rerun of a failed attempt
(`--interllm-retries`), the rerun of an attempt that failed for infrastructure (`--interllm-retry-infra`), their
cost, and the one verdict the item reports.

Repeats measure: every attempt the agent is answerable for counts, and the item passes when enough of them pass
(`min_pass`). Retries forgive: a failed attempt is run again until it passes or the retries run out, and only its
last run counts. An attempt that failed for infrastructure (the provider, codex) measures nothing of the agent: it
is counted apart, never in the pass rate, and `--interllm-retry-infra` runs it again in its place.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any, Protocol

from pytest_interllm.cost import Budget, Prices
from pytest_interllm.endpoint import Endpoint
from pytest_interllm.errors import AGENT, CONFIGURATION, INFRASTRUCTURE, ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.grader import USER_AGENT, grade
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.stats import wilson
from pytest_interllm.workspace import Spec
from pytest_interllm.workspace import remove as remove_workspace


@dataclass
class Attempt:
    """One counted attempt of an item: its last run's evidence and its failure, if any; `replaced`: the failures
    of runs before it that infrastructure caused (re-run with `--interllm-retry-infra`, not counted)."""

    number: int
    outcome: ScenarioOutcome
    failure: ScenarioFailure | None
    replaced: list[ScenarioFailure] = field(default_factory=list)

    @property
    def group(self) -> str | None:
        """Who caused its failure (None when it passed)."""
        return self.failure.group if self.failure is not None else None


@dataclass
class Verdict:
    """The attempts of one item and what they add up to."""

    min_pass: float
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def measured(self) -> list[Attempt]:
        """The attempts that measure the agent: passed, or failed by the agent's doing."""
        return [a for a in self.attempts if a.group in (None, AGENT)]

    @property
    def passes(self) -> int:
        return sum(1 for a in self.attempts if a.failure is None)

    def apart(self, group: str) -> list[Attempt]:
        """The attempts that failed for `group` (infrastructure, configuration): not in the pass rate."""
        return [a for a in self.attempts if a.group == group]

    @property
    def passed(self) -> bool:
        # A run not set up as asked fails whatever the agent did; without a measured attempt there is no verdict.
        measured = self.measured
        if not measured or self.apart(CONFIGURATION):
            return False
        return self.passes / len(measured) >= self.min_pass - 1e-9

    def classes(self) -> Counter[str]:
        """Failure classes of the failed attempts."""
        return Counter(a.failure.failure_class for a in self.attempts if a.failure is not None)

    def summary(self) -> str:
        """`2/3 passed (95% CI 21–94%) — no-output-file ×1; apart: provider-error ×1 (infrastructure)`."""
        n = len(self.measured)
        low, high = wilson(self.passes, n)
        text = f"{self.passes}/{n} passed" + (f" (95% CI {low * 100:.0f}–{high:.0%})" if n else "")
        agent = Counter(a.failure.failure_class for a in self.measured if a.failure is not None)
        text += " — " + ", ".join(f"{name} ×{count}" for name, count in agent.most_common()) if agent else ""
        others = [
            f"{name} ×{count} ({group})"
            for group in (INFRASTRUCTURE, CONFIGURATION)
            for name, count in Counter(a.failure.failure_class for a in self.apart(group) if a.failure).most_common()
        ]
        return text + (f"; apart: {', '.join(others)}" if others else "")

    def pass_at(self, k: int) -> float:
        """pass@k: the chance that at least one of k measured attempts passes (unbiased, from n attempts)."""
        n, c = len(self.measured), self.passes
        return 1.0 - comb(n - c, k) / comb(n, k) if 0 < k <= n else 0.0

    def pass_hat(self, k: int) -> float:
        """pass^k: the chance that all of k measured attempts pass."""
        n, c = len(self.measured), self.passes
        return comb(c, k) / comb(n, k) if 0 < k <= n else 0.0

    @property
    def shown(self) -> Attempt:
        """The attempt whose evidence the item shows: the first failed one when the item fails, else the last."""
        failed = [a for a in self.attempts if a.failure is not None]
        return failed[0] if failed and not self.passed else self.attempts[-1]

    def _deciding(self) -> list[Attempt]:
        """The failed attempts that decided a failed verdict: the configuration's, else (nothing measured) the
        infrastructure's, else the agent's."""
        config = self.apart(CONFIGURATION)
        if config:
            return config
        if not self.measured:
            return self.apart(INFRASTRUCTURE)
        return [a for a in self.measured if a.failure is not None]

    def failure(self) -> ScenarioFailure | None:
        """The item's failure: the attempt's own with one attempt, else one naming how many passed."""
        if self.passed:
            return None
        if len(self.attempts) == 1:
            return self.attempts[0].failure
        deciding = self._deciding()
        common = Counter(a.failure.failure_class for a in deciding if a.failure).most_common(1)[0][0]
        group = next(a.group for a in deciding if a.failure is not None and a.failure.failure_class == common)
        evidence = [f"attempt {a.number}: {a.failure}" for a in self.attempts if a.failure is not None]
        shown = self.shown.failure
        return ScenarioFailure(
            common,
            f"{self.summary()} (min_pass {self.min_pass:g})",
            evidence + ([f"attempt {self.shown.number} in detail:", *shown.evidence] if shown else []),
            group=group,
        )

    def record(self) -> dict[str, Any] | None:
        """The repeat figures for the JSONL log and the report (None for one attempt)."""
        n = len(self.attempts)
        if n <= 1:
            return None
        measured = len(self.measured)
        low, high = wilson(self.passes, measured)
        return {
            "passed": self.passes,
            "attempts": n,
            "measured": measured,
            "infrastructure": len(self.apart(INFRASTRUCTURE)),
            "configuration": len(self.apart(CONFIGURATION)),
            "pass_rate": round(self.passes / measured, 4) if measured else None,
            "interval": [round(low, 4), round(high, 4)],
            "min_pass": self.min_pass,
            "classes": dict(self.classes()),
            "pass_at_1": round(self.pass_at(1), 4),
            "pass_at_n": round(self.pass_at(measured), 4),
            "pass_hat_n": round(self.pass_hat(measured), 4),
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
    workspace: Spec | None = None


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
        workspace: Spec | None = None,
    ) -> ScenarioOutcome: ...

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None: ...


def _check(executor: AttemptRunner, outcome: ScenarioOutcome, expectations: Expectations) -> ScenarioFailure | None:
    try:
        executor.check(outcome, expectations)
    except ScenarioFailure as failure:
        return failure
    return None


def _graded(expectations: Expectations, outcome: ScenarioOutcome) -> str:
    """What the grader judges: the output file, and with `rubric: {with: diff}` the workspace diff after it."""
    if expectations.rubric_with != "diff" or outcome.workspace_diff is None:
        return outcome.output_text
    changes = "".join(
        d["diff"] or f"{d['kind']} {d['path']}" + (" (binary)\n" if d.get("binary") else "\n")
        for d in outcome.workspace_diff
    )
    return f"{outcome.output_text}\n\n## The agent's changes to its workspace (unified diff)\n\n{changes or '(none)'}"


def _grade(executor: AttemptRunner, request: Request, outcome: ScenarioOutcome, label: str, grader: Grader) -> None:
    """Grade the output file against the rubric through the scenario's own provider (its cassette, its audit)."""
    call = executor.endpoint.open(label, fresh=False)
    try:
        rubric = grade(
            call.url,
            executor.endpoint.token,
            grader.model or request.model,
            list(request.expectations.rubric),
            _graded(request.expectations, outcome),
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


def _settle_workspace(outcome: ScenarioOutcome, failure: ScenarioFailure | None) -> None:
    """An attempt's workspace is kept for inspection when it failed, removed when it passed."""
    if outcome.workspace is None:
        return
    outcome.workspace_kept = failure is not None
    if failure is None:
        remove_workspace(Path(outcome.workspace))
    else:
        failure.evidence.append(f"workspace kept for inspection: {outcome.workspace}")


def run_item(
    executor: AttemptRunner,
    request: Request,
    repeat: int,
    retries: int,
    min_pass: float,
    prices: Prices,
    budget: Budget,
    grader: Grader | None = None,
    retry_infra: int = 0,
) -> Verdict:
    """`repeat` attempts of one item; each is run again after a failure while `retries` allow, and after a failure
    that infrastructure caused while `retry_infra` allows (that run is replaced, not counted)."""
    verdict = Verdict(min_pass=min_pass)
    grader = grader or Grader()
    for number in range(1, repeat + 1):
        # Each repeated attempt has its own label: its own cassette, never a replay of attempt 1. The
        # scripted model counts `fault_requests` across them (it strips the `~N`).
        label = request.label if number == 1 else f"{request.label}~{number}"
        earlier: list[str] = []
        replaced: list[ScenarioFailure] = []
        run = 1
        while True:
            outcome = executor.run(
                request.prompt,
                output_file=request.output_file,
                model=request.model,
                expected_model=request.model,
                timeout=request.timeout,
                fault=request.fault,
                fault_requests=request.expectations.fault_requests,
                label=label,
                workspace=request.workspace,
            )
            outcome.attempts = run
            outcome.earlier_failures = earlier
            failure = _check(executor, outcome, request.expectations)
            if failure is None and request.expectations.rubric:
                # Judged only once the deterministic checks hold: a grader call spent on a missing file is waste.
                _grade(executor, request, outcome, label, grader)
                failure = _check(executor, outcome, request.expectations)
            _settle_workspace(outcome, failure)
            outcome.cost_usd = prices.of_requests(outcome.every_request)
            budget.add(outcome.cost_usd)
            if failure is not None and failure.stops_run:
                budget.halt(failure.stops_run)  # a spent plan, a login gone: no rerun, no later scenario helps
            elif failure is not None and failure.group == INFRASTRUCTURE and len(replaced) < retry_infra:
                replaced.append(failure)  # measured nothing of the agent: run again in its place, not counted
                continue
            if failure is None or run > retries or failure.stops_run:
                verdict.attempts.append(Attempt(number, outcome, failure, replaced))
                break
            earlier.append(str(failure))
            run += 1
        if budget.halted() is not None:
            break
    return verdict
