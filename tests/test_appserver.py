"""Today's codex: the app-server executor through OpenAI's SDK, with the SDK's own codex runtime."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_interllm.codex.process import alive
from pytest_interllm.faults import EXPECTED_CLASS, REGISTRY
from tests.conftest import assert_nothing_left_open, jsonl, outputs, run, strict, write
from tests.test_no_orphans import Watch, ended, start

EXAMPLE = Path(__file__).resolve().parents[1] / "input" / "DataTransferScenarioList.md"
APP = ("--interllm-executor", "app-server")


def properties(junit: Path) -> list[dict[str, str]]:
    """Each test case's interllm properties, in order."""
    return [
        {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
        for case in ET.parse(junit).getroot().iter("testcase")
    ]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_example_list_passes_on_todays_codex(project: pytest.Pytester, xdist: list[str]) -> None:
    shutil.copy(EXAMPLE, project.path / "input" / "list.md")
    result = run(project, "--interllm", "input/list.md", *APP, *xdist, *strict(project))
    result.assert_outcomes(passed=17)
    assert_nothing_left_open(result)
    result.stdout.fnmatch_lines(
        [
            "interllm: provider offline*, executor app-server",
            "interllm: codex */site-packages/codex_cli_bin/bin/codex (codex-cli 0.163.0), *",
        ]
    )
    assert len(outputs(project)) == 17
    record = jsonl(project)[0]
    assert record["executor"] == "app-server" and record["session_model"] == "gpt-5-codex"
    assert record["session_config"] == {
        "sandbox": "workspace-write",
        "approval-policy": "never",
        "cwd": str(project.path),
    }
    assert record["tool_calls"][0]["exit_code"] == 0 and record["tool_calls"][0]["duration"] is not None
    assert record["tokens_in"] > 0 and record["final_output"].startswith("Wrote the plan for")
    assert {r["sandbox_mode"] for r in record["requests"]} == {"workspace-write"}


@pytest.mark.long
def test_every_applicable_fault_is_classified_and_no_codex_is_left(project: pytest.Pytester) -> None:
    # A fault that stops the run goes last (one of them: the run stops there), after the clean run.
    stopping = [f for f in EXPECTED_CLASS if REGISTRY[f].stops_run]
    in_workspace = [f for f in EXPECTED_CLASS if REGISTRY[f].needs_workspace]  # test_workspace.py
    faults = [f for f in EXPECTED_CLASS if f != "mcp-no-content" and f not in stopping + in_workspace]
    titles = [f"Fault {f}: move the nightly export" for f in faults] + ["Clean run: copy the partner files"]
    titles.append(f"Fault {stopping[0]}: move the nightly export")
    write(project.path / "input" / "list.md", "".join(f"- {t}\n  - verify the checksums\n" for t in titles))
    numbered = {**dict(enumerate(faults, 1)), len(titles): stopping[0]}
    write(
        project.path / "scenarios" / "list.yaml",
        "".join(f"{n}:\n  fault: {f}\n  timeout: 4\n" for n, f in numbered.items()),
    )
    faults.append(stopping[0])
    watch = Watch(project.path, interface="app-server")
    proc = start(project, "--interllm", "input/list.md", *APP, "--interllm-provider-retries", "1", "--junitxml=j.xml")
    out = ended(proc, 300)
    seen = watch.stop()
    got = {
        p["interllm_fault"] or "-": p["interllm_failure_class"] or "passed" for p in properties(project.path / "j.xml")
    }
    assert got == {**{f: EXPECTED_CLASS[f] for f in faults}, "-": "passed"}, out
    assert seen and [pid for pid in seen if alive(pid)] == []
    # The crash restarted the app-server; the timeout only interrupted the turn.
    pids = {p["interllm_fault"]: p["interllm_codex_pid"] for p in properties(project.path / "j.xml")}
    assert pids["crash"] != pids["omit-model"] and pids["stall"] == pids["bad-sse"]
    stalled = next(r for r in jsonl(project) if r["fault"] == "stall")
    assert [e["type"] for e in stalled["events"]][-1] == "turn/completed"  # interrupted, not abandoned


def test_mcp_no_content_does_not_exist_on_app_server(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1: {}\n2:\n  fault: mcp-no-content\n")
    result = project.runpytest("--interllm", "input/list.md", *APP, "--collect-only")
    result.stdout.fnmatch_lines(
        [
            "*scenarios/list.yaml:3: the mcp-no-content fault is not available with the app-server executor "
            "(app-server speaks JSON-RPC, not MCP: there is no CallToolResult)*"
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_without_an_mcp_codex_the_default_is_app_server(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_CODEX_CACHE", str(project.path / "empty-cache"))
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_002")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "interllm: provider offline*, executor app-server (default: no codex with mcp-server is installed; "
            "`python -m pytest_interllm install-codex` adds one)"
        ]
    )
    refused = project.runpytest("--interllm", "input/list.md", "--interllm-executor", "codex")  # refused at start-up
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        [
            "ERROR: pytest-interllm: --interllm-executor codex: no usable codex binary with `mcp-server`; tried:",
            "*(codex-cli 0.163.0): has no `mcp-server` command (codex 0.154.0 and later removed it)",
            "fix: python -m pytest_interllm install-codex  (installs codex 0.153.4, the newest with mcp-server)",
        ]
    )
    assert "START scenario" not in refused.stdout.str()


def test_the_app_server_gets_a_clean_environment(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-never-for-codex-1a2b3c4d5e")
    project.makepyfile(
        test_env="""
import os

PROMPT = "Scenario 1: Copy logs\\n\\nWrite the complete document to the file `outputs/env.md`."


def test_env(interllm_codex):
    outcome = interllm_codex.run(PROMPT, output_file="outputs/env.md", model="gpt-5-codex")
    interllm_codex.check(outcome)
    with open(f"/proc/{outcome.codex_pid}/environ", "rb") as fh:
        environ = dict(e.split(b"=", 1) for e in fh.read().split(b"\\0") if e)
    assert set(environ) - {b"PWD"} == {b"CODEX_HOME", b"HOME", b"INTERLLM_PROVIDER_KEY", b"LANG", b"PATH"}
    assert outcome.session_model == "gpt-5-codex" and outcome.session_config["sandbox"] == "workspace-write"
"""
    )
    result = run(project, "test_env.py", *APP, "--interllm-provider", "offline")
    result.assert_outcomes(passed=1)


def test_install_codex_reports_where_codex_is(tmp_path: Path) -> None:
    """With the version already in the cache nothing is downloaded: the command says where it is."""
    cache = os.environ["INTERLLM_CODEX_CACHE"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest_interllm", "install-codex"],
        capture_output=True,
        text=True,
        env={**os.environ, "INTERLLM_CODEX_CACHE": cache},
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith(f"codex 0.153.4 is at {cache}/0.153.4/codex_cli_bin/bin/codex (cache: {cache};")


def test_cassettes_record_and_replay_on_app_server(project: pytest.Pytester) -> None:
    recorded = run(project, "--interllm", "input/list.md", *APP, "--interllm-provider", "record")
    recorded.assert_outcomes(passed=3)
    replayed = run(project, "--interllm", "input/list.md", *APP, "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["interllm: proxy: 6 requests, 0 sent upstream, 6 replayed*"])
