"""End to end: scenarios through the real codex MCP server and the built-in scripted model."""

from __future__ import annotations

import pytest

from tests.conftest import assert_nothing_left_open, outputs, run, strict, write


def test_three_scenarios_pass_and_codex_writes_each_file(project: pytest.Pytester) -> None:
    (project.path / "outputs").mkdir()
    write(project.path / "outputs" / "notes-of-the-user.md", "mine")  # not the plugin's: it stays
    write(project.path / "outputs" / ".gitkeep", "")
    result = run(project, "--interllm", "input/list.md", *strict(project))
    result.assert_outcomes(passed=3)
    assert_nothing_left_open(result)
    assert outputs(project) == [
        ".gitkeep",
        "notes-of-the-user.md",
        "scenario_001.md",
        "scenario_002.md",
        "scenario_003.md",
    ]
    first = (project.path / "outputs" / "scenario_001.md").read_text()
    assert first.startswith("# Scenario 1: Copy the orders table to the warehouse\n")
    assert "- [ ] Use updated_at as the watermark" in first
    result.stdout.fnmatch_lines(
        [
            "interllm: provider offline (built-in scripted model*), expected model gpt-5-codex (your codex config "
            "*/.codex/config.toml), executor codex (default: a codex with mcp-server is installed (codex 0.153.4 in "
            "*))",
            "interllm: codex */0.153.4/codex_cli_bin/bin/codex (codex-cli 0.153.4), sandbox workspace-write, isolated "
            "temporary CODEX_HOME",
            "[[]20??-??-?? ??:??:??[]] START scenario 1/3: Copy the orders table to the warehouse",
            "[[]20??-??-?? ??:??:??[]] END   scenario 1/3: Copy the orders table to the warehouse — PASSED in *s",
            "[[]*[]] START scenario 3/3: Pick up CSV drops from SFTP",
            "[[]*[]] END   scenario 3/3: Pick up CSV drops from SFTP — PASSED in *s",
        ]
    )


def test_quiet_quiet_hides_status_lines_and_k_runs_exactly_one_scenario(project: pytest.Pytester) -> None:
    result = run(project, "--interllm", "input/list.md", "-qq", "--interllm-max-scenarios", "1")
    assert result.ret == pytest.ExitCode.OK
    assert outputs(project) == ["scenario_001.md"]
    assert "START scenario" not in result.stdout.str()
    result = run(project, "--interllm", "input/list.md", "-q", "-k", "scenario_002")
    result.assert_outcomes(passed=1, deselected=2)
    assert "START scenario 2/3" in result.stdout.str()  # -q keeps them
    assert outputs(project) == ["scenario_002.md"]  # only the selected one ran (the earlier run's file removed)


def test_read_only_sandbox_is_caught_by_the_file_check(project: pytest.Pytester) -> None:
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-sandbox", "read-only")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]sandbox-denied[]] outputs/scenario_001.md not written: the sandbox refused the write (exit 1)",
            "*tool call interllm_write_*: exit 1 `mkdir -p outputs*Read-only file system*",
        ]
    )


def test_expectations_fail_one_scenario_and_the_others_still_run(project: pytest.Pytester) -> None:
    write(
        project.path / "scenarios" / "list.yaml",
        "1:\n  must_contain: [watermark]\n2:\n  must_contain: [Snowflake]\n3:\n  min_words: 5000\n",
    )
    result = run(project, "--interllm", "input/list.md")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]expectation-failed[]] outputs/scenario_002.md lacks 'Snowflake' (*scenarios/list.yaml:3)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*[[]expectation-failed[]] outputs/scenario_003.md has * words, expected at least 5000*",
        ]
    )


def test_skip_and_xfail_from_expectations(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nxfail_strict = true\n")
    write(project.path / "scenarios" / "list.yaml", "1:\n  skip: partner SFTP is down\n3:\n  xfail: true\n")
    result = run(project, "--interllm", "input/list.md", "-rsxX")
    result.assert_outcomes(passed=1, skipped=1, xpassed=0, failed=1)
    result.stdout.fnmatch_lines(["*END   scenario 3/3: Pick up CSV drops from SFTP — FAILED in*", "*XPASS(strict)*"])
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] input/list.md*: partner SFTP is down"])


def test_odd_titles_stay_inside_outputs_and_an_empty_one_fails_alone_naming_its_line(project: pytest.Pytester) -> None:
    write(project.path / "input" / "list.md", "- Copy ../../etc/{output_path} to /tmp {model}\n-\n- Ünïcödé 🚀\n")
    result = run(project, "--interllm", "input/list.md")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*input/list.md:2: scenario 2 has an empty title*"])
    assert outputs(project) == ["scenario_001.md", "scenario_003.md"]
    assert (
        "# Scenario 1: Copy ../../etc/{output_path} to /tmp {model}"
        in (project.path / "outputs" / "scenario_001.md").read_text()
    )
