"""The same verdict every time: a scenario's class depends on its own evidence, never on timing, on what else is
in flight or on the executor; one scenario's failure is never another's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import jsonl, outputs, run, write
from tests.test_concurrency import bucket_list

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("executor", ["codex", "app-server"])
@pytest.mark.parametrize("concurrency", ["1", "3"])
@pytest.mark.long
def test_faults_side_by_side_keep_their_own_classes(project: pytest.Pytester, concurrency: str, executor: str) -> None:
    yaml = "1:\n  fault: write-outside\n2:\n  fault: exec-missing\n3:\n  fault: no-write\n"
    write(project.path / "scenarios" / "list.yaml", yaml)
    # In flight, three times over: which scenario's requests come first differs from run to run. Serially they
    # never interleave: one run.
    for n in range(3 if concurrency != "1" else 1):
        args = ["--interllm-concurrency", concurrency, "--interllm-executor", executor, "--interllm-log-dir", f"l{n}"]
        run(project, "--interllm", "input/list.md", *args)
        records = jsonl(project, f"l{n}")
        assert [r["failure_class"] for r in records] == ["sandbox-denied", "exec-not-found", "no-output-file"]
        denied, missing, silent = records
        # The evidence is each scenario's own: the refused write's output, the command codex could not start.
        assert "Read-only file system" in denied["failure"]
        assert "os error 2" in missing["failure"]
        assert silent["tool_calls"] == [] and "os error 2" not in silent["failure"]


@pytest.mark.long
def test_a_crash_beside_three_clean_scenarios_fails_only_itself(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "0.5")  # all four are in flight when codex is killed
    bucket_list(project, 4)
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: crash\n")
    for executor in ("codex", "app-server"):
        args = ["--interllm-concurrency", "4", "--interllm-executor", executor, "--interllm-log-dir", executor]
        run(project, "--interllm", "input/list.md", *args).assert_outcomes(passed=3, failed=1)
        crashed, *clean = jsonl(project, executor)
        assert crashed["failure_class"] == "codex-crashed" and crashed["reruns"] == []
        for record in clean:
            assert record["result"] == "passed"
            [why] = record["reruns"]  # judged on a fresh server, and it says so
            assert why.startswith("re-run on a fresh codex server: the server (pid ") and "in flight" in why
    assert len(outputs(project)) == 3


@pytest.mark.long
def test_a_timeout_never_takes_down_the_scenarios_beside_it(project: pytest.Pytester) -> None:
    bucket_list(project, 6)
    stall = "  fault: stall\n  timeout: 5\n"
    write(project.path / "scenarios" / "list.yaml", f"2:\n{stall}5:\n{stall}")
    result = run(project, "--interllm", "input/list.md", "--interllm-concurrency", "4")
    result.assert_outcomes(passed=4, failed=2)
    assert [r["failure_class"] for r in jsonl(project)] == [None, "timeout", None, None, "timeout", None]


def test_a_repeated_items_record_keeps_the_file_a_later_attempt_wrote(project: pytest.Pytester) -> None:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: no-write\n  fault_requests: 1\n")
    result = run(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-repeat", "3")
    result.assert_outcomes(failed=1, deselected=2)  # 2/3 < min_pass 1.0: the failed first attempt is shown
    [record] = jsonl(project)
    assert [r["result"] for r in record["runs"]] == ["failed", "passed", "passed"]
    written = (project.path / "outputs" / "scenario_001.md").read_text()
    assert record["output_exists"] and record["output_text"] == written
    # The file is the plugin's: the next run removes it rather than move it aside as a user's.
    again = run(project, "--interllm", "input/list.md", "-k", "scenario_003", "--interllm-log-dir", "again")
    again.assert_outcomes(passed=1, deselected=2)
    assert outputs(project) == ["scenario_003.md"]


def test_an_agent_without_a_model_is_told_what_the_sdk_ran_and_where_to_fix_it(project: pytest.Pytester) -> None:
    example = (REPO / "examples" / "acme_orchestrator.py").read_text(encoding="utf-8")
    write(project.path / "orch.py", example.replace("model=model, ", ""))
    result = run(project, "--interllm", "input/list.md", "--interllm-agent", "orch:build", "-k", "scenario_001")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "[[]model-mismatch[]] expected gpt-5-codex for the orchestrator (acme-orchestrator), it ran gpt-5.6-luna "
            "(its Agent sets no model: the SDK's default)",
            "check next: the orchestrator runs the model its Agent names: give the Agent `model=`*",
        ]
    )


@pytest.mark.parametrize("executor", ["codex", "agents", "app-server"])
def test_every_executor_checks_sandbox_approval_and_cwd(project: pytest.Pytester, executor: str) -> None:
    write(project.path / "scenarios" / "list.yaml", "2:\n  fault: wrong-sandbox\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-executor", executor)
    result.assert_outcomes(passed=2, failed=1)
    first, wrong, _ = jsonl(project)
    assert first["session_config"] == {
        "sandbox": "workspace-write",
        "approval-policy": "never",
        "cwd": str(project.path),
    }
    assert wrong["failure_class"] == "config-mismatch"
    assert "sandbox='read-only', asked 'workspace-write'" in wrong["failure"]
    assert outputs(project) == ["scenario_001.md", "scenario_003.md"]  # the read-only session could not write it
    if executor == "agents":
        return
    # Where codex said so: its session record (MCP), thread/start (app-server), and each request's turn metadata.
    source = "session_configured" if executor == "codex" else "thread/start"
    result.stdout.fnmatch_lines(
        [
            "[[]config-mismatch[]] asked for sandbox workspace-write, codex ran with sandbox read-only",
            "evidence:",
            f"  session ({source}): sandbox='read-only', asked 'workspace-write'",
            "  provider request 1 at ??:??:??: turn metadata sandbox_mode='read-only'",
        ]
    )
