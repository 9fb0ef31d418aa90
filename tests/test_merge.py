"""Sharding across CI jobs with pytest-split, and `python -m pytest_interllm merge` of their logs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run, write

EXAMPLE = Path(__file__).resolve().parents[1] / "input" / "DataTransferScenarioList.md"


def log_of(project: pytest.Pytester, name: str) -> Path:
    [path] = (project.path / "logs" / name).glob("run-*.jsonl")
    return path


@pytest.mark.long
def test_two_shards_cover_every_scenario_once_and_merge_to_the_single_run(project: pytest.Pytester) -> None:
    shutil.copy(EXAMPLE, project.path / "input" / "list.md")
    write(project.path / "scenarios" / "list.yaml", "5:\n  fault: no-write\n12:\n  skip: partner is down\n")
    single = run(project, "--interllm", "input/list.md", "--interllm-log-dir", "logs/single")
    single.assert_outcomes(passed=15, failed=1, skipped=1)
    for group in ("1", "2"):
        run(
            project,
            "--interllm",
            "input/list.md",
            "--splits",
            "2",
            "--group",
            group,
            "--interllm-log-dir",
            f"logs/shard{group}",
        )
    shards = [log_of(project, "shard1"), log_of(project, "shard2")]
    lines = [json.loads(line) for path in shards for line in path.read_text().splitlines()]
    ids = [r["nodeid"] for r in lines if r.get("record") != "summary"]  # each log ends with the run's summary
    single = [json.loads(line) for line in log_of(project, "single").read_text().splitlines()]
    single_ids = [r["nodeid"] for r in single if r.get("record") != "summary"]
    assert len(ids) == len(set(ids)) == 17 and sorted(ids) == sorted(single_ids)
    assert [r["record"] for r in lines if "record" in r] == ["summary", "summary"]
    assert all(path.read_text().strip() for path in shards)  # both shards really ran something
    merged = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_interllm",
            "merge",
            *map(str, shards),
            "--html",
            "merged.html",
            "--summary",
            "merged.md",
        ],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=True,
    )
    solo = subprocess.run(
        [sys.executable, "-m", "pytest_interllm", "merge", str(log_of(project, "single"))],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=True,
    )
    tally = [line for line in merged.stdout.splitlines() if line.startswith(("failed", "passed"))]
    assert tally == [line for line in solo.stdout.splitlines() if line.startswith(("failed", "passed"))]
    assert tally == ["failed: 1 · failed: no-output-file: 1 · passed: 15 · skipped: 1"]
    assert tally[0] in (project.path / "merged.md").read_text()
    # The merged shards' pass rate is the single run's, with its interval (made again from the scenarios' records).
    rate = "**pass rate 15/16 passed = 93.8% (95% CI 71.7–98.9%) on the agent's attempts**"
    assert rate in (project.path / "merged.md").read_text() and rate in solo.stdout
    page = (project.path / "merged.html").read_text()
    assert page.count("<details") >= 17 and "no-output-file" in page


def test_merge_refuses_overlapping_shards(project: pytest.Pytester) -> None:
    run(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-log-dir", "logs/a")
    path = log_of(project, "a")
    result = subprocess.run(
        [sys.executable, "-m", "pytest_interllm", "merge", str(path), str(path)],
        cwd=project.path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "the shards overlap" in result.stderr and f"{path}:1" in result.stderr
