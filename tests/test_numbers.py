"""The statistics against textbook values, and the verdicts, comparisons and gate built on them, in-process."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_interllm.errors import CLASS_LIST, CLASSES, GROUPS, ScenarioFailure, group_of
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.report.baseline import judge, paired
from pytest_interllm.report.gate import GATE_FAILED, Gate
from pytest_interllm.report.gate import judge as gate_judge
from pytest_interllm.report.gate import lines as gate_lines
from pytest_interllm.report.numbers import Tally, run_tally, tally
from pytest_interllm.run.items import Attempt, Verdict
from pytest_interllm.stats import attempts_to_decide, fisher_exact, mean_interval, sign_test, t_quantile, wilson


@pytest.mark.parametrize(
    ("passed", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857, Table II, method 3 (the score interval without correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (16, 17, 0.7302, 0.9895),
        (0, 0, 0.0, 1.0),  # nothing measured: nothing known
    ],
)
def test_wilson_intervals_are_the_textbook_values(passed: int, n: int, low: float, high: float) -> None:
    got = wilson(passed, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    ("table", "p"),
    [
        ((3, 1, 1, 3), 0.4857142857),  # Fisher's lady tasting tea, two-sided
        ((6, 2, 1, 4), 0.1025641026),  # the example of scipy.stats.fisher_exact
        ((3, 0, 2, 1), 1.0),  # 3/3 then 2/3
        ((1, 0, 0, 1), 1.0),  # one attempt passed, then one failed
        ((4, 0, 0, 4), 2 / 70),
        ((10, 0, 0, 10), 2 / 184756),  # 10/10 then 0/10
    ],
)
def test_fishers_exact_test_gives_the_textbook_p(table: tuple[int, int, int, int], p: float) -> None:
    assert fisher_exact(*table) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize(
    ("better", "worse", "p"),
    [(2, 8, 112 / 1024), (1, 9, 22 / 1024), (0, 5, 2 / 32), (0, 6, 2 / 64), (5, 5, 1.0), (0, 0, 1.0)],
)
def test_the_sign_test_is_the_binomial_two_sided_p(better: int, worse: int, p: float) -> None:
    assert sign_test(better, worse) == pytest.approx(p, rel=1e-12)


def test_t_quantiles_and_a_mean_interval() -> None:
    table = {1: 12.7062, 2: 4.3027, 5: 2.5706, 10: 2.2281, 16: 2.1199, 30: 2.0423}
    assert {df: round(t_quantile(df), 4) for df in table} == table
    found = mean_interval([0.0, 0.0, -1.0, 0.0])
    assert found is not None
    mean, low, high = found
    assert (mean, low, high) == pytest.approx((-0.25, -0.25 - 3.1824 * 0.25, -0.25 + 3.1824 * 0.25), abs=1e-4)
    assert mean_interval([0.5]) is None


def test_attempts_to_decide_a_difference() -> None:
    assert attempts_to_decide(1.0, 0.0, 0.05) == 4  # 4/4 against 0/4: p = 0.029
    assert attempts_to_decide(1.0, 2 / 3, 0.05) == 14
    assert attempts_to_decide(0.5, 0.5, 0.05) is None  # no difference to decide
    assert attempts_to_decide(0.5, 0.499, 0.05) is None  # beyond any sensible run


def test_every_failure_class_belongs_to_one_group_in_the_one_table() -> None:
    assert all(c.groups and set(c.groups) <= set(GROUPS) for c in CLASS_LIST)
    groups = {c.name: c.group for c in CLASS_LIST}
    assert {name for name, g in groups.items() if g == "agent"} == {
        "no-output-file",
        "expectation-failed",
        "rubric-failed",
        "changes-failed",
        "commands-failed",
        "check-failed",
    }
    assert {name for name, g in groups.items() if g == "infrastructure"} == {
        "provider-error",
        "usage-limit",
        "timeout",
        "codex-crashed",
        "mcp-protocol",
        "cassette-mismatch",
    }
    assert CLASSES["model-mismatch"].groups == ("configuration", "agent")  # the evidence may name the agent
    assert ScenarioFailure("model-mismatch", "x", group="agent").group == "agent"
    with pytest.raises(AssertionError):
        ScenarioFailure("provider-error", "x", group="agent")  # a provider error is never the agent's
    assert group_of("no-output-file") == "agent" and group_of("model-mismatch", "agent") == "agent"
    assert group_of(None) == "configuration"  # an item that never reached codex


def attempt(number: int, failure_class: str | None, group: str | None = None) -> Attempt:
    outcome = ScenarioOutcome(prompt="p", expected_model="m", output_path="o")
    failure = ScenarioFailure(failure_class, "why", group=group) if failure_class else None
    return Attempt(number, outcome, failure)


def verdict(*classes: str | None, min_pass: float = 1.0) -> Verdict:
    return Verdict(min_pass, [attempt(n, c) for n, c in enumerate(classes, 1)])


def test_an_infrastructure_failure_never_lowers_the_agents_pass_rate() -> None:
    three = verdict(None, "provider-error", None)
    assert three.passed and len(three.measured) == 2 and three.pass_at(1) == 1.0
    assert three.summary() == "2/2 passed (95% CI 34–100%); apart: provider-error ×1 (infrastructure)"
    assert three.record() is not None and three.record()["measured"] == 2  # type: ignore[index]
    only = verdict("timeout", "codex-crashed")
    failure = only.failure()
    assert not only.passed and failure is not None and failure.group == "infrastructure"
    mixed = verdict(None, "no-output-file", "provider-error")
    failure = mixed.failure()
    assert failure is not None and failure.failure_class == "no-output-file"  # the agent's failure decided it
    assert failure.headline.startswith("1/2 passed (95% CI 9–91%) — no-output-file ×1; apart: provider-error ×1")
    configured = verdict(None, None, "config-mismatch")
    failure = configured.failure()
    assert not configured.passed and failure is not None and failure.failure_class == "config-mismatch"


def record(result: str, runs: list[tuple[str, str | None]] | None = None, **more: Any) -> dict[str, Any]:
    """A scenario record as an earlier log holds it (only what the comparison reads)."""
    base: dict[str, Any] = {"nodeid": "list.md::scenario_001", "name": "scenario_001", "result": result}
    base["failure_class"] = next((c for r, c in runs or [] if c), None) if runs else more.get("failure_class")
    if runs:
        base["runs"] = [{"result": r, "failure_class": c} for r, c in runs]
    return {**base, **more}


def repeated(passed: int, n: int, failure_class: str = "no-output-file") -> dict[str, Any]:
    runs: list[tuple[str, str | None]] = [("passed", None)] * passed + [("failed", failure_class)] * (n - passed)
    return record("passed" if passed == n else "failed", runs)


def test_counts_from_records_old_and_new() -> None:
    assert tally(repeated(2, 3)) == Tally(passed=2, measured=3)
    assert tally(record("failed", failure_class="provider-error")) == Tally(infrastructure=1)
    assert tally(record("failed", failure_class="model-mismatch", failure_group="agent")) == Tally(measured=1)
    assert tally(record("skipped")) == Tally()
    both = run_tally([repeated(3, 3), record("failed", failure_class="empty-model")])
    assert both == Tally(passed=3, measured=3, configuration=1)
    assert both.text() == "3/3 passed = 100.0% (95% CI 43.9–100.0%)"
    assert both.apart() == "1 configuration failure apart"


def test_two_of_three_against_three_of_three_is_within_noise_and_ten_to_zero_regressed() -> None:
    noise = judge(repeated(3, 3), repeated(2, 3), 0.05)
    assert (noise.status, noise.p) == ("within noise", 1.0)
    assert noise.significance() == "p = 1.00; 14 attempts a side would decide it (+11 now, +11 in the baseline)"
    regressed = judge(repeated(10, 10), repeated(0, 10), 0.05)
    assert regressed.status == "regressed" and regressed.p == pytest.approx(2 / 184756)
    assert regressed.significance() == "p = 1.1e-05"
    fixed = judge(repeated(0, 4), repeated(4, 4), 0.05)
    assert fixed.status == "fixed"
    assert judge(repeated(0, 4), repeated(4, 4), 0.01).status == "within noise"  # --interllm-alpha decides
    assert judge(repeated(3, 3), repeated(3, 3), 0.05).status == "unchanged"
    infra = record("failed", failure_class="provider-error")
    assert judge(repeated(3, 3), infra, 0.05).status == "unmeasured"
    across = paired([noise, regressed, fixed])
    assert across is not None and (across.better, across.worse, across.same) == (1, 2, 0)
    assert across.p == 1.0 and across.change == pytest.approx((-1 / 3 - 1 + 1) / 3)


@pytest.mark.parametrize(
    ("gate", "status", "not_agents", "exit_status"),
    [
        (Gate(0.9), 1, [], 0),  # 94.1% ≥ 90%: the gate forgives the agent's one failure
        (Gate(0.9, "lower-bound"), 1, [], GATE_FAILED),  # 73.0% < 90%
        (Gate(0.7, "lower-bound"), 1, [], 0),
        (Gate(0.9), 1, ["scenario_002 (infrastructure: provider-error)"], 1),  # not the agent's: not forgiven
        (Gate(0.95), 1, [], GATE_FAILED),
        (Gate(0.95), 2, [], None),  # interrupted: pytest's status stands
        (Gate(0.95), 5, [], None),  # no test ran: pytest's 5 stands
    ],
)
def test_the_gate_on_sixteen_of_seventeen(
    gate: Gate, status: int, not_agents: list[str], exit_status: int | None
) -> None:
    judged = gate_judge(gate, Tally(passed=16, measured=17), None, not_agents, status)
    assert judged.exit_status == exit_status
    assert judged.failed == (gate.fail_under == 0.95 or exit_status == GATE_FAILED)
    assert judged.record(gate)["pytest_status"] == status


def test_a_run_stopped_early_is_not_gated() -> None:
    """`-x` or `--maxfail` end the run with exit 1: the numbers of part of a run decide nothing either way."""
    for fail_under in (0.5, 0.99):
        judged = gate_judge(Gate(fail_under), Tally(passed=16, measured=17), None, [], 1, stopped=True)
        assert judged.exit_status is None
    assert gate_lines(judged)[-1] == (
        "interllm: gate not applied: pytest's exit status 1 stands (the run was interrupted, stopped early or ran no "
        "test)"
    )


def test_the_gate_fails_on_nothing_measured_and_on_a_significant_regression() -> None:
    nothing = gate_judge(Gate(0.0), Tally(infrastructure=3), None, [], 1)
    assert nothing.exit_status == GATE_FAILED and "no attempt measured the agent" in nothing.checks[0]
    changes = [judge(repeated(10, 10), repeated(0, 10), 0.05), judge(repeated(3, 3), repeated(2, 3), 0.05)]
    regressed = gate_judge(Gate(fail_on="regressed"), Tally(passed=2, measured=13), changes, [], 1)
    assert regressed.exit_status == GATE_FAILED
    assert regressed.checks == ["1 scenario regressed significantly: scenario_001: FAILED"]
    noise = gate_judge(Gate(fail_on="regressed"), Tally(passed=2, measured=3), changes[1:], [], 1)
    assert noise.exit_status == 0 and noise.checks == ["0 scenarios regressed significantly: held"]


def test_the_paired_comparison_across_scenarios_as_the_readme_shows_it() -> None:
    changes = [judge(record("passed"), record("passed"), 0.05) for _ in range(16)]
    changes.append(judge(record("passed"), record("failed", failure_class="no-output-file"), 0.05))
    assert changes[-1].status == "within noise" and changes[-1].p == 1.0  # one attempt a side: never significant
    across = paired(changes)
    assert across is not None and across.text() == (
        "across 17 scenarios measured on both sides: 0 better, 1 worse, 16 the same; pass rate -5.9 points "
        "(95% CI -18.4 to +6.6), sign test p = 1.00"
    )
    many = paired([judge(repeated(1, 1), repeated(0, 1), 0.05)] * 6)
    assert many is not None and many.p == pytest.approx(2 / 64) and many.interval is not None  # 6 of 6 worse


def test_a_matrix_cell_with_repeats_carries_its_interval() -> None:
    from pytest_interllm.report.summary import matrix_cell, pass_rates

    cell = {**repeated(2, 3), "repeat": {"classes": {"no-output-file": 1}, "pass_at_1": 0.67, "pass_at_n": 1.0}}
    cell |= {"tokens_in": 10, "tokens_out": 5, "cost_usd": None, "duration": 1.0}
    cell["repeat"]["pass_hat_n"] = 0.0
    assert matrix_cell(cell) == "❌ failed 2/3 — no-output-file ×1 · 95% CI 21–94% · 15 tok · — · 1.0s"
    assert pass_rates(cell).startswith("67% (95% CI 21–94%) · pass@1 0.67")
