"""Every example of the README, run as written: a promise and its example cannot drift apart.

Each fenced block of README.md is preceded by `<!-- example: NAME -->`; a test below runs the block called
NAME (its commands, YAML, markdown or Python, read from the README itself), or the marker says why it is not
run (`<!-- example: not run: … -->`). A block without a marker fails `test_every_example_has_a_test`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import StandIn, chatgpt_login, jsonl, run, write

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^\s*<!-- example: (.+?) -->\s*$")
FENCE = re.compile(r"^(\s*)```")
LIST = "input/DataTransferScenarioList.md"
SHORT = {"INTERLLM_MAX_SCENARIOS": "3"}  # whole-list commands run on the first three scenarios (the env knob)


def examples() -> dict[str, str]:
    """NAME → the block's text (dedented), for every marked fenced block of the README; unmarked ones as `?N`."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    n = 0
    while n < len(lines):
        fence = FENCE.match(lines[n])
        if fence is None:
            n += 1
            continue
        marker = MARKER.match(lines[n - 1]) if n else None
        end = next(i for i in range(n + 1, len(lines)) if lines[i].strip() == "```")
        indent = len(fence.group(1))
        name = marker.group(1) if marker else f"?{n + 1}"
        found[name if not name.startswith("not run") else f"{name} (line {n + 1})"] = "\n".join(
            line[indent:] for line in lines[n + 1 : end]
        )
        n = end + 1
    return found


def commands(block: str) -> list[str]:
    """The shell lines of a block, continuations joined, comments dropped."""
    text = block.replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines() if line.strip()]


def pytest_args(line: str) -> list[str]:
    """`.venv/bin/pytest ARGS` (or `pytest ARGS`) as a list, `$VAR` expanded from the environment."""
    words = shlex.split(os.path.expandvars(line))
    assert words[0] in (".venv/bin/pytest", "pytest"), line
    return words[1:]


TESTED = {
    "running",
    "status-lines",
    "failure",
    "matrix-repeat-baseline",
    "gate",
    "rubric",
    "front-matter",
    "expectations",
    "api-key",
    "codex-login",
    "cassettes",
    "acme-orchestrator",
    "acme-orchestrator-run",
    "interllm-agents-fixture",
    "interllm-codex-fixture",
    "workspace-run",
    "workspace-yaml",
}


def test_every_example_has_a_test() -> None:
    found = examples()
    assert not [name for name in found if name.startswith("?")], "a README block without <!-- example: ... -->"
    assert {name for name in found if not name.startswith("not run")} == TESTED


@pytest.fixture
def repo_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The repository's example list, its template and expectations, and examples/, in a project of their own."""
    pytester.makeini("[pytest]\n")
    for part in ("input", "scenarios", "examples"):
        shutil.copytree(REPO / part, pytester.path / part, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(pytester.path)
    return pytester


@pytest.mark.long
def test_running(repo_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = commands(examples()["running"])
    assert len(lines) == 5
    # `-k "Files"` selects the section "Files and partners". The whole list runs on its first three scenarios
    # (SHORT): all 17 pass in test_providers.py (record, replay), test_appserver.py and test_matrix.py.
    expected = [
        {"passed": 3},
        {"passed": 1, "deselected": 16},
        {"passed": 4, "deselected": 13},
        {"passed": 3},
        {"passed": 1},
    ]
    for line, outcome in zip(lines, expected, strict=True):
        for name, value in SHORT.items():
            if "-k" in line or "--interllm-max-scenarios" in line:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        result = run(repo_project, *pytest_args(line))
        assert result.ret == pytest.ExitCode.OK, line
        got = result.parseoutcomes()
        for key, value in outcome.items():
            assert got.get(key) == value, (line, got)


def sample(block: str) -> list[str]:
    """A README output sample as regexes for whole lines: times, durations, ids and what `…` stands for vary."""
    patterns = []
    for line in block.splitlines():
        pattern = re.escape(line)
        pattern = re.sub(r"^\\\[\d{4}\\-\d\d\\-\d\d\\ \d\d:\d\d:\d\d\\\]", r"\\[[^]]+\\]", pattern)
        pattern = re.sub(r"in\\ \d+\\\.\ds$", r"in\\ \\d+\\.\\ds", pattern)
        pattern = pattern.replace("interllm_write_1", r"interllm_write_\d+").replace("…", ".*")
        patterns.append(f"^{pattern}$")
    return patterns


def test_status_lines(repo_project: pytest.Pytester) -> None:
    result = run(repo_project, "--interllm", LIST, "-k", "scenario_001")
    result.stdout.re_match_lines(sample(examples()["status-lines"]))


def test_failure(repo_project: pytest.Pytester) -> None:
    block = examples()["failure"]
    result = run(repo_project, "--interllm", LIST, "-k", "scenario_001", "--interllm-sandbox", "read-only")
    result.assert_outcomes(failed=1, deselected=16)
    result.stdout.re_match_lines(sample(block), consecutive=True)


@pytest.mark.long
def test_matrix_repeat_baseline(repo_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SHORT.items():
        monkeypatch.setenv(name, value)
    summary = write(repo_project.path / "step-summary.md", "")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    matrix, repeat, baseline = commands(examples()["matrix-repeat-baseline"])
    run(repo_project, *pytest_args(matrix)).assert_outcomes(passed=6)
    run(repo_project, *pytest_args(repeat)).assert_outcomes(passed=3)
    # The baseline named in the example: an earlier run's JSONL log.
    log = sorted((repo_project.path / "logs").glob("run-*.jsonl"))[-1]
    log.rename(repo_project.path / "logs" / "run-20261125-062657.jsonl")
    result = run(repo_project, *pytest_args(baseline))
    result.assert_outcomes(passed=3)
    assert "unchanged" in summary.read_text(encoding="utf-8")


@pytest.mark.long
def test_gate(repo_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SHORT.items():
        monkeypatch.setenv(name, value)
    summary = write(repo_project.path / "step-summary.md", "")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gated, against = commands(examples()["gate"])
    first = run(repo_project, *pytest_args(gated))
    first.assert_outcomes(passed=3)
    assert first.ret == pytest.ExitCode.OK
    first.stdout.fnmatch_lines(
        [
            "interllm: gate: lower bound of the pass rate's 95% CI 70.1% ≥ 60.0% (9/9 passed = 100.0% (95% CI "
            "70.1–100.0%)): held",
            "interllm: gate held: exit status 0",
        ]
    )
    assert "### Gate ✅ held" in summary.read_text(encoding="utf-8")
    log = sorted((repo_project.path / "logs").glob("run-*.jsonl"))[-1]
    log.rename(repo_project.path / "logs" / "run-20261125-062657.jsonl")
    second = run(repo_project, *pytest_args(against))
    second.assert_outcomes(passed=3)
    assert second.ret == pytest.ExitCode.OK
    second.stdout.fnmatch_lines(["interllm: gate: 0 scenarios regressed significantly: held"])


def test_rubric(repo_project: pytest.Pytester) -> None:
    write(repo_project.path / "scenarios" / "DataTransferScenarioList.yaml", examples()["rubric"] + "\n")
    result = run(repo_project, "--interllm", LIST, "-k", "scenario_016")
    result.assert_outcomes(passed=1, deselected=16)
    [record] = jsonl(repo_project)
    assert [c["verdict"] for c in record["rubric"]] == ["pass", "pass", "pass"]


def test_front_matter(repo_project: pytest.Pytester) -> None:
    write(repo_project.path / "input" / "front.md", examples()["front-matter"] + "\n")
    result = run(repo_project, "--interllm", "input/front.md")
    result.assert_outcomes(passed=1)
    [record] = jsonl(repo_project)
    assert record["section"] == "Database replication"
    assert "Use the `updated_at` column" in record["prompt"]


def test_expectations(repo_project: pytest.Pytester) -> None:
    write(repo_project.path / "scenarios" / "DataTransferScenarioList.yaml", examples()["expectations"] + "\n")
    repo_project.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n    slow: a slow scenario\n")
    result = run(repo_project, "--interllm", LIST, "-k", "scenario_001 or scenario_016", "-rs")
    result.assert_outcomes(passed=1, skipped=1, deselected=15)
    result.stdout.fnmatch_lines(["*SKIPPED*partner SFTP is down*"])


def test_workspace(repo_project: pytest.Pytester) -> None:
    """The repository example passes as the README runs it, and its YAML is the shipped one's."""
    assert examples()["workspace-yaml"] in (REPO / "scenarios" / "RepoTaskList.yaml").read_text(encoding="utf-8")
    [line] = commands(examples()["workspace-run"])
    result = run(repo_project, *pytest_args(line))
    result.assert_outcomes(passed=3)
    assert (repo_project.path / "reports" / "repo.html").is_file()


def test_api_key(
    repo_project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    echo, command = commands(examples()["api-key"])
    server = upstream(("sk-...",))  # the key as the example writes it
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.port}")  # the stand-in for the OpenAI API
    for name, value in SHORT.items():
        monkeypatch.setenv(name, value)
    subprocess.run(["bash", "-c", echo], cwd=repo_project.path, check=True)
    result = run(repo_project, *pytest_args(command))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["interllm: provider openai (audit proxy in front of *API key*from .env*"])
    assert {h["authorization"] for h in server.seen} == {"Bearer sk-..."}


def test_codex_login(
    repo_project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    login, command = commands(examples()["codex-login"])
    assert login == "codex login"  # done once by the user; here a fake login file stands for it
    tokens = chatgpt_login(repo_project.path / ".codex" / "auth.json")  # pytester's HOME is the project
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.port}")
    for name, value in SHORT.items():
        monkeypatch.setenv(name, value)
    result = run(repo_project, *pytest_args(command))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["interllm: provider openai (audit proxy in front of * with ChatGPT login*"])


def test_cassettes(repo_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    record, add, replay = commands(examples()["cassettes"])
    for name, value in SHORT.items():
        monkeypatch.setenv(name, value)
    shutil.copy(REPO / ".gitignore", repo_project.path / ".gitignore")  # this repository's, as users copy it
    subprocess.run(["git", "init", "-q"], cwd=repo_project.path, check=True)
    run(repo_project, *pytest_args(record)).assert_outcomes(passed=3)
    subprocess.run(shlex.split(add), cwd=repo_project.path, check=True, capture_output=True)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only"], cwd=repo_project.path, check=True, capture_output=True, text=True
    ).stdout.split()
    assert staged == [f"cassettes/DataTransferScenarioList/scenario_00{n}.yaml" for n in (1, 2, 3)]
    result = run(repo_project, *pytest_args(replay))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["interllm: provider replay (cassettes in cassettes/, nothing sent upstream)*"])


def test_acme_orchestrator_is_the_shipped_example() -> None:
    shipped = (REPO / "examples" / "acme_orchestrator.py").read_text(encoding="utf-8")
    block = examples()["acme-orchestrator"]
    constants, _, function = block.partition("\n\n\ndef ")
    assert constants in shipped
    signature, _, body = function.partition("\n")
    # The README leaves out the type hints and the docstring; the name and the body are the shipped ones.
    assert f"def {signature.split('(')[0]}(" in shipped and body.strip() in shipped


def test_acme_orchestrator_run(repo_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    [command] = commands(examples()["acme-orchestrator-run"])
    for name, value in SHORT.items():
        monkeypatch.setenv(name, value)
    result = run(repo_project, *pytest_args(command))
    result.assert_outcomes(passed=3)
    assert {r["orchestrator"]["name"] for r in jsonl(repo_project)} == {"acme-orchestrator"}


@pytest.mark.parametrize("name", ["interllm-agents-fixture", "interllm-codex-fixture"])
def test_fixture_examples(repo_project: pytest.Pytester, name: str) -> None:
    write(repo_project.path / f"test_{name.replace('-', '_')}.py", examples()[name] + "\n")
    result = run(repo_project, f"test_{name.replace('-', '_')}.py")
    result.assert_outcomes(passed=1)
