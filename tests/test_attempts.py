"""In process, no codex: the verdict maths of repeated attempts and how `run_item` plans repeats and retries.

The executor here is a stand-in for our own executor interface (`run` → outcome, `check` → failure), fed prepared
outcomes; codex, MCP and HTTP are what the end-to-end tests run for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_interllm.cost import Budget, Prices
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome
from pytest_interllm.run import Attempt, Request, Verdict, run_item


def failure(failure_class: str = "no-output-file", headline: str = "outputs/x.md was not created") -> ScenarioFailure:
    return ScenarioFailure(failure_class, headline, [f"evidence of {headline}"])


def verdict(*results: ScenarioFailure | None, min_pass: float = 1.0) -> Verdict:
    """A verdict of attempts that passed (None) or failed as given, numbered from 1."""
    attempts = [Attempt(n, ScenarioOutcome(f"p{n}", "m", "o"), f) for n, f in enumerate(results, 1)]
    return Verdict(min_pass=min_pass, attempts=attempts)


FAIL = failure()


def test_one_attempt_is_its_own_verdict() -> None:
    passed, failed = verdict(None), verdict(FAIL)
    assert passed.passed and passed.failure() is None and passed.summary() == "1/1 passed (95% CI 21–100%)"
    assert not failed.passed and failed.failure() is FAIL  # the attempt's own failure, not a summary of one
    assert passed.record() is None and failed.record() is None  # no repeat figures for one attempt
    assert not Verdict(min_pass=1.0).passed  # no attempt is no pass


@pytest.mark.parametrize(
    ("passes", "attempts", "min_pass", "passed"),
    [
        (2, 3, 1.0, False),
        (3, 3, 1.0, True),
        (2, 3, 0.6, True),
        (2, 3, 2 / 3, True),  # exactly the share: float rounding never fails it
        (2, 3, 0.67, False),
        (1, 2, 0.5, True),
        (0, 2, 0.01, False),
    ],
)
def test_min_pass_is_the_share_of_attempts_that_must_pass(
    passes: int, attempts: int, min_pass: float, passed: bool
) -> None:
    results = [None] * passes + [FAIL] * (attempts - passes)
    assert verdict(*results, min_pass=min_pass).passed is passed


@pytest.mark.parametrize(
    ("n", "c", "k", "at", "hat"),
    [
        (3, 2, 1, 2 / 3, 2 / 3),
        (3, 2, 3, 1.0, 0.0),
        (5, 2, 2, 1 - 3 / 10, 1 / 10),  # 1 − C(3,2)/C(5,2); C(2,2)/C(5,2)
        (4, 0, 2, 0.0, 0.0),
        (4, 4, 4, 1.0, 1.0),
        (3, 2, 4, 0.0, 0.0),  # k beyond the attempts: no estimate
        (3, 2, 0, 0.0, 0.0),
    ],
)
def test_pass_at_k_and_pass_hat_k_are_the_unbiased_estimates(n: int, c: int, k: int, at: float, hat: float) -> None:
    v = verdict(*([None] * c + [FAIL] * (n - c)))
    assert v.pass_at(k) == pytest.approx(at) and v.pass_hat(k) == pytest.approx(hat)


def test_the_estimates_do_not_depend_on_the_order_of_the_attempts() -> None:
    first, last = verdict(FAIL, None, None, FAIL, None), verdict(None, None, None, FAIL, FAIL)
    for k in range(1, 6):
        assert first.pass_at(k) == last.pass_at(k) and first.pass_hat(k) == last.pass_hat(k)


def test_a_failed_item_shows_its_first_failed_attempt_a_passed_one_its_last() -> None:
    late = failure("timeout", "no answer from codex within 3s")
    failed = verdict(None, FAIL, late)
    assert failed.shown.number == 2
    passed = verdict(FAIL, None, None, min_pass=0.5)
    assert passed.passed and passed.shown.number == 3
    assert verdict(None, None).shown.number == 2


def test_the_failure_of_repeats_names_the_common_class_and_each_failed_attempt() -> None:
    timeout = failure("timeout", "no answer from codex within 3s")
    v = verdict(None, FAIL, timeout, FAIL, min_pass=0.75)
    # The timeout is infrastructure's: apart, not in the agent's 1/3.
    assert v.summary() == "1/3 passed (95% CI 6–79%) — no-output-file ×2; apart: timeout ×1 (infrastructure)"
    got = v.failure()
    assert got is not None and got.failure_class == "no-output-file"
    assert got.headline == (
        "1/3 passed (95% CI 6–79%) — no-output-file ×2; apart: timeout ×1 (infrastructure) (min_pass 0.75)"
    )
    assert got.evidence == [
        "attempt 2: [no-output-file] outputs/x.md was not created",
        "attempt 3: [timeout] no answer from codex within 3s",
        "attempt 4: [no-output-file] outputs/x.md was not created",
        "attempt 2 in detail:",
        "evidence of outputs/x.md was not created",
    ]
    assert verdict(None, FAIL, min_pass=0.5).failure() is None  # enough passed: the item passes


def test_the_repeat_record_holds_the_figures_of_the_log_and_the_report() -> None:
    assert verdict(FAIL, None, None).record() == {
        "passed": 2,
        "attempts": 3,
        "measured": 3,
        "infrastructure": 0,
        "configuration": 0,
        "pass_rate": 0.6667,
        "interval": [0.2077, 0.9385],
        "min_pass": 1.0,
        "classes": {"no-output-file": 1},
        "pass_at_1": 0.6667,
        "pass_at_n": 1.0,
        "pass_hat_n": 0.0,
    }


@dataclass
class Executor:
    """A stand-in for our executor interface: `run` hands out prepared outcomes in order and notes each call;
    `check` fails an outcome prepared to fail (with its class, and its name as the message)."""

    outcomes: Iterator[ScenarioOutcome]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def run(self, prompt: str, **kwargs: Any) -> ScenarioOutcome:
        self.calls.append({"prompt": prompt, **kwargs})
        return next(self.outcomes)

    def check(self, outcome: ScenarioOutcome, expectations: Expectations) -> None:
        given = getattr(outcome, "verdict", None)
        if given is not None:
            raise ScenarioFailure(given, outcome.prompt or "failed")


@dataclass
class Stubbed(ScenarioOutcome):
    """Evidence that carries the verdict the stand-in executor's check gives it (the outcome itself holds none)."""

    verdict: str | None = None


def outcome(failure_class: str | None = None, tokens_in: int = 1000, name: str = "") -> ScenarioOutcome:
    request = AuditRecord(0.0, "POST", "/v1/responses", "gpt-5-codex", 200, None, "codex", 0.1, tokens_in, 0)
    return Stubbed(name, "gpt-5-codex", "o", requests=[request], verdict=failure_class)


def plan(
    *outcomes: ScenarioOutcome, repeat: int = 1, retries: int = 0, min_pass: float = 1.0, retry_infra: int = 0
) -> tuple[Verdict, Executor, Budget]:
    executor = Executor(iter(outcomes))
    request = Request(
        prompt="Copy the orders table",
        output_file=Path("outputs/scenario_001.md"),
        model="gpt-5-codex",
        timeout=30.0,
        label="list/scenario_001",
        expectations=Expectations(fault="no-write", fault_requests=1),
        fault="no-write",
    )
    prices = Prices(table={"gpt-5-codex": (1_000_000.0, 0.0, 0.0)}, source="test")  # one dollar per input token
    budget = Budget(16.0)
    result = run_item(executor, request, repeat, retries, min_pass, prices, budget, retry_infra=retry_infra)
    assert next(executor.outcomes, None) is None, "every prepared outcome is used"
    return result, executor, budget


def test_each_repeat_is_a_counted_attempt_under_its_own_label() -> None:
    v, executor, _ = plan(outcome("no-output-file", name="a"), outcome(name="b"), outcome(name="c"), repeat=3)
    assert [c["label"] for c in executor.calls] == ["list/scenario_001", "list/scenario_001~2", "list/scenario_001~3"]
    assert {c["prompt"] for c in executor.calls} == {"Copy the orders table"}
    assert {
        (c["model"], c["expected_model"], c["timeout"], c["fault"], c["fault_requests"]) for c in executor.calls
    } == {("gpt-5-codex", "gpt-5-codex", 30.0, "no-write", 1)}
    assert [(a.number, a.outcome.prompt, a.failure is None) for a in v.attempts] == [
        (1, "a", False),
        (2, "b", True),
        (3, "c", True),
    ]
    assert not v.passed and v.summary() == "2/3 passed (95% CI 21–94%) — no-output-file ×1"


def test_a_retry_reruns_a_failed_attempt_and_only_its_last_run_counts() -> None:
    v, executor, _ = plan(outcome("no-output-file", name="first"), outcome(name="second"), retries=2)
    assert [c["label"] for c in executor.calls] == ["list/scenario_001"] * 2  # a retry replays the same cassette
    [attempt] = v.attempts
    assert attempt.failure is None and attempt.outcome.prompt == "second"
    assert attempt.outcome.attempts == 2  # reported as flaky: passed on its second run
    assert attempt.outcome.earlier_failures == ["[no-output-file] first"]
    assert v.passed


def test_retries_run_out_and_the_last_failure_counts() -> None:
    v, executor, _ = plan(outcome("no-output-file", name="1"), outcome("timeout", name="2"), retries=1)
    [attempt] = v.attempts
    assert attempt.failure is not None and attempt.failure.failure_class == "timeout"
    assert attempt.outcome.attempts == 2 and attempt.outcome.earlier_failures == ["[no-output-file] 1"]
    assert len(executor.calls) == 2


def test_repeats_and_retries_together() -> None:
    """Two repeats, one retry each: attempt 1 fails then passes, attempt 2 fails twice (a passed run is not retried)."""
    v, executor, _ = plan(
        outcome("no-output-file", name="1a"),
        outcome(name="1b"),
        outcome("no-output-file", name="2a"),
        outcome("no-output-file", name="2b"),
        repeat=2,
        retries=1,
        min_pass=0.5,
    )
    labels = [c["label"] for c in executor.calls]
    assert labels == ["list/scenario_001", "list/scenario_001", "list/scenario_001~2", "list/scenario_001~2"]
    assert [(a.number, a.outcome.prompt, a.outcome.attempts) for a in v.attempts] == [(1, "1b", 2), (2, "2b", 2)]
    assert v.passed and v.summary() == "1/2 passed (95% CI 9–91%) — no-output-file ×1"


def test_every_run_is_costed_and_counted_against_the_budget_retried_ones_too() -> None:
    v, _, budget = plan(
        outcome("no-output-file", tokens_in=3), outcome(tokens_in=5), outcome(tokens_in=7), repeat=2, retries=1
    )
    assert [a.outcome.cost_usd for a in v.attempts] == [5.0, 7.0]
    refusal, _ = budget.start()  # 3 + 5 + 7 spent on three runs, and the next would cost their average
    assert (
        refusal
        == "interllm budget of $16.0000 reached: $15.0000 spent on 3 scenarios, the next would cost about $5.0000"
    )


def test_retry_infra_runs_an_infrastructure_failure_again_in_its_place_uncounted() -> None:
    v, executor, _ = plan(outcome("provider-error", name="refused"), outcome(name="ran"), retry_infra=1)
    assert [c["label"] for c in executor.calls] == ["list/scenario_001"] * 2
    [attempt] = v.attempts
    assert attempt.failure is None and attempt.outcome.prompt == "ran"
    assert attempt.outcome.attempts == 1 and attempt.outcome.earlier_failures == []  # no retry of the agent's
    assert [str(f) for f in attempt.replaced] == ["[provider-error] refused"]
    assert v.passed and v.summary() == "1/1 passed (95% CI 21–100%)"


def test_retry_infra_runs_out_and_the_failure_stays_infrastructures() -> None:
    v, executor, _ = plan(outcome("timeout", name="1"), outcome("codex-crashed", name="2"), retry_infra=1)
    [attempt] = v.attempts
    assert len(executor.calls) == 2
    assert attempt.group == "infrastructure" and len(attempt.replaced) == 1
    failure = v.failure()
    assert not v.passed and failure is not None and failure.group == "infrastructure"
    assert v.measured == []  # nothing of the agent's measured


def test_retry_infra_never_reruns_the_agents_failure_nor_spends_a_retry() -> None:
    v, executor, _ = plan(outcome("no-output-file", name="agent"), retry_infra=3)
    assert len(executor.calls) == 1 and not v.passed and v.attempts[0].replaced == []
    v, executor, _ = plan(
        outcome("provider-error", name="1"),
        outcome("no-output-file", name="2"),
        outcome(name="3"),
        retries=1,
        retry_infra=1,
    )
    [attempt] = v.attempts
    assert attempt.failure is None and attempt.outcome.attempts == 2  # the retry went to the agent's failure
    assert attempt.outcome.earlier_failures == ["[no-output-file] 2"] and len(attempt.replaced) == 1


def test_without_retry_infra_an_infrastructure_failure_is_counted_apart_not_against_the_agent() -> None:
    v, _, _ = plan(outcome(name="1"), outcome("provider-error", name="2"), outcome(name="3"), repeat=3)
    assert v.passed and len(v.measured) == 2 and v.apart("infrastructure") == [v.attempts[1]]
    record = v.record()
    assert record is not None and (record["passed"], record["measured"], record["infrastructure"]) == (2, 2, 1)
