"""The expected model when none is given: the one the user's codex would pick (their codex config, else the
installed codex's catalog default), named in the header with where it came from; a model codex's catalog does
not hold is named at the start, with the catalog."""

from __future__ import annotations

import pytest

from tests.conftest import jsonl, run, write

ONE = ("--interllm", "input/list.md", "-k", "scenario_001")


def test_the_default_model_is_the_one_your_codex_config_names(project: pytest.Pytester) -> None:
    config = write(project.path / ".codex" / "config.toml", 'model = "gpt-5.5"\n')
    result = run(project, *ONE)
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines([f"interllm: provider offline *, expected model gpt-5.5 (your codex config {config})*"])
    [record] = jsonl(project)
    assert record["expected_model"] == record["session_model"] == "gpt-5.5"


def test_the_active_profile_of_your_codex_config_wins_and_the_list_front_matter_over_both(
    project: pytest.Pytester,
) -> None:
    write(
        project.path / ".codex" / "config.toml",
        'model = "gpt-5.5"\nprofile = "work"\n[profiles.work]\nmodel = "gpt-5.6-sol"\n',
    )
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(["interllm: provider offline *, expected model gpt-5.6-sol (your codex config *), *"])
    write(project.path / "input" / "list.md", "---\nmodel: gpt-5.2\n---\n- Copy the orders table\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(
        ["interllm: provider offline *, expected model gpt-5.2 (the front matter of input/list.md), *"]
    )


@pytest.mark.no_user_codex_config
@pytest.mark.parametrize(
    ("executor", "version", "default"),
    [("codex", "codex-cli 0.153.4", "gpt-6-astra"), ("app-server", "codex-cli 0.163.0", "gpt-6.1-sol")],
)
def test_without_a_codex_config_the_default_is_the_installed_codex_catalog_default(
    project: pytest.Pytester, executor: str, version: str, default: str
) -> None:
    """gpt-6 models get no function tools (codex's code mode): the scripted model writes through `exec`."""
    result = run(project, *ONE, "--interllm-executor", executor)
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [f"interllm: provider offline *, expected model {default} (the default of {version}'s catalog), *"]
    )
    assert "does not know the model" not in result.stdout.str()
    [record] = jsonl(project)
    assert record["expected_model"] == record["session_model"] == default
    assert {r["model"] for r in record["requests"]} == {default}


def test_a_model_codex_does_not_know_is_named_with_its_catalog(project: pytest.Pytester) -> None:
    """gpt-5-codex (the field report's model, the example list's) is in neither catalog: a note, and the run goes on
    on codex's fallback metadata."""
    result = run(project, *ONE, "--interllm-model", "gpt-5-codex,gpt-5.5")
    result.assert_outcomes(passed=2, deselected=4)
    result.stdout.fnmatch_lines(
        [
            "interllm: provider offline *, expected model gpt-5-codex, gpt-5.5, executor codex*",
            "interllm: note: codex-cli 0.153.4 does not know the model gpt-5-codex (its catalog: gpt-6-astra, "
            "gpt-5.6-sol, *; default gpt-6-astra): codex runs it on fallback metadata (other reasoning settings and "
            "tools)",
        ]
    )
    assert "does not know the model gpt-5.5" not in result.stdout.str()


def test_the_example_list_keeps_the_field_report_model() -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "input" / "DataTransferScenarioList.md"
    assert example.read_text(encoding="utf-8").startswith("---\nmodel: gpt-5-codex\n")


def test_the_summaries_and_the_log_name_the_model_the_lists_front_matter_expects(project: pytest.Pytester) -> None:
    """The user's codex config says gpt-5-codex (tests/conftest.py) and the list's front matter gpt-5.2: the items
    expect gpt-5.2, and so do the header, the text log, the markdown summary and the HTML report's summary."""
    write(project.path / "input" / "list.md", "---\nmodel: gpt-5.2\n---\n- Copy the orders table\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-summary", "s.md", "--html", "r.html")
    result.assert_outcomes(passed=1)
    [record] = jsonl(project)
    assert record["expected_model"] == record["session_model"] == "gpt-5.2"
    [log] = (project.path / "logs").glob("run-*.log")
    assert "  expected model: gpt-5.2\n" in log.read_text()
    assert "**expected model** gpt-5.2 " in (project.path / "s.md").read_text()
    assert "<th>expected model</th><td>gpt-5.2</td>" in (project.path / "r.html").read_text()
