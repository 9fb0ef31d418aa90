"""Nothing lost: the plugin removes only the files it wrote itself, and refuses an output dir that holds inputs."""

from __future__ import annotations

import pytest

from tests.conftest import outputs, run, write


def log_text(project: pytest.Pytester) -> str:
    [path] = (project.path / "logs").glob("run-*.log")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("output_dir", "message"),
    [
        ("input", "--interllm-output-dir: 'input' holds the scenario list input/list.md"),
        (".", "--interllm-output-dir: '.' is the rootdir"),
        ("..", "--interllm-output-dir: '..' holds the rootdir"),
        ("scenarios", "--interllm-output-dir: 'scenarios' holds the expectations file scenarios/list.yaml"),
        ("templates", "--interllm-output-dir: 'templates' holds the prompt template templates/prompt.txt"),
    ],
)
def test_an_output_dir_holding_inputs_is_refused_and_nothing_is_deleted(
    project: pytest.Pytester, output_dir: str, message: str
) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  min_words: 5\n")
    template = "Scenario {index}: {title}\n\n{body}\n\nWrite it to the file `{output_path}`.\n"
    write(project.path / "templates" / "prompt.txt", template)
    before = {p: p.read_bytes() for p in project.path.rglob("*") if p.is_file()}
    assert len(before) >= 4
    result = run(
        project,
        "--interllm",
        "input/list.md",
        "--interllm-output-dir",
        output_dir,
        "--interllm-template",
        "templates/prompt.txt",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*choose a directory of its own*"])
    for path, data in before.items():
        assert path.is_file() and path.read_bytes() == data, path


def test_output_dir_from_the_environment_is_named_in_the_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_OUTPUT_DIR", "input")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: INTERLLM_OUTPUT_DIR: 'input' holds the scenario list input/list.md*"])
    assert (project.path / "input" / "list.md").is_file()


def test_a_shared_directory_keeps_the_users_files(project: pytest.Pytester) -> None:
    design = write(project.path / "docs" / "design.md", "# Design\n\nThe user's own words.\n")
    write(project.path / "docs" / "scenario_009.md", "A user's file that only looks like an output.\n")
    first = run(project, "--interllm", "input/list.md", "--interllm-output-dir", "docs", "-k", "scenario_001 or 002")
    first.assert_outcomes(passed=2, deselected=1)
    assert sorted(p.name for p in (project.path / "docs").iterdir() if not p.name.startswith(".")) == [
        "design.md",
        "scenario_001.md",
        "scenario_002.md",
        "scenario_009.md",
    ]
    second = run(project, "--interllm", "input/list.md", "--interllm-output-dir", "docs", "-k", "scenario_003")
    second.assert_outcomes(passed=1, deselected=2)
    # The previous run's outputs are gone; the user's files are untouched.
    assert sorted(p.name for p in (project.path / "docs").iterdir() if not p.name.startswith(".")) == [
        "design.md",
        "scenario_003.md",
        "scenario_009.md",
    ]
    assert design.read_text() == "# Design\n\nThe user's own words.\n"
    second.stdout.fnmatch_lines(["interllm: outputs docs/ (2 earlier outputs of the plugin removed), timeout*"])


def test_earlier_outputs_are_removed_and_an_edited_one_is_kept(project: pytest.Pytester) -> None:
    run(project, "--interllm", "input/list.md").assert_outcomes(passed=3)
    assert outputs(project) == ["scenario_001.md", "scenario_002.md", "scenario_003.md"]
    edited = project.path / "outputs" / "scenario_002.md"
    edited.write_text(edited.read_text() + "\nReviewed by hand.\n")
    write(project.path / "outputs" / "notes.md", "mine\n")
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_003", "--interllm-log-dir", "logs2")
    result.assert_outcomes(passed=1, deselected=2)
    assert outputs(project) == ["notes.md", "scenario_002.md", "scenario_003.md"]
    assert edited.read_text().endswith("Reviewed by hand.\n")
    [log] = (project.path / "logs2").glob("run-*.log")
    text = log.read_text()
    assert "earlier outputs of the plugin removed from outputs/: 2" in text
    assert "  removed outputs/scenario_001.md" in text and "  removed outputs/scenario_003.md" in text
    assert "  kept outputs/scenario_002.md: changed since the plugin wrote it" in text


def test_an_output_file_naming_an_input_is_a_collection_error(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1: {}\n2:\n  output_file: input/list.md\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(
        ["*scenarios/list.yaml:2: 'output_file' would overwrite the scenario list input/list.md*"]
    )
    assert (project.path / "input" / "list.md").read_text().startswith("# Replication")
