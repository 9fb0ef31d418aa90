"""What users open first: the pytest-html report, the run logs, JUnit XML and the markdown summary."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import jsonl, outputs, run, write

FAIL_SECOND = "2:\n  fault: omit-model\n"


def report_data(path: Path) -> dict[str, Any]:
    """The data pytest-html's JavaScript renders the report from (its `data-jsonblob`)."""
    blob = re.search(r'data-jsonblob="([^"]*)"', path.read_text(encoding="utf-8"))
    assert blob, "no data blob in the report"
    return json.loads(html.unescape(blob.group(1)))  # type: ignore[no-any-return]


def report_texts(path: Path) -> dict[str, str]:
    """Each result row's expanded text, as the report's JavaScript gets it (test id → plain text)."""
    data = report_data(path)
    texts = {}
    for test_id, rows in data["tests"].items():
        chunks = []
        for row in rows:
            chunks += [html.unescape(re.sub(r"<[^>]+>", " ", str(e.get("content", "")))) for e in row["extras"]]
            chunks += [html.unescape(re.sub(r"<[^>]+>", " ", cell)) for cell in row["resultsTableRow"]]
            chunks.append(row.get("log", ""))
        texts[test_id] = norm("\n".join(chunks))
    return texts


def table_cells(path: Path) -> dict[str, list[str]]:
    """The results table's cells of each row, as text (test id → cells)."""
    data = report_data(path)
    return {
        test_id: [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in rows[0]["resultsTableRow"]]
        for test_id, rows in data["tests"].items()
    }


def norm(text: str) -> str:
    """Whitespace collapsed, as a browser shows it."""
    return re.sub(r"\s+", " ", text).strip()


FLUSHED = """
import pathlib


def pytest_runtest_logstart(nodeid):
    for log in pathlib.Path("logs").glob("run-*.jsonl"):
        with open("seen.txt", "a") as out:
            out.write(f"{len(log.read_text().splitlines())}\\n")
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_report_junit_summary_and_log_of_one_run(project: pytest.Pytester, xdist: list[str]) -> None:
    """One run writes every artifact; each is checked on its own below."""
    write(project.path / "scenarios" / "list.yaml", FAIL_SECOND)
    write(project.path / "summary.md", "## An earlier step of the CI job\n")  # appended to, as $GITHUB_STEP_SUMMARY
    if not xdist:
        write(project.path / "conftest.py", FLUSHED)
    artifacts = ("--html=reports/report.html", "--self-contained-html", "--junitxml=reports/junit.xml")
    result = run(project, "--interllm", "input/list.md", *artifacts, "--interllm-summary", "summary.md", *xdist)
    result.assert_outcomes(passed=2, failed=1)
    assert_report_shows_prompt_output_class_and_models(project)
    assert_junit_xml_carries_model_class_and_output(project)
    assert_markdown_summary_for_ci(project)
    # Each scenario once, in every process layout: its file, its END line.
    assert outputs(project) == ["scenario_001.md", "scenario_002.md", "scenario_003.md"]
    assert len([line for line in result.outlines if "] END   scenario" in line]) == 3
    if not xdist:  # the JSONL log is flushed scenario by scenario: each record is there as the next one starts
        assert (project.path / "seen.txt").read_text().split() == ["0", "1", "2"]


def assert_report_shows_prompt_output_class_and_models(project: pytest.Pytester) -> None:
    texts = report_texts(project.path / "reports" / "report.html")
    assert len(texts) == 3
    records = {r["index"]: r for r in jsonl(project)}
    for test_id, text in texts.items():
        index = int(test_id.split("scenario_")[1][:3])
        record = records[index]
        assert norm(record["prompt"]) in text
        assert norm(record["final_output"]) in text
        assert f"output file: outputs/scenario_00{index}.md (exists)" in text
    passing = next(t for i, t in texts.items() if "scenario_001" in i)
    # The timeline (tool call, provider requests, codex events) and the output file's preview.
    assert "tool call mkdir -p outputs && cat > outputs/scenario_001.md" in passing and "exit 0" in passing
    assert re.search(r"request POST \S*/v1/responses model='gpt-5-codex' sandbox=workspace-write HTTP 200", passing)
    assert "task_complete" in passing and "## Goal" in passing
    failing = next(t for i, t in texts.items() if "scenario_002" in i)
    assert "[model-mismatch] expected gpt-5-codex, codex session ran gpt-4o" in failing
    assert "expected 'gpt-5-codex'" in failing and "codex session (session_configured) 'gpt-4o'" in failing
    assert "provider request 2 'gpt-4o'" in failing
    page = (project.path / "reports" / "report.html").read_text(encoding="utf-8")
    summary = html.unescape(page)
    for column in ("Scenario", "Model", "Failure class", "Tokens", "Attempts"):
        assert f">{column}</th>" in summary
    assert "failed: model-mismatch" in summary and "codex-cli 0.153.4" in summary
    for fact in ("offline (built-in scripted model, not a real LLM)", "executor</th><td>codex", "gpt-5-codex"):
        assert fact in summary
    cells = {i.split("::")[1][:12]: c for i, c in table_cells(project.path / "reports" / "report.html").items()}
    assert cells["scenario_002"][2:5] == ["2", "gpt-4o", "model-mismatch"] and int(cells["scenario_002"][5]) > 0
    assert cells["scenario_001"][2:5] == ["1", "gpt-5-codex", ""]


def test_jsonl_log_validates_against_the_packaged_schema(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", FAIL_SECOND + "3:\n  skip: not today\n")
    result = run(project, "--interllm", "input/list.md", "-n", "2")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    schema = json.loads(resources.files("pytest_interllm.schema").joinpath("run-record.schema.json").read_text())
    records = jsonl(project)
    assert sorted(r["index"] for r in records) == [1, 2, 3]  # once per scenario, even under xdist
    for record in records:
        jsonschema.validate(record, schema)
    by_index = {r["index"]: r for r in records}
    assert by_index[2]["failure_class"] == "model-mismatch" and by_index[2]["provider_models"] == ["gpt-4o"] * 2
    assert by_index[1]["tool_calls"][0]["exit_code"] == 0 and by_index[1]["tokens_in"] > 0
    assert by_index[3]["result"] == "skipped"
    [log] = list((project.path / "logs").glob("run-*.log"))
    text = log.read_text()
    assert "=== scenario 2: Stream CDC events to Kafka — FAILED [model-mismatch]" in text
    assert "final_output:\n  Wrote the plan for 'Copy the orders table to the warehouse'" in text
    assert "run finished" in text


def assert_junit_xml_carries_model_class_and_output(project: pytest.Pytester) -> None:
    xml = (project.path / "reports" / "junit.xml").read_text()
    assert '<property name="interllm_index" value="2"' in xml
    assert '<property name="interllm_expected_model" value="gpt-5-codex"' in xml
    assert '<property name="interllm_fault" value="omit-model"' in xml
    assert '<property name="interllm_attempts" value="1"' in xml
    tokens = [int(t) for t in re.findall(r'name="interllm_tokens" value="(\d+)"', xml)]
    assert len(tokens) == 3 and min(tokens) > 0
    assert '<property name="interllm_session_model" value="gpt-4o"' in xml
    assert '<property name="interllm_failure_class" value="model-mismatch"' in xml
    assert '<property name="interllm_output" value="outputs/scenario_001.md"' in xml


def assert_markdown_summary_for_ci(project: pytest.Pytester) -> None:
    text = (project.path / "summary.md").read_text()
    assert text.startswith("## An earlier step of the CI job\n## pytest-interllm")
    assert "| 2 | Stream CDC events to Kafka | ❌ failed | model-mismatch | gpt-4o |" in text
    assert "passed: 2" in text and "failed: model-mismatch: 1" in text


def test_script_in_a_scenario_renders_as_text(project: pytest.Pytester, tmp_path: Path) -> None:
    write(project.path / "input" / "list.md", "- Copy <script>alert('x')</script> files\n  - `<b>bold</b>`\n")
    run(project, "--interllm", "input/list.md", "--html=reports/report.html", "--self-contained-html")
    [text] = report_texts(project.path / "reports" / "report.html").values()
    assert "<script>alert('x')</script>" in text  # present as text once the report's own escaping is undone
    page = (project.path / "reports" / "report.html").read_text()
    assert "<script>alert(" not in page and "<b>bold</b>" not in page
    # Our extras are HTML that the report inserts as is: every piece of scenario text in them must be escaped.
    [rows] = report_data(project.path / "reports" / "report.html")["tests"].values()
    extras = [str(e["content"]) for row in rows for e in row["extras"]]
    assert extras and all("<script" not in e and "<b>bold" not in e for e in extras)
    for extra in extras:  # the step `<b>bold</b>` is in the prompt and the output preview, the script in the prompt
        assert "&lt;script&gt;alert(" in extra and extra.count("&lt;b&gt;bold&lt;/b&gt;") >= 2


# Read at import: the suite's autouse fixture clears INTERLLM_* variables, this one is CI's (.ci/run).
BROWSER_REQUIRED = os.environ.get("PYTEST_INTERLLM_REQUIRE_BROWSER") == "1"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_final_output_is_visible_in_a_real_browser(project: pytest.Pytester) -> None:
    browser = _chromium()
    if browser is None:
        reason = "no Chromium installed (Debian package `chromium`); .ci/run installs it"
        if BROWSER_REQUIRED:
            pytest.fail(f"{reason}, and CI requires the browser check", pytrace=False)
        pytest.skip(reason)
    try:
        from playwright import sync_api
    except ImportError:
        if BROWSER_REQUIRED:
            raise
        pytest.skip("playwright (the dev extra) is not installed")
    write(project.path / "scenarios" / "list.yaml", FAIL_SECOND)
    run(project, "--interllm", "input/list.md", "--html=reports/report.html", "--self-contained-html")
    url = (project.path / "reports" / "report.html").as_uri()
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_api.sync_playwright() as p:
        page = p.chromium.launch(executable_path=browser, args=args).new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url + "?collapsed=all")
        final = page.get_by_text("Wrote the plan for 'Copy the orders table to the warehouse'").first
        assert not final.is_visible()
        page.locator("td.col-testId", has_text="scenario_001").click()
        final.wait_for(state="visible", timeout=10_000)
        assert final.is_visible()
        assert page.get_by_text("failed: model-mismatch").first.is_visible()
        page.screenshot(path=str(project.path / "reports" / "shot.png"), full_page=True)
        assert dialogs == []
