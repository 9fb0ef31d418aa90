"""Many scenarios in flight per process, on one codex server: same results, same order, nothing left behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_interllm.codex.process import alive
from tests.conftest import jsonl, outputs, run, write
from tests.test_no_orphans import Watch, ended, start

# Fields that differ between two runs of the same scenarios (times, ids, processes).
VOLATILE = {"time", "latency", "duration", "started_at", "ended_at", "thread_id", "nodeid", "events", "path", "call_id"}
# Each answer's own: the backend's request id and turn state, the proxy's clock, the hash of bytes that carry ids.
VOLATILE |= {"request_id", "turn_state", "first_delta", "upstream_done", "body_sha256"}


def stable(value: Any) -> Any:
    """A JSONL record without what changes from run to run."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, str):  # codex's own output names a per-run chunk id and wall time
        return "\n".join(line for line in value.splitlines() if not line.startswith(("Chunk ID", "Wall time")))
    return value


def bucket_list(project: pytest.Pytester, n: int) -> None:
    write(project.path / "input" / "list.md", "".join(f"- Copy partner bucket {i} to the archive\n" for i in range(n)))


def test_results_in_flight_equal_a_serial_run(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "0.3")
    write(project.path / "scenarios" / "list.yaml", "2:\n  fault: no-write\n3:\n  must_contain: [watermark]\n")
    runs = {}
    for name, args in (("serial", []), ("in-flight", ["--interllm-concurrency", "3"])):
        result = run(project, "--interllm", "input/list.md", "--interllm-log-dir", name, *args)
        result.assert_outcomes(passed=1, failed=2)
        ends = [line.split("] ", 1)[1].split(" — ")[0] for line in result.outlines if "] END   scenario" in line]
        files = {p.name: p.read_bytes() for p in (project.path / "outputs").glob("scenario_*.md")}
        runs[name] = (ends, [stable(r) for r in jsonl(project, name)], files)
    for a, b in zip(runs["serial"][1], runs["in-flight"][1], strict=True):
        for key in a:
            assert a[key] == b[key], (key, a[key], b[key])
    assert runs["serial"] == runs["in-flight"]
    assert runs["serial"][0][0] == "END   scenario 1/3: Copy the orders table to the warehouse"  # still in order


def test_sixteen_in_flight_overlap(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "1")
    bucket_list(project, 16)
    result = run(project, "--interllm", "input/list.md", "--interllm-concurrency", "16")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["interllm: concurrency: up to 16 scenarios in flight per process (peak 16)"])
    records = jsonl(project)
    spans = [(r["started_at"], r["ended_at"]) for r in records]
    latest_start, earliest_end = max(s for s, _ in spans), min(e for _, e in spans)
    assert latest_start < earliest_end  # all 16 were running at one moment: each takes >= 2 s of model time
    assert len(outputs(project)) == 16


@pytest.mark.parametrize("executor", ["app-server", "agents"])
def test_every_executor_runs_scenarios_in_flight(project: pytest.Pytester, executor: str) -> None:
    bucket_list(project, 6)
    result = run(project, "--interllm", "input/list.md", "--interllm-concurrency", "3", "--interllm-executor", executor)
    result.assert_outcomes(passed=6)
    records = jsonl(project)
    # Each scenario's evidence is its own, not a neighbour's.
    for record in records:
        assert f"Copy partner bucket {record['index'] - 1} " in record["final_output"], record["final_output"]


def test_x_stops_the_run_with_scenarios_in_flight_and_leaves_nothing(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "0.5")
    bucket_list(project, 12)
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: bad-sse\n")
    watch = Watch(project.path)
    result = run(project, "--interllm", "input/list.md", "--interllm-concurrency", "6", "-x", "--interllm-log-dir", "x")
    seen = watch.stop()
    result.assert_outcomes(failed=1)
    assert seen and [pid for pid in seen if alive(pid)] == []
    [log] = (project.path / "x").glob("run-*.log")
    text = log.read_text()
    assert text.count("=== scenario") == 1 and "still in flight: cancelled, not reported" in text
    # What the cancelled scenarios wrote is the plugin's: listed, so the next run removes it.
    again = run(project, "--interllm", "input/list.md", "-k", "scenario_012", "--interllm-log-dir", "again")
    again.assert_outcomes(passed=1, deselected=11)
    assert outputs(project) == ["scenario_012.md"]


def test_ctrl_c_with_scenarios_in_flight_leaves_no_codex(project: pytest.Pytester) -> None:
    bucket_list(project, 8)
    write(project.path / "scenarios" / "list.yaml", "defaults:\n  fault: stall\n  timeout: 120\n")
    watch = Watch(project.path)
    proc = start(project, "--interllm", "input/list.md", "--interllm-concurrency", "4")
    deadline = time.monotonic() + 60
    while not watch.seen and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # four stalled scenarios are waiting on the provider
    proc.send_signal(signal.SIGINT)
    out = ended(proc, 60)
    seen = watch.stop()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert seen and [pid for pid in seen if alive(pid)] == []


def test_rate_limits_halve_the_window(project: pytest.Pytester) -> None:
    bucket_list(project, 8)
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: http-429\n  fault_requests: 1\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-concurrency", "4")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "interllm: concurrency: up to 4 scenarios in flight per process (peak 4); rate limits halved it 1× "
            "(lowest 2)*"
        ]
    )


def test_with_a_budget_the_first_scenario_runs_alone(project: pytest.Pytester, tmp_path: Path) -> None:
    """Until one scenario has cost something there is nothing to reserve: the first runs alone."""
    write(project.path / "prices.yaml", "gpt-5-codex: {input: 1000000, output: 0}\n")
    bucket_list(project, 4)
    result = run(
        project,
        "--interllm",
        "input/list.md",
        "--interllm-concurrency",
        "4",
        "--interllm-provider",
        "record",
        "--interllm-budget",
        "100000",
    )
    result.assert_outcomes(passed=4)
    first, *others = jsonl(project)
    assert all(first["ended_at"] <= other["started_at"] for other in others)


def test_xdist_times_concurrency(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "0.5")
    bucket_list(project, 8)
    result = run(project, "--interllm", "input/list.md", "-n", "2", "--interllm-concurrency", "4")
    result.assert_outcomes(passed=8)
    assert len([line for line in result.outlines if "] END   scenario" in line]) == 8
    assert len(outputs(project)) == 8
    spans = [(r["started_at"], r["ended_at"]) for r in jsonl(project)]
    overlap = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert overlap > 2  # more at once than the two workers alone would run
