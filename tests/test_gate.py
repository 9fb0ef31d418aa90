"""Numbers a team can gate CI on, end to end: the baseline's exact test, failures apart by who caused them,
`--interllm-retry-infra`, and the gate's own exit code."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_interllm.report.gate import GATE_FAILED
from tests.conftest import jsonl, log_lines, run, write
from tests.test_report import table_cells

EXAMPLE = Path(__file__).resolve().parents[1] / "input" / "DataTransferScenarioList.md"
FIRST = "input/list.md::scenario_001-copy-the-orders-table-to-the-warehouse"
SECOND = "input/list.md::scenario_002-stream-cdc-events-to-kafka"


def schema() -> dict[str, Any]:
    text = resources.files("pytest_interllm.schema").joinpath("run-record.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def earlier(nodeid: str, passed: int, attempts: int) -> dict[str, Any]:
    """A baseline record as an earlier run with `--interllm-repeat` logged it (what the comparison reads)."""
    runs = [{"attempt": n, "result": "passed" if n <= passed else "failed"} for n in range(1, attempts + 1)]
    for each in runs:
        each["failure_class"] = None if each["result"] == "passed" else "no-output-file"
    return {
        "nodeid": nodeid,
        "name": nodeid.split("::")[1],
        "result": "passed" if passed == attempts else "failed",
        "failure_class": None if passed == attempts else "no-output-file",
        "runs": runs,
    }


def test_two_of_three_is_within_noise_and_zero_of_ten_regressed_failing_the_gate(project: pytest.Pytester) -> None:
    base = project.path / "baseline.jsonl"
    base.write_text("".join(json.dumps(r) + "\n" for r in (earlier(FIRST, 3, 3), earlier(SECOND, 10, 10))))
    write(
        project.path / "scenarios" / "list.yaml", "1:\n  fault: no-write\n  fault_requests: 1\n2:\n  fault: no-write\n"
    )
    gate = ("--interllm-baseline", "baseline.jsonl", "--interllm-fail-on", "regressed", "--interllm-summary", "s.md")
    noise = run(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-repeat", "3", *gate)
    noise.assert_outcomes(failed=1, deselected=2)  # 2/3 fails min_pass 1.0 …
    assert noise.ret == pytest.ExitCode.OK  # … but the gate decides: no significant regression
    noise.stdout.fnmatch_lines(
        [
            "interllm: baseline baseline.jsonl: 0 regressed, 0 fixed, 1 within noise, 0 unmeasured, 0 new, 1 removed, "
            "0 unchanged (Fisher's exact test per scenario, alpha 0.05)",
            "interllm: within noise scenario_001-copy-the-orders-table-to-the-warehouse: passed 3/3 → failed 2/3 "
            "[[]no-output-file[]] (p = 1.00; 14 attempts a side would decide it (+11 now, +11 in the baseline))",
            "interllm: gate: 0 scenarios regressed significantly: held",
            "interllm: gate held: exit status 0",
        ]
    )
    ten = ("-k", "scenario_002", "--interllm-repeat", "10", "--interllm-log-dir", "ten")
    regressed = run(project, "--interllm", "input/list.md", *ten, *gate)
    regressed.assert_outcomes(failed=1, deselected=2)
    assert regressed.ret == GATE_FAILED == 6
    regressed.stdout.fnmatch_lines(
        [
            "interllm: regressed scenario_002-stream-cdc-events-to-kafka: passed 10/10 → failed 0/10 "
            "[[]no-output-file[]] (p = 1.1e-05)",
            "interllm: gate: 1 scenario regressed significantly: scenario_002-stream-cdc-events-to-kafka: FAILED",
            "interllm: gate FAILED: exit status 6",
        ]
    )
    summary = (project.path / "s.md").read_text()  # both runs appended to the step summary
    assert (
        "| **within noise** | scenario_001-copy-the-orders-table-to-the-warehouse | passed 3/3 → failed 2/3" in summary
    )
    assert "### Gate ✅ held" in summary and "### Gate ❌ failed" in summary and "exit status 6" in summary
    assert "**pass rate 0/10 passed = 0.0% (95% CI 0.0–27.8%) on the agent's attempts**" in summary
    *scenarios, last = log_lines(project, "ten")
    for line in [*scenarios, last]:
        jsonschema.validate(line, schema())
    assert last["record"] == "summary" and last["run"]["interval"] == [0.0, 0.2775]
    assert last["gate"]["exit_status"] == 6 and last["baseline"]["tally"]["regressed"] == 1
    [change] = [c for c in last["baseline"]["changes"] if c["status"] == "regressed"]
    assert (
        change["before"] == [10, 10]
        and change["after"] == [0, 10]
        and change["p"] == pytest.approx(2 / 184756, rel=1e-5)
    )


def test_a_provider_error_is_infrastructure_apart_and_retry_infra_runs_it_again(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "2:\n  fault: http-500\n  fault_requests: 1\n")
    args = ("--interllm", "input/list.md", "--interllm-provider-retries", "0", "--interllm-fail-under", "0.5")
    apart = run(project, *args, "--html", "r.html", "--interllm-summary", "s.md")
    apart.assert_outcomes(passed=2, failed=1)
    assert apart.ret == pytest.ExitCode.TESTS_FAILED  # the gate held, but a failure it did not measure stands
    apart.stdout.fnmatch_lines(
        [
            "caused by: infrastructure (not counted in the agent's pass rate)",
            "interllm: pass rate 2/2 passed = 100.0% (95% CI 34.2–100.0%) on the agent's attempts; "
            "1 infrastructure failure apart, not counted",
            "interllm: gate: pass rate 100.0% ≥ 50.0% (2/2 passed = 100.0% (95% CI 34.2–100.0%)): held",
            "interllm: gate held, but 1 failed test(s) were not the agent's doing "
            "(scenario_002-stream-cdc-events-to-kafka (infrastructure: provider-error)): exit status 1",
        ]
    )
    _, failed, _ = jsonl(project)
    assert (failed["failure_class"], failed["failure_group"]) == ("provider-error", "infrastructure")
    for line in log_lines(project):
        jsonschema.validate(line, schema())
    assert log_lines(project)[-1]["run"] == {
        "passed": 2,
        "measured": 2,
        "infrastructure": 1,
        "configuration": 0,
        "pass_rate": 1.0,
        "interval": [0.3424, 1.0],
    }
    assert "1 infrastructure failure apart, not counted" in (project.path / "s.md").read_text()
    cells = {i.split("::")[1][:12]: c for i, c in table_cells(project.path / "r.html").items()}
    assert cells["scenario_002"][7] == "infrastructure" and cells["scenario_001"][7] == ""  # the Caused by column
    page = (project.path / "r.html").read_text(encoding="utf-8")  # the report's summary, above the table
    assert "pass rate 2/2 passed = 100.0% (95% CI 34.2–100.0%) on the agent&#x27;s attempts" in page
    assert '<h3 class="ok">Gate: held</h3>' in page and "<p>exit status 1</p>" in page
    shutil.rmtree(project.path / "logs")
    again = run(project, *args, "--interllm-retry-infra", "1")
    again.assert_outcomes(passed=3)
    assert again.ret == pytest.ExitCode.OK
    again.stdout.fnmatch_lines(
        [
            "*END   scenario 2/3: Stream CDC events to Kafka — PASSED (1 infrastructure re-run, not counted) in *",
            "interllm: pass rate 3/3 passed = 100.0% (95% CI 43.9–100.0%) on the agent's attempts",
        ]
    )
    _, second, _ = jsonl(project)
    assert second["failure_group"] is None and second["attempts"] == 1  # the re-run is no retry of the agent's
    [replaced] = second["infra_reruns"]
    assert replaced.startswith("[provider-error] codex returned HTTP 500")
    for line in log_lines(project):
        jsonschema.validate(line, schema())


@pytest.mark.long
def test_sixteen_of_seventeen_fails_under_point_nine_only_on_the_lower_bound(project: pytest.Pytester) -> None:
    shutil.copy(EXAMPLE, project.path / "input" / "list.md")
    write(project.path / "scenarios" / "list.yaml", "5:\n  fault: no-write\n")
    args = ("--interllm", "input/list.md", "-n", "2", "--interllm-fail-under", "0.9", "--interllm-log-dir", "none")
    point = run(project, *args)
    point.assert_outcomes(passed=16, failed=1)
    assert point.ret == pytest.ExitCode.OK  # 94.1% ≥ 90%: the agent's one failure is within the gate
    point.stdout.fnmatch_lines(
        ["interllm: gate: pass rate 94.1% ≥ 90.0% (16/17 passed = 94.1% (95% CI 73.0–99.0%)): held"]
    )
    lower = run(project, *args, "--interllm-gate", "lower-bound", "--interllm-summary", "s.md")
    lower.assert_outcomes(passed=16, failed=1)
    assert lower.ret == GATE_FAILED
    lower.stdout.fnmatch_lines(
        [
            "interllm: gate: lower bound of the pass rate's 95% CI 73.0% < 90.0% (16/17 passed = 94.1% (95% CI "
            "73.0–99.0%)): FAILED",
            "interllm: gate FAILED: exit status 6",
        ]
    )
    summary = (project.path / "s.md").read_text()
    assert "### Gate ❌ failed" in summary and "lower bound of the pass rate's 95% CI 73.0% < 90.0%" in summary


@pytest.mark.parametrize(
    ("env", "ini", "message"),
    [
        ({"INTERLLM_FAIL_UNDER": "nan"}, "", "INTERLLM_FAIL_UNDER: 'nan' must be a finite number"),
        ({"INTERLLM_GATE": "mean"}, "", "INTERLLM_GATE: unknown value 'mean'*"),
        ({}, "interllm_alpha = inf", "ini interllm_alpha: 'inf' must be a finite number"),
        ({}, "interllm_fail_on = regressed", "ini interllm_fail_on: regressed needs a baseline to compare with*"),
        ({}, "interllm_retry_infra = 1.5", "ini interllm_retry_infra: '1.5' is not a whole number"),
    ],
)
def test_bad_gate_values_from_env_and_ini_name_their_source(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], ini: str, message: str
) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_each_gate_option_has_its_env_and_ini_twin(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.makeini("[pytest]\ninterllm_fail_under = 0.8\ninterllm_retry_infra = 2\ninterllm_alpha = 0.2\n")
    project.makeconftest(
        "def pytest_configure(config):\n"
        "    from pytest_interllm.collect import SETTINGS_KEY\n"
        "    s = config.stash[SETTINGS_KEY]\n"
        "    print('GATE', s.fail_under, s.gate, s.fail_on, s.retry_infra, s.alpha)\n"
    )
    write(project.path / "base.jsonl", "")
    monkeypatch.setenv("INTERLLM_GATE", "lower-bound")
    monkeypatch.setenv("INTERLLM_FAIL_ON", "regressed")
    monkeypatch.setenv("INTERLLM_BASELINE", "base.jsonl")
    monkeypatch.setenv("INTERLLM_ALPHA", "0.01")  # the environment beats the ini
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-s", "--interllm-retry-infra", "1")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["GATE 0.8 lower-bound regressed 1 0.01"])


def test_help_lists_each_gate_option_with_its_twins(project: pytest.Pytester) -> None:
    result = project.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    text = " ".join(result.stdout.str().split())  # argparse wraps the lines
    for flag in ("alpha", "fail-under", "gate", "fail-on", "retry-infra"):
        env, ini = f"INTERLLM_{flag.upper().replace('-', '_')}", f"interllm_{flag.replace('-', '_')}"
        assert f"--interllm-{flag}" in text and f"Env {env}. Ini {ini}." in text
    assert "lower-bound (the lower end of its 95% Wilson interval)" in text


def test_a_run_stopped_by_x_keeps_pytests_exit_status(project: pytest.Pytester) -> None:
    """Part of a run decides nothing: a gate that would hold (any rate ≥ 0) leaves -x's exit status 1 alone."""
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: no-write\n")
    result = run(project, "--interllm", "input/list.md", "-x", "--interllm-fail-under", "0", "--interllm-log-dir", "x")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "interllm: gate: pass rate 0.0% ≥ 0.0% (0/1 passed = 0.0% (95% CI 0.0–79.3%)): held",
            "interllm: gate not applied: pytest's exit status 1 stands (the run was interrupted, stopped early or "
            "ran no test)",
        ]
    )
    assert log_lines(project, "x")[-1]["gate"]["exit_status"] is None
