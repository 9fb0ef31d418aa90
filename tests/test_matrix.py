"""Real models are not deterministic: a model matrix, repeated attempts with a pass threshold, a baseline diff."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from tests.conftest import assert_nothing_left_open, jsonl, outputs, run, strict, write
from tests.test_report import report_texts, table_cells

TWO_MODELS = ("--interllm-model", "gpt-5-codex", "--interllm-model", "gpt-5.2-codex")


def test_a_model_matrix_runs_every_scenario_on_every_model(project: pytest.Pytester) -> None:
    args = (*TWO_MODELS, "-n", "2", "--interllm-summary", "s.md", *strict(project))
    result = run(project, "--interllm", "input/list.md", *args)
    result.assert_outcomes(passed=6)
    assert_nothing_left_open(result)
    assert len(outputs(project)) == 6 and "scenario_003@gpt-5.2-codex.md" in outputs(project)
    summary = (project.path / "s.md").read_text()
    assert "### Models compared" in summary and "| # | scenario | gpt-5-codex | gpt-5.2-codex |" in summary
    assert "| | **all scenarios** | 3/3 passed = 100.0% (95% CI 43.9–100.0%)" in summary
    schema = json.loads(resources.files("pytest_interllm.schema").joinpath("run-record.schema.json").read_text())
    by_model: dict[str, set[str]] = {}
    for record in jsonl(project):
        jsonschema.validate(record, schema)
        by_model.setdefault(record["expected_model"], set()).add(record["session_model"])
    assert by_model == {"gpt-5-codex": {"gpt-5-codex"}, "gpt-5.2-codex": {"gpt-5.2-codex"}}  # checked per item


def test_k_selects_every_model_of_a_scenario_and_yaml_pins_one(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "3:\n  model: gpt-5-codex\n")
    result = project.runpytest("--interllm", "input/list.md", *TWO_MODELS, "--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == [
        "input/list.md::scenario_001-copy-the-orders-table-to-the-warehouse[gpt-5-codex]",
        "input/list.md::scenario_001-copy-the-orders-table-to-the-warehouse[gpt-5.2-codex]",
        "input/list.md::scenario_002-stream-cdc-events-to-kafka[gpt-5-codex]",
        "input/list.md::scenario_002-stream-cdc-events-to-kafka[gpt-5.2-codex]",
        "input/list.md::scenario_003-pick-up-csv-drops-from-sftp",
    ]
    selected = project.runpytest(
        "--interllm", "input/list.md", *TWO_MODELS, "--collect-only", "-q", "-k", "scenario_002"
    )
    assert len([line for line in selected.outlines if "::" in line]) == 2
    one = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q")
    assert "input/list.md::scenario_002-stream-cdc-events-to-kafka" in one.outlines  # one model: names unchanged


def test_repeats_give_one_verdict_per_item(project: pytest.Pytester) -> None:
    """The same attempts (the first fails) under `--interllm-min-pass 0.6` pass; under a YAML min_pass of 1 (every
    attempt), which beats the flag, they fail."""
    fault = "  fault: no-write\n  fault_requests: 1\n"
    write(project.path / "scenarios" / "list.yaml", f"1:\n{fault}2:\n{fault}  min_pass: 1\n")
    args = ("-k", "scenario_001 or scenario_002", "--interllm-repeat", "3", "--interllm-min-pass", "0.6")
    result = run(project, "--interllm", "input/list.md", *args, "--html=r.html")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    rows = table_cells(project.path / "r.html").values()
    assert [row[6] for row in rows] == [
        "2/3 passed (95% CI 21–94%) — no-output-file ×1"
    ] * 2  # the report's Attempts column
    assert "attempts (3)" in "".join(report_texts(project.path / "r.html").values())
    lines = {
        1: "Copy the orders table to the warehouse — PASSED (2/3 passed (95% CI 21–94%) — no-output-file ×1)",
        2: "Stream CDC events to Kafka — FAILED [[]no-output-file[]] (2/3 passed (95% CI 21–94%) — no-output-file ×1)",
    }
    for index, line in lines.items():
        result.stdout.fnmatch_lines([f"*END   scenario {index}/3: {line} in *"])
    for record in jsonl(project):
        assert record["repeat"]["passed"] == 2 and record["repeat"]["attempts"] == 3
        assert record["repeat"]["classes"] == {"no-output-file": 1}
        assert (record["repeat"]["pass_at_1"], record["repeat"]["pass_at_n"], record["repeat"]["pass_hat_n"]) == (
            0.6667,
            1.0,
            0.0,
        )
        first, second, third = record["runs"]
        assert first["failure_class"] == "no-output-file" and first["final_output"].startswith("Here is the plan")
        assert second["result"] == third["result"] == "passed" and second["final_output"].startswith("Wrote the plan")
        assert record["tokens_in"] == sum(r["tokens_in"] for r in record["runs"])


def test_a_yaml_min_pass_and_the_failure_names_each_failed_attempt(project: pytest.Pytester) -> None:
    write(
        project.path / "scenarios" / "list.yaml", "defaults:\n  min_pass: 0.5\n1:\n  fault: no-write\n  min_pass: 1\n"
    )
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001 or scenario_002", "--interllm-repeat", "2")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "[[]no-output-file[]] 0/2 passed (95% CI 0–66%) — no-output-file ×2 (min_pass 1)",
            "evidence:",
            "  attempt 1: [[]no-output-file[]] outputs/scenario_001.md was not created*",
            "  attempt 2: [[]no-output-file[]] outputs/scenario_001.md was not created*",
        ]
    )


def test_each_repeated_attempt_records_its_own_cassette(project: pytest.Pytester) -> None:
    args = ("--interllm", "input/list.md", "-k", "scenario_001", "--interllm-repeat", "2")
    run(project, *args, "--interllm-provider", "record").assert_outcomes(passed=1, deselected=2)
    assert sorted(p.name for p in (project.path / "cassettes" / "list").iterdir()) == [
        "scenario_001.yaml",
        "scenario_001~2.yaml",
    ]
    replayed = run(project, *args, "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=1, deselected=2)
    replayed.stdout.fnmatch_lines(["interllm: proxy: 4 requests, 0 sent upstream, 4 replayed*"])


@pytest.mark.long
def test_a_baseline_names_what_regressed_significantly_and_nothing_else(project: pytest.Pytester) -> None:
    four = ("--interllm-repeat", "4")
    run(project, "--interllm", "input/list.md", *four, "--interllm-log-dir", "base").assert_outcomes(passed=3)
    [base] = (project.path / "base").glob("run-*.jsonl")
    write(project.path / "scenarios" / "list.yaml", "2:\n  fault: no-write\n")
    result = run(
        project, "--interllm", "input/list.md", *four, "--interllm-baseline", str(base), "--interllm-summary", "s.md"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "interllm: baseline base/run-*.jsonl: 1 regressed, 0 fixed, 0 within noise, 0 unmeasured, 0 new, "
            "0 removed, 2 unchanged (Fisher's exact test per scenario, alpha 0.05)",
            "interllm: across 3 scenarios measured on both sides: 0 better, 1 worse, 2 the same; pass rate -33.3 "
            "points (95% CI -100.0 to +100.0), sign test p = 1.00",
            "interllm: regressed scenario_002-stream-cdc-events-to-kafka: passed 4/4 → failed 0/4 "
            "[[]no-output-file[]] (p = 0.03; tokens *, duration *)",
        ]
    )
    summary = (project.path / "s.md").read_text()
    assert summary.count("regressed") == 2  # the tally and scenario 2's row
    assert (
        "| **regressed** | scenario_002-stream-cdc-events-to-kafka | passed 4/4 → failed 0/4 [no-output-file] | "
        "p = 0.03 |" in summary
    )
    assert "scenario_001" not in summary.split("### Changes since the baseline")[1]
    assert "-## Goal" in summary  # the output file's diff against the baseline's
    # And back: the fault gone, 0/4 → 4/4 is a fix at alpha 0.05 (p = 0.029), and within noise at 0.01.
    (project.path / "scenarios" / "list.yaml").unlink()
    directory = project.runpytest("--interllm", "input/list.md", "--interllm-baseline", "logs", "--collect-only")
    assert directory.ret == pytest.ExitCode.USAGE_ERROR  # a directory is no log
    [failing] = (project.path / "logs").glob("run-*.jsonl")
    again = run(
        project, "--interllm", "input/list.md", *four, "-k", "scenario_002", "--interllm-baseline", str(failing),
        "--interllm-alpha", "0.01",
    )  # fmt: skip
    again.stdout.fnmatch_lines(
        [
            "interllm: baseline *: 0 regressed, 0 fixed, 1 within noise, 0 unmeasured, 0 new, 2 removed, 0 unchanged "
            "(Fisher's exact test per scenario, alpha 0.01)",
            "interllm: within noise scenario_002-stream-cdc-events-to-kafka: failed 0/4 [[]no-output-file[]] → "
            "passed 4/4 (p = 0.03; 5 attempts a side would decide it (+1 now, +1 in the baseline)*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["--interllm-repeat", "0"], {}, "ERROR: --interllm-repeat: '0' must be greater than 0"),
        (
            ["--interllm-min-pass", "1.5"],
            {},
            "ERROR: --interllm-min-pass: '1.5' must be at most 1 (1.0: every attempt)",
        ),
        (["--interllm-model", "gpt-5-codex,"], {}, "ERROR: --interllm-model: the expected model is empty*"),
        (
            ["--interllm-baseline", "old.jsonl"],
            {"old.jsonl": '{"nodeid": "a"}\nnot json\n'},
            "ERROR: --interllm-baseline: */old.jsonl:2: not a JSON record*",
        ),
    ],
)
def test_bad_matrix_repeat_and_baseline_values_are_usage_errors(
    project: pytest.Pytester, args: list[str], files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        write(project.path / name, text)
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_yaml_min_pass_out_of_range_names_its_line(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1: {}\n2:\n  min_pass: 2\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(["*scenarios/list.yaml:3: 'min_pass' must be at most 1 (1.0: every attempt), got 2*"])
