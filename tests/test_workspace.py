"""What the agent did to a codebase: a workspace per scenario, the trajectory, the workspace diff, the `changes:`,
`commands:` and `check:` rules, and the faults that break them — run through the real codex on the example
repository (`examples/RepoTaskList.md`), solved by the scripted model with codex's own patch tool."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_interllm import workspace
from tests.conftest import run, write
from tests.test_providers import log_of
from tests.test_report import report_data, report_texts, table_cells

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads(resources.files("pytest_interllm.schema").joinpath("run-record.schema.json").read_text())
EXAMPLE = "examples/RepoTaskList.md"
# The run's own artifacts (the plugin's outputs, logs and signing key in HOME, pytest's cache and the captured
# streams of the child run): everything else of the rootdir must be as it was.
ARTIFACTS = ("outputs", "logs", "report.html", "assets", ".pytest_cache", ".cache", "stdout", "stderr")


def example(pytester: pytest.Pytester) -> pytest.Pytester:
    """A rootdir holding the repository example as the project ships it."""
    pytester.makeini("[pytest]\n")
    shutil.copytree(ROOT / "examples", pytester.path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    write(pytester.path / "scenarios" / "RepoTaskList.yaml", (ROOT / "scenarios" / "RepoTaskList.yaml").read_text())
    return pytester


def tree_hash(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root` but the run's own artifacts."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in ARTIFACTS
    }


def records(result: pytest.RunResult, project: pytest.Pytester) -> dict[int, dict[str, Any]]:
    return {r["index"]: r for r in log_of(result, project)}


def diffs(found: dict[int, dict[str, Any]]) -> dict[int, list[tuple[str, str, str]]]:
    return {i: [(d["path"], d["kind"], d["diff"]) for d in r["workspace_diff"]] for i, r in found.items()}


def test_the_example_repository_is_solved_in_a_workspace_per_scenario(pytester: pytest.Pytester) -> None:
    project = example(pytester)
    before = tree_hash(project.path)
    result = run(project, "--interllm", EXAMPLE, "--html=report.html", "--self-contained-html")
    result.assert_outcomes(passed=3)
    assert tree_hash(project.path) == before  # nothing outside the attempts' workspaces changed
    found = records(result, project)
    for record in found.values():
        jsonschema.validate(record, SCHEMA)
        where = Path(record["workspace"])
        assert where != project.path and not where.is_relative_to(project.path)
        assert not where.exists() and not record["workspace_kept"]  # passed: removed
        assert record["session_config"]["cwd"] == record["workspace"]  # codex's cwd and sandbox root
        assert record["check"]["exit_code"] == 0 and not record["check"]["timed_out"]
    changed = diffs(found)
    assert [(p, k) for p, k, _ in changed[1]] == [("calc/arith.py", "changed"), ("outputs/scenario_001.md", "added")]
    assert "-    return a - b\n+    return a + b\n" in changed[1][0][2]
    assert [(p, k) for p, k, _ in changed[3]] == [
        ("calc/strutil.py", "deleted"),
        ("calc/text.py", "added"),
        ("outputs/scenario_003.md", "added"),
        ("tests/test_strutil.py", "deleted"),
        ("tests/test_text.py", "added"),
    ]
    # The trajectory: codex's patch tool reported each file, the command ran in the workspace.
    steps = found[1]["trajectory"]
    assert steps[0] == {"kind": "web_search", "query": "python unittest discover"}  # the hosted tool, reported
    assert [(s["kind"], s.get("path"), s.get("change")) for s in steps if s["kind"] == "file_change"] == [
        ("file_change", "calc/arith.py", "update"),
        ("file_change", "outputs/scenario_001.md", "add"),
    ]
    [command] = [s for s in steps if s["kind"] == "command"]
    assert command["command"] == "python3 -m unittest discover -s tests -t ."
    assert command["exit_code"] == 0 and command["cwd"] == "." and "Ran 3 tests" in command["output"]
    assert command["duration"] is not None
    # The output file is written in the workspace and copied to the run's outputs.
    assert (project.path / "outputs" / "scenario_001.md").read_text().startswith("# Scenario 1: Fix the bug")
    texts = report_texts(project.path / "report.html")
    [text] = [t for k, t in texts.items() if "scenario_001" in k]
    assert "what the agent did (4 steps)" in text and "web search" in text and "workspace diff (2 files)" in text
    assert "python3 -m unittest discover -s tests -t ." in text and "changed calc/arith.py" in text
    raw = json.dumps(report_data(project.path / "report.html"))
    assert 'class=\\"add\\"' in raw and 'class=\\"del\\"' in raw  # the diff's lines coloured
    assert "<details><summary>what the agent did (4 steps)" in raw  # collapsed: the scenario passed
    durations = [cells[-2] for cells in table_cells(project.path / "report.html").values()]
    assert len(durations) == 3 and all(re.fullmatch(r"\d+\.\d\ds", d) for d in durations), durations

    # In flight and on two workers: the same verdicts and the same diffs.
    again = run(project, "--interllm", EXAMPLE, "--interllm-concurrency", "8", "-n", "2")
    again.assert_outcomes(passed=3)
    assert diffs(records(again, project)) == changed
    assert tree_hash(project.path) == before


def steps(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A trajectory as the same for every executor: each step's kind, file or command, change and exit code."""
    return [
        (s["kind"], s.get("path") or s.get("command"), s.get("change"), s.get("move_path"), s.get("exit_code"))
        for s in record["trajectory"]
    ]


RENAMED = [
    ("file_change", "calc/strutil.py", "update", "calc/text.py", None),
    ("file_change", "outputs/scenario_003.md", "add", None, None),
    ("file_change", "tests/test_strutil.py", "delete", None, None),
    ("file_change", "tests/test_text.py", "add", None, None),
    ("command", "python3 -m unittest tests.test_text", None, None, 0),
]


@pytest.mark.parametrize("executor", ["codex", "app-server", "agents"])
def test_every_executor_reports_the_same_trajectory_and_diff(pytester: pytest.Pytester, executor: str) -> None:
    """The MCP events, the app-server items and the Agents SDK's tool calls give the same steps."""
    project = example(pytester)
    result = run(project, "--interllm", EXAMPLE, "-k", "scenario_003", "--interllm-executor", executor)
    result.assert_outcomes(passed=1)
    [record] = records(result, project).values()
    assert steps(record) == RENAMED
    assert [(d["path"], d["kind"]) for d in record["workspace_diff"]] == [
        ("calc/strutil.py", "deleted"),
        ("calc/text.py", "added"),
        ("outputs/scenario_003.md", "added"),
        ("tests/test_strutil.py", "deleted"),
        ("tests/test_text.py", "added"),
    ]
    assert record["session_config"]["cwd"] == record["workspace"]


def test_a_replayed_attempt_reproduces_its_trajectory_and_diff(pytester: pytest.Pytester) -> None:
    """Recorded from the scripted model (which finds each workspace's solution beside it), replayed offline."""
    project = example(pytester)
    recorded = run(project, "--interllm", EXAMPLE, "--interllm-provider", "record")
    recorded.assert_outcomes(passed=3)
    replayed = run(project, "--interllm", EXAMPLE, "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["interllm: proxy: 9 requests, 0 sent upstream, 9 replayed*"])
    before, after = records(recorded, project), records(replayed, project)
    assert diffs(after) == diffs(before)
    assert {i: steps(r) for i, r in after.items()} == {i: steps(r) for i, r in before.items()}
    assert steps(after[3]) == RENAMED


FAULTS = """\
defaults:
  workspace: repo
  solution: solutions/fix-add.patch
  changes: {only: [calc/arith.py], must: [calc/arith.py]}
  commands: {never_run: ['rm\\s+-rf'], must_run: [unittest]}
  check: python3 -m unittest discover -s tests -t .
1: {fault: stray-edit}
2: {fault: forbidden-command}
3: {fault: unreported-change}
4: {fault: broken-fix}
5: {}
"""
HEADLINES = {
    1: "changes.only: STRAY.md added, not allowed by ['calc/arith.py'] (ROOT/scenarios/Faults.yaml:4)",
    2: "commands.never_run: ran `rm -rf build` (matches 'rm\\s+-rf') (ROOT/scenarios/Faults.yaml:5)",
    3: "unreported change: README.md changed on disk, but the agent reported no change to it (no patch and no "
    "command of the agent names it)",
    4: "check `python3 -m unittest discover -s tests -t .` exited 1",
}
CLASSES = {1: "changes-failed", 2: "commands-failed", 3: "changes-failed", 4: "check-failed"}


def test_each_workspace_fault_is_classified_with_its_rule_on_line_one(pytester: pytest.Pytester) -> None:
    project = example(pytester)
    write(
        project.path / "examples" / "Faults.md", "".join(f"{n}. Fix the bug in `calc/arith.py`\n" for n in range(1, 6))
    )
    write(project.path / "scenarios" / "Faults.yaml", FAULTS)
    result = run(project, "--interllm", "examples/Faults.md", "-n", "2", "--html=report.html", "--self-contained-html")
    result.assert_outcomes(passed=1, failed=4)
    found = records(result, project)
    texts = {k.split("::")[1][:12]: t for k, t in report_texts(project.path / "report.html").items()}
    raw = (project.path / "report.html").read_text(encoding="utf-8")
    assert not [glyph for glyph in "✅❌⏭⚠✓✗" if glyph in raw]  # words and colour, no emoji font needed
    for index in HEADLINES:
        text = texts[f"scenario_{index:03d}"]
        evidence = found[index]["failure"].splitlines()[1:3]  # the failure's text after its headline: once
        assert all(text.count(line.strip()) == 1 for line in evidence if line.strip()), (evidence, text)
        assert found[index]["workspace"] in text and "kept for inspection" in text
    for record in found.values():
        jsonschema.validate(record, SCHEMA)
    for index, headline in HEADLINES.items():
        record = found[index]
        assert record["failure_class"] == CLASSES[index], record["failure"]
        first = record["failure"].splitlines()[0]
        assert first.replace(str(project.path), "ROOT") == f"[{CLASSES[index]}] {headline}"
        assert record["failure_group"] == "agent"
        # A failed attempt's workspace is kept, its path in the record and the report.
        kept = Path(record["workspace"])
        assert record["workspace_kept"] and kept.is_dir()
        assert f"workspace kept for inspection: {kept}" in record["failure"]
        workspace.remove(kept)
    assert "ran `rm -rf build` (exit ?)" in found[2]["failure"]
    assert "FAILED (failures=1)" in found[4]["check"]["output"] and "check output:" in found[4]["failure"]
    assert found[5]["result"] == "passed"


CHECKS = """\
1:
  workspace: repo
  check: "(sleep 987 &) ; sleep 986"
  check_timeout: 2
2:
  workspace: repo
  check: cat secret.txt; exit 3
"""


def test_a_hanging_check_is_killed_and_a_secret_it_prints_is_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "zq-9f8e7d6c5b4a3928171605"  # not key-shaped: masked because the run knows it
    pytester.makeini("[pytest]\n")
    write(pytester.path / "input" / "repo" / "secret.txt", f"token={secret}\n")
    write(pytester.path / "input" / "list.md", "1. Wait for it\n2. Show the token\n")
    write(pytester.path / "scenarios" / "list.yaml", CHECKS)
    monkeypatch.setenv("DEPLOY_TOKEN", secret)
    result = run(pytester, "--interllm", "input/list.md", "--html=report.html", "--self-contained-html")
    result.assert_outcomes(failed=2)
    found = records(result, pytester)
    for record in found.values():
        jsonschema.validate(record, SCHEMA)
    assert found[1]["failure_class"] == "check-failed"
    assert (
        found[1]["failure"]
        .splitlines()[0]
        .startswith("[check-failed] check `(sleep 987 &) ; sleep 986` timed out after 2.")
    )
    assert found[1]["check"]["timed_out"] and found[1]["check"]["exit_code"] is None
    left = subprocess.run(["pgrep", "-f", "sleep 98[67]"], capture_output=True, text=True)
    assert left.stdout == "", left.stdout  # the check's whole process group is gone
    assert found[2]["failure"].splitlines()[0] == "[check-failed] check `cat secret.txt; exit 3` exited 3"
    assert "token=[REDACTED]" in found[2]["check"]["output"]
    for path in [*pytester.path.glob("logs/*"), pytester.path / "report.html"]:
        assert secret not in path.read_text(encoding="utf-8"), path
    assert secret not in result.stdout.str()
    for record in found.values():
        workspace.remove(Path(record["workspace"]))


def test_workspace_keys_are_checked_at_collection(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    write(pytester.path / "input" / "list.md", "1. One\n2. Two\n")
    write(pytester.path / "scenarios" / "list.yaml", "2:\n  check: make test\n")
    result = run(pytester, "--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(
        ["*scenarios/list.yaml:2: 'check' needs the scenario's own workspace: add `workspace: <fixture dir>`*"]
    )
    write(pytester.path / "scenarios" / "list.yaml", "1:\n  workspace: nowhere\n")
    result = run(pytester, "--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(["*scenarios/list.yaml:2: workspace 'nowhere' is not a directory*"])
    write(pytester.path / "scenarios" / "list.yaml", "1:\n  fault: stray-edit\n")
    result = run(pytester, "--interllm", "input/list.md", "--collect-only")
    result.stdout.fnmatch_lines(["*the stray-edit fault changes files: it needs the scenario's own `workspace:`*"])


def test_the_diff_names_added_changed_deleted_and_binary_files(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "one\ntwo\n")
    write(tmp_path / "gone.txt", "bye\n")
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2")
    before = workspace.snapshot(tmp_path)
    write(tmp_path / "a.txt", "one\n2\n")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "blob.bin").write_bytes(b"\0\1\3")
    write(tmp_path / "new.txt", "no newline")
    write(tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc", "cache")  # running Python's leftovers: not shown
    write(tmp_path / ".pytest_cache" / "README.md", "cache")
    found = {d["path"]: d for d in workspace.diff(before, workspace.snapshot(tmp_path))}
    assert {p: d["kind"] for p, d in found.items()} == {
        "a.txt": "changed",
        "blob.bin": "changed",
        "gone.txt": "deleted",
        "new.txt": "added",
    }
    assert found["a.txt"]["diff"] == "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"
    assert found["blob.bin"]["binary"] and found["blob.bin"]["diff"] == ""
    assert found["new.txt"]["diff"].endswith("+no newline\n\\ No newline at end of file\n")
    assert workspace.matches("calc/x.py", ("calc/**",)) == "calc/**"
    assert workspace.matches(".git/config", (".git/**",)) == ".git/**"
    assert workspace.matches("docs/x.md", ("calc/*",)) is None


def test_a_command_codex_reported_without_output_shows_what_the_model_was_sent() -> None:
    """Under load codex may end a short command before draining its output: the step then keeps the output the
    model was sent back for that call (from the provider's request log), and codex's own output when it has one."""
    from pytest_interllm import trajectory
    from pytest_interllm.outcome import CodexEvent, ToolCall

    def end(call_id: str, output: str) -> CodexEvent:
        msg = {"call_id": call_id, "command": ["bash", "-lc", "make"], "exit_code": 0, "aggregated_output": output}
        return CodexEvent(time=1.0, type="exec_command_end", msg=msg)

    sent = [
        ToolCall("c1", "make", 0, 0.1, "Exit code: 0\nOutput:\nRan 3 tests\n", 1.0),
        ToolCall("c2", "make", 0, 0.1, "x", 1.0),
    ]
    steps = trajectory.build([end("c1", ""), end("c2", "codex saw this")], None, sent)
    assert [s["output"] for s in steps] == ["Exit code: 0\nOutput:\nRan 3 tests\n", "codex saw this"]


GRADED = """\
defaults:
  workspace: repo
  solution: solutions/fix-add.patch
1:
  rubric: {criteria: ['Fixes the sum ("return a + b")'], with: diff}
2:
  rubric: ['Fixes the sum ("return a + b")']
"""


def test_the_grader_is_given_the_diff_with_rubric_with_diff(pytester: pytest.Pytester) -> None:
    project = example(pytester)
    write(project.path / "examples" / "Graded.md", "1. Fix the bug in `calc/arith.py`\n2. Fix it again\n")
    write(project.path / "scenarios" / "Graded.yaml", GRADED)
    result = run(project, "--interllm", "examples/Graded.md")
    result.assert_outcomes(passed=1, failed=1)
    found = records(result, project)
    assert found[1]["rubric"][0]["verdict"] == "pass"
    assert (
        found[2]["failure"].splitlines()[0] == '[rubric-failed] 1 of 1 criteria failed: Fixes the sum ("return a + b")'
    )
    workspace.remove(Path(found[2]["workspace"]))


def test_the_html_marks_results_in_words_and_colour_not_emoji() -> None:
    """The models table of the report renders in a browser without an emoji font (the markdown keeps its icons)."""
    from pytest_interllm.report import html
    from pytest_interllm.report.record import build

    rows = [
        build(
            index=1,
            name="s1",
            title="t",
            section="",
            nodeid="l.md::s1[a]",
            outcome=None,
            result=result,
            failure=None,
            expected_model=model,
        )
        for model, result in (("gpt-a", "passed"), ("gpt-b", "failed"))
    ]
    page = html.summary({"provider": "offline"}, {"passed": 1, "failed": 1}, rows)
    assert "Models compared" in page and '<td class="bad">failed' in page and '<td class="ok">passed' in page
    assert not [glyph for glyph in "✅❌⏭⚠" if glyph in page]


def test_a_run_wide_workspace_fault_skips_the_scenarios_without_a_workspace(pytester: pytest.Pytester) -> None:
    project = example(pytester)
    write(project.path / "examples" / "Mixed.md", "1. Fix the bug in `calc/arith.py`\n2. Write a plan\n")
    write(project.path / "scenarios" / "Mixed.yaml", "1:\n  workspace: repo\n  solution: solutions/fix-add.patch\n")
    result = run(project, "--interllm", "examples/Mixed.md", "--interllm-fault", "broken-fix", "-rs")
    result.assert_outcomes(passed=1, skipped=1)  # no check: the broken fix is not caught, but it was injected
    result.stdout.fnmatch_lines(["SKIPPED*the broken-fix fault changes files: it needs the scenario's own*"])
    found = records(result, project)
    assert [s.get("path") for s in found[1]["trajectory"] if s["kind"] == "file_change"] == ["outputs/scenario_001.md"]


ECHO_SERVER = """\
from mcp.server.mcpserver import MCPServer

app = MCPServer("echo")


@app.tool()
def ping(text: str) -> str:
    return f"pong: {text}"


app.run()
"""


@pytest.mark.parametrize("executor", ["codex", "app-server"])
def test_an_mcp_tool_call_is_a_step_of_the_trajectory(pytester: pytest.Pytester, executor: str) -> None:
    """codex (with an MCP server in its config) reports the agent's call of one of its tools, refused or not."""
    project = example(pytester)
    write(project.path / "echo.py", ECHO_SERVER)
    home = project.path / "codex-home"
    command = json.dumps(sys.executable)
    server = f'command = {command}\nargs = ["{project.path / "echo.py"}"]\nstartup_timeout_sec = 120\n'
    write(home / "config.toml", f"[mcp_servers.echo]\n{server}")  # a loaded machine may take a while to start it
    # A command first: codex starts its MCP servers while the turn begins, and a tool is offered to the model only once
    # its server is up (a loaded machine once took longer than the turn's first request).
    write(project.path / "examples" / "solutions" / "ping.patch", '$ sleep 2\n! echo.ping {"text": "hi"}\n')
    write(project.path / "examples" / "Ping.md", "1. Ping the echo server\n")
    write(project.path / "scenarios" / "Ping.yaml", "1:\n  workspace: repo\n  solution: solutions/ping.patch\n")
    result = run(
        project, "--interllm", "examples/Ping.md", "--interllm-executor", executor, "--interllm-codex-home", str(home)
    )
    result.assert_outcomes(passed=1)
    [record] = records(result, project).values()
    [call] = [s for s in record["trajectory"] if s["kind"] == "mcp_tool_call"]
    assert (call["server"], call["tool"], json.loads(call["arguments"])) == ("echo", "ping", {"text": "hi"})
    # Under `approval-policy: never` codex refuses a tool call that needs approval: the step says so.
    assert call["ok"] is False and "approval" in call["output"], call


def test_repeated_attempts_each_get_a_workspace_of_their_own(pytester: pytest.Pytester) -> None:
    project = example(pytester)
    result = run(project, "--interllm", EXAMPLE, "-k", "scenario_001", "--interllm-repeat", "3")
    result.assert_outcomes(passed=1)
    [record] = records(result, project).values()
    places = [run["workspace"] for run in record["runs"]]
    assert len(set(places)) == 3 and not any(Path(p).exists() for p in places)
    assert [[(d["path"], d["kind"]) for d in run["workspace_diff"]] for run in record["runs"]] == 3 * [
        [("calc/arith.py", "changed"), ("outputs/scenario_001.md", "added")]
    ]
