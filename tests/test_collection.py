"""Collection through pytest: ids, -k, sections, max-scenarios, expectations and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import outputs, run, write


def test_collects_each_top_level_item_with_its_id(project: pytest.Pytester) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q")
    result.assert_outcomes()
    assert result.ret == 0
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "input/list.md::scenario_001-copy-the-orders-table-to-the-warehouse",
        "input/list.md::scenario_002-stream-cdc-events-to-kafka",
        "input/list.md::scenario_003-pick-up-csv-drops-from-sftp",
    ]


def test_the_parsed_list_is_kept_in_the_pytest_cache(project: pytest.Pytester) -> None:
    ids = []
    for _ in range(2):
        result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q")
        ids.append([line for line in result.outlines if "::" in line])
    assert ids[0] == ids[1] and len(ids[0]) == 3
    (stored,) = (project.path / ".pytest_cache" / "d" / "interllm-lists").glob("*.json")
    assert "Stream CDC events to Kafka" in stored.read_text()
    write(project.path / "input" / "list.md", "- Only one now\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == ["input/list.md::scenario_001-only-one-now"]
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert [line for line in result.outlines if "::" in line] == ["input/list.md::scenario_001-only-one-now"]


def test_other_files_are_not_collected_without_the_flag(project: pytest.Pytester) -> None:
    project.makepyfile(test_unrelated="def test_x():\n    pass\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q")
    assert [line.split("::")[0] for line in result.outlines if "::" in line] == ["input/list.md"] * 3
    result = project.runpytest("--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == ["test_unrelated.py::test_x"]


def test_explicit_test_paths_are_collected_alongside_the_list(project: pytest.Pytester) -> None:
    project.makepyfile(test_unrelated="def test_x():\n    pass\n")
    result = project.runpytest("test_unrelated.py", "--interllm", "input/list.md", "--collect-only", "-q")
    assert "test_unrelated.py::test_x" in result.stdout.str()
    assert "input/list.md::scenario_003-pick-up-csv-drops-from-sftp" in result.stdout.str()


@pytest.mark.parametrize(
    ("expr", "selected"),
    [
        ("scenario_002", ["scenario_002-stream-cdc-events-to-kafka"]),
        ("Files", ["scenario_003-pick-up-csv-drops-from-sftp"]),
        ("Replication and not kafka", ["scenario_001-copy-the-orders-table-to-the-warehouse"]),
    ],
)
def test_k_selects_by_id_and_section(project: pytest.Pytester, expr: str, selected: list[str]) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q", "-k", expr)
    assert [line.split("::")[1] for line in result.outlines if "::" in line] == selected


def test_max_scenarios_takes_the_first_n(project: pytest.Pytester) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q", "--interllm-max-scenarios", "2")
    assert len([line for line in result.outlines if "::" in line]) == 2
    assert "scenario_003" not in result.stdout.str()


def test_the_ini_names_the_lists_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ninterllm_lists = input/list.md\n")
    write(pytester.path / "input" / "list.md", "- Only one\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert "input/list.md::scenario_001-only-one" in result.stdout.str()


def test_item_reports_its_markdown_line(project: pytest.Pytester) -> None:
    project.makeconftest(
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        path, line, label = item.reportinfo()\n"
        "        print('INFO', path.name, line + 1, label, item.scenario.section)\n"
    )
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(
        [
            "INFO list.md 3 scenario 1: Copy the orders table to the warehouse Replication",
            "INFO list.md 5 scenario 2: Stream CDC events to Kafka Replication",
            "INFO list.md 9 scenario 3: Pick up CSV drops from SFTP Files",
        ]
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"input/list.md": "# Nothing\n\nprose only\n"}, "*input/list.md:1: no scenarios found*"),
        ({"input/list.md": "---\nmodel: [x\n---\n- a\n"}, "*input/list.md:2: invalid YAML in front matter*"),
        ({"input/list.md": "---\ntimeout: soon\n---\n- a\n"}, "*input/list.md:2: front matter 'timeout' must be*"),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  must_contian: [x]\n"},
            "*scenarios/list.yaml:2: unknown expectation key 'must_contian'*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1: {}\n7:\n  skip: true\n"},
            "*scenarios/list.yaml:2: there is no scenario 7*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  timeout: [1\n"},
            "*scenarios/list.yaml:2: invalid YAML*",
        ),
        (
            {"input/list.md": "---\nmodel: m\ntimeout: .inf\n---\n- a\n"},
            "*input/list.md:3: front matter 'timeout' must be a finite number, got inf*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  model: m\n  must_contian: [x]\n"},
            "*scenarios/list.yaml:3: unknown expectation key 'must_contian'*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  model: m\n  timeout: .inf\n"},
            "*scenarios/list.yaml:3: 'timeout' must be a finite number, got inf*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  timeout: .nan\n"},
            "*scenarios/list.yaml:2: 'timeout' must be a finite number, got nan*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  fault: no-write\n  fault_requests: -1\n"},
            "*scenarios/list.yaml:3: 'fault_requests' must be greater than 0, got -1*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  fault_requests: 0\n"},
            "*scenarios/list.yaml:2: 'fault_requests' must be greater than 0, got 0*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "defaults:\n  must_contain: [x]\n  min_words: -1\n"},
            "*scenarios/list.yaml:3: 'min_words' must be at least 0, got -1*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  min_pass: .nan\n"},
            "*scenarios/list.yaml:2: 'min_pass' must be a finite number, got nan*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  min_pass: 0\n"},
            "*scenarios/list.yaml:2: 'min_pass' must be greater than 0, got 0*",
        ),
        (  # a key without its colon: its own line, not the next one
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  model: m\n  min_words 3\n  timeout: 5\n"},
            "*scenarios/list.yaml:3: invalid YAML: could not find expected ':'*",
        ),
        (  # an unclosed quote: where it opens, not the end of the file
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  model: 'm\n2:\n  timeout: 4\n"},
            "*scenarios/list.yaml:2: invalid YAML: found unexpected end of stream*",
        ),
        (
            {"input/list.md": "- a\n", "scenarios/list.yaml": "1:\n  output_file: ../elsewhere.md\n"},
            "*scenarios/list.yaml:2: 'output_file' must stay inside the rootdir, got '../elsewhere.md'*",
        ),
    ],
)
def test_bad_input_is_a_collection_error_naming_file_and_line(
    pytester: pytest.Pytester, files: dict[str, str], expected: str
) -> None:
    pytester.makeini("[pytest]\n")
    for name, text in files.items():
        write(pytester.path / name, text)
    result = pytester.runpytest("--interllm", "input/list.md", "--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting input/list.md*", expected])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"input/prompt_template.txt": "Do {title}\nthen {titel} into `{output_path}`\n"},
            "ERROR: */input/prompt_template.txt:2: unknown placeholder {titel}*",
        ),
        (
            {"input/prompt_template.txt": "Do {title!r} into `{output_path}`\n"},
            "ERROR: */input/prompt_template.txt:1: unknown placeholder {title!r}*",
        ),
        (
            {"input/prompt_template.txt": "Scenario {index}: {title}\n\n{body}\n"},
            "ERROR: */input/prompt_template.txt: the template never names the output file: add {output_path}*",
        ),
        (
            {"input/list.md": "---\ntemplate: nope.txt\n---\n- a\n"},
            "ERROR: */input/nope.txt: cannot read the prompt template*",
        ),
    ],
)
def test_a_bad_template_is_a_usage_error_before_any_scenario_runs(
    project: pytest.Pytester, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        write(project.path / name, text)
    result = project.runpytest("--interllm", "input/list.md")  # in process: refused before codex would start
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "START scenario" not in result.stdout.str() and "Traceback" not in result.stderr.str()
    assert outputs(project) == []


def test_binary_list_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    (pytester.path / "list.md").write_bytes(b"\x00\x01\x02PK\x03\x04")
    result = pytester.runpytest("--interllm", "list.md", "--collect-only")
    result.stdout.fnmatch_lines(["*list.md:1: this is a binary file, not a markdown scenario list*"])


def test_missing_list_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("--interllm", "input/nope.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--interllm: */input/nope.md: no such file*"])


def test_a_directory_given_as_a_list_names_the_lists_inside(project: pytest.Pytester) -> None:
    write(project.path / "input" / "other.md", "- a\n")
    result = project.runpytest("--interllm", "input")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    suggestion = "give a list file, e.g. --interllm input/list.md (also there: other.md)"
    result.stderr.fnmatch_lines([f"ERROR: --interllm: input is a directory: {suggestion}"])
    (project.path / "empty").mkdir()
    result = project.runpytest("--interllm", "empty")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --interllm: empty is a directory, with no markdown list in it: give a list file"]
    )


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_scenarios_with_the_same_title_are_a_note_not_a_failure(project: pytest.Pytester, xdist: list[str]) -> None:
    write(project.path / "input" / "list.md", "- Copy the table\n- Stream events\n- Copy the table\n")
    note = 'note: input/list.md: scenarios 1 and 3 have the same title "Copy the table"'
    result = run(project, "--interllm", "input/list.md", "-W", "error", *xdist)  # a warning would fail the run
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([f"interllm: {note}"])
    [log] = (project.path / "logs").glob("run-*.log")
    assert note in log.read_text(encoding="utf-8").splitlines()


def test_expectations_add_skip_xfail_and_markers(project: pytest.Pytester) -> None:
    write(
        project.path / "scenarios" / "list.yaml",
        "defaults:\n  min_words: 5\n2:\n  skip: not today\nscenario_003:\n  xfail: known issue\n",
    )
    project.makeconftest(
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        print('MARKS', item.scenario.index, sorted(m.name for m in item.iter_markers()),"
        " item.expectations.min_words)\n"
    )
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(
        [
            "MARKS 1 ['interllm'] 5",
            "MARKS 2 ['interllm', 'skip'] 5",
            "MARKS 3 ['interllm', 'xfail'] 5",
        ]
    )


SHOW_PROMPTS = (
    "def pytest_collection_modifyitems(items):\n"
    "    for item in items:\n"
    "        marks = sorted(m.name for m in item.iter_markers())\n"
    "        print('ITEM', item.scenario.index, item.config.stash[__import__('pytest_interllm.collect', "
    "fromlist=['x']).SETTINGS_KEY].relative(item.output_file), marks)\n"
    "        print('PROMPT', item.prompt().replace('\\n', ' | '))\n"
)


def test_expectations_and_the_template_shape_each_prompt(project: pytest.Pytester) -> None:
    write(
        project.path / "templates" / "t.txt",
        "Scenario {index}: {title}\nSection={section} Model={model}\n\n{body}\n\n"
        "Write it to the file `{output_path}`.\n",
    )
    write(
        project.path / "scenarios" / "list.yaml",
        "scenario_002-stream-cdc-events-to-kafka:\n  model: gpt-5.2-codex\n  output_file: outputs/kafka.md\n"
        "  markers: [slow]\n",
    )
    project.makeconftest(SHOW_PROMPTS)
    project.makeini("[pytest]\nmarkers =\n    slow: scenarios that take long\n")
    result = project.runpytest(
        "--interllm", "input/list.md", "--collect-only", "-q", "-s", "--interllm-template", "templates/t.txt"
    )
    result.stdout.fnmatch_lines(
        [
            "ITEM 1 outputs/scenario_001.md ['interllm']",
            "PROMPT Scenario 1: Copy the orders table to the warehouse | Section=Replication Model=gpt-5-codex |  "
            "| Copy the `orders` table to the warehouse | - Use updated_at as the watermark |  "
            "| Write it to the file `outputs/scenario_001.md`. | ",
            "ITEM 2 outputs/kafka.md ['interllm', 'slow']",
            "PROMPT Scenario 2: Stream CDC events to Kafka | Section=Replication Model=gpt-5.2-codex | *"
            "Write it to the file `outputs/kafka.md`. | ",
            "ITEM 3 outputs/scenario_003.md ['interllm']",
            "PROMPT Scenario 3: Pick up CSV drops from SFTP | Section=Files Model=gpt-5-codex | *",
        ]
    )


def test_which_template_a_list_uses(tmp_path: Path) -> None:
    from pytest_interllm.prompt import find_template

    listed = write(tmp_path / "input" / "list.md", "- a\n")
    assert find_template(listed, None, None) is None  # the packaged template
    beside = write(tmp_path / "input" / "prompt_template.txt", "x {output_path}")
    assert find_template(listed, None, None) == beside
    assert find_template(listed, None, "../t/front.txt") == (tmp_path / "t" / "front.txt").resolve()
    explicit = tmp_path / "explicit.txt"
    assert find_template(listed, explicit, "../t/front.txt") == explicit


def test_an_unregistered_marker_names_the_yaml_line(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1: {}\n2:\n  markers: [slwo]\n")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "--strict-markers")
    result.stdout.fnmatch_lines(["*scenarios/list.yaml:3: marker 'slwo' is not registered: add it to `markers`*"])
    assert "Traceback" not in result.stdout.str()
