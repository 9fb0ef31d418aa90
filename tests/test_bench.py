"""The benchmarks' statistics: figures from rounds (median [min–max]), ratios per round, targets checked on the
median (benchmarks/figures.py, run_all.py, table.py). In-process, no codex."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
MODULES = ("figures", "common", "run_all", "table")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """The benchmark scripts' modules, imported from benchmarks/ as `make bench` runs them (a real run's settings)."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.delenv("BENCH_ROUNDS", raising=False)
    monkeypatch.delenv("BENCH_SCALE", raising=False)
    yield {name: importlib.import_module(name) for name in MODULES}
    for name in MODULES:
        sys.modules.pop(name, None)


def test_a_figure_is_the_median_and_spread_of_its_rounds(bench: dict[str, ModuleType]) -> None:
    figures = bench["figures"]
    assert figures.spread([1.2, 0.9, 1.0, 1.1, 0.95]) == {"median": 1.0, "min": 0.9, "max": 1.2, "rounds": 5}
    assert figures.spread([24.64, 25.01], 1) == {"median": 24.8, "min": 24.6, "max": 25.0, "rounds": 2}
    with pytest.raises(ValueError, match="at least one round"):
        figures.spread([])
    assert figures.rounds() == 5
    assert not figures.smoke()


def test_a_ratio_is_taken_round_by_round(bench: dict[str, ModuleType]) -> None:
    figures = bench["figures"]
    ours, bare = [1.0, 10.0, 10.0], [1.0, 20.0, 5.0]
    assert figures.per_round(ours, bare) == [1.0, 0.5, 2.0]
    # the median of the per-round ratios, never the ratio of the medians (10 / 5 = 2 here)
    assert figures.spread(figures.per_round(ours, bare))["median"] == 1.0
    with pytest.raises(ValueError, match="2 rounds of ours against 3"):
        figures.per_round([1.0, 2.0], bare)


def test_a_figure_prints_with_its_spread_and_rounds(bench: dict[str, ModuleType]) -> None:
    figures = bench["figures"]
    assert figures.text({"median": 1.0, "min": 0.9, "max": 1.1, "rounds": 5}) == "1.000 [0.900–1.100] (5 rounds)"
    assert figures.text({"median": 24.6, "min": 24.1, "max": 25.0, "rounds": 1}, ".1f") == "24.6 [24.1–25.0] (1 round)"


def test_the_median_decides_a_target_and_the_spread_is_printed(bench: dict[str, ModuleType]) -> None:
    figures = bench["figures"]
    summary = {
        "machine": "x86_64, 2 cores",
        "smoke": False,
        # over the target in two rounds, under it on the median: met
        "overhead_ratio": figures.spread([1.0, 1.01, 0.99, 1.2, 1.3]),
        # over the target in two rounds, under it on the median: missed
        "inflight_vs_bare_16": figures.spread([0.5, 0.6, 0.9, 0.99, 1.0]),
        "mb_per_inflight_64": figures.spread([24.0, 26.0, 24.5, 24.9, 30.0], 1),
        "parallel_efficiency_n8": figures.spread([0.8, 0.81, 0.79, 0.8, 0.82]),  # no target
        "teardown_s": figures.spread([0.9, 0.3]),  # too few rounds for a real run
    }
    lines, missed = figures.check(summary)
    assert missed == ["inflight_vs_bare_16", "teardown_s"]
    text = "\n".join(lines)
    assert "overhead_ratio               1.010 [0.990–1.300] (5 rounds)  met (target <= 1.05)" in lines
    assert "inflight_vs_bare_16          0.900 [0.500–1.000] (5 rounds)  MISSED (target >= 0.95)" in lines
    assert "mb_per_inflight_64           24.9 [24.0–30.0] (5 rounds)  met (target <= 25)" in lines
    assert "parallel_efficiency_n8       0.800 [0.790–0.820] (5 rounds)" in lines
    assert "teardown_s                   0.600 [0.300–0.900] (2 rounds)  MISSED (target <= 0.5)  (only 2 of 5" in text
    assert "machine" not in text


@pytest.mark.parametrize(("median", "code"), [(1.04, 0), (1.06, 1)])
def test_run_all_fails_on_a_missed_median(
    bench: dict[str, ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    median: float,
    code: int,
) -> None:
    run_all, figures = bench["run_all"], bench["figures"]
    (tmp_path / "summary.json").write_text('{"overhead_ratio": 0.5}')  # a stale figure of an earlier run

    def benchmark(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        figure = {"median": median, "min": 0.9, "max": 1.4, "rounds": 5}
        (tmp_path / "summary.json").write_text(json.dumps({"machine": "m", "overhead_ratio": figure}))
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    monkeypatch.setattr(run_all, "SCRIPTS", ("overhead.py",))
    monkeypatch.setattr(run_all.subprocess, "run", benchmark)
    assert run_all.main() == code
    out = capsys.readouterr().out
    assert f"overhead_ratio               {median:.3f} [0.900–1.400] (5 rounds)" in out
    assert ("MISSED" in out) is bool(code)
    assert figures.TARGETS["overhead_ratio"] == ("<=", 1.05)


def test_run_all_fails_when_a_benchmark_fails(
    bench: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_all = bench["run_all"]
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    monkeypatch.setattr(run_all, "SCRIPTS", ("startup.py",))
    monkeypatch.setattr(run_all.subprocess, "run", lambda args, **kwargs: subprocess.CompletedProcess(args, 1))
    assert run_all.main() == 1
    assert "failed: startup.py" in capsys.readouterr().out


def test_summary_keeps_median_min_max_and_rounds(
    bench: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    common, figures = bench["common"], bench["figures"]
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    common.update_summary(overhead_ratio=figures.spread([1.0, 0.98, 1.02, 0.97, 1.01]))
    common.update_summary(teardown_s=figures.spread([0.4, 0.45, 0.38, 0.5, 0.41]))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["overhead_ratio"] == {"median": 1.0, "min": 0.97, "max": 1.02, "rounds": 5}
    assert summary["teardown_s"] == {"median": 0.41, "min": 0.38, "max": 0.5, "rounds": 5}
    assert summary["machine"] == common.machine()
    assert summary["smoke"] is False
    assert summary["scale"] == 1.0


def test_the_readme_table_comes_from_the_summary(bench: dict[str, ModuleType]) -> None:
    table, figures = bench["table"], bench["figures"]
    summary = {
        "machine": "x86_64, 2 cores, 24 GiB, Python 3.11.7, Linux",
        "smoke": False,
        "overhead_ratio": figures.spread([1.0, 1.01, 0.99, 1.2, 1.3]),
        "inflight_vs_bare_64": figures.spread([0.8, 0.85, 0.86, 0.9, 0.95]),
        "mb_per_inflight_64": figures.spread([24.0, 26.0, 24.5, 24.9, 30.0], 1),
    }
    out = table.table(summary)
    assert "From `make bench` on x86_64, 2 cores, 24 GiB, Python 3.11.7, Linux" in out
    assert "| **1.010 [0.990–1.300] (5 rounds)** | ≤ 1.05 ✔ |" in out
    assert "| **0.860 [0.800–0.950] (5 rounds)** | ≥ 0.9 ✘ |" in out
    assert "| **24.9 [24.0–30.0] (5 rounds)** | ≤ 25 ✔ |" in out
    assert "collect" not in out  # a figure the run did not measure has no row
    assert "a SMOKE run (fewer rounds, scenario counts × 0.25" in table.table({**summary, "smoke": True, "scale": 0.25})


def test_every_target_has_a_row_in_the_readme_table(bench: dict[str, ModuleType]) -> None:
    figures, table = bench["figures"], bench["table"]
    assert figures.TARGETS == {
        "overhead_ratio": ("<=", 1.05),
        "parallel_efficiency_n4": (">=", 0.90),
        "collect_ratio_10k": ("<=", 1.5),
        "collect_ratio_10k_cold": ("<=", 1.5),
        "inflight_vs_bare_16": (">=", 0.95),
        "mb_per_inflight_16": ("<=", 50),
        "speedup_wall_16": (">=", 6),
        "inflight_vs_bare_64": (">=", 0.90),
        "mb_per_inflight_64": ("<=", 25),
        "startup_first_request_s": ("<=", 1.0),
        "teardown_s": ("<=", 0.5),
        "make_run_overhead_s": ("<=", 2.0),
    }
    assert set(figures.TARGETS) <= {key for _, key, _ in table.ROWS}


def test_the_readme_table_is_the_committed_run(bench: dict[str, ModuleType]) -> None:
    """The README's Performance table is table.py's output for the committed benchmarks/results/summary.json, a
    real run (not a smoke run), and the README names each target that run missed."""
    summary = json.loads((BENCH / "results" / "summary.json").read_text(encoding="utf-8"))
    readme = (BENCH.parent / "README.md").read_text(encoding="utf-8")
    assert bench["table"].table(summary) in readme
    assert not summary["smoke"]
    for key in bench["figures"].check(summary)[1]:
        assert f"missed `{key}`" in readme


def test_the_fault_matrix_runs_each_fault_that_stops_the_run_alone_and_counts_a_skip_as_one(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    """faults.py: `usage-limit` and `token-expiring` stop the run, so each runs in a list of its own whose clean
    scenario must be skipped; a skipped scenario in the JUnit file is `skipped`, never `passed`."""
    faults = importlib.import_module("faults")
    try:
        runs = faults.plan(["http-401", "usage-limit", "stall", "token-expiring"])
        assert runs == [(["http-401", "stall"], 4), (["usage-limit"], 1), (["token-expiring"], 1)]
        junit = tmp_path / "junit.xml"
        junit.write_text(
            '<testsuites><testsuite><testcase name="s1" time="0.1"><properties>'
            '<property name="interllm_fault" value="usage-limit"/>'
            '<property name="interllm_failure_class" value="usage-limit"/></properties></testcase>'
            '<testcase name="s2" time="0"><skipped message="the run stopped"/></testcase></testsuite></testsuites>'
        )
        rows, lost, hangs = faults.read_junit(junit)
        assert [(r["fault"], r["got"], r["ok"]) for r in rows] == [
            ("usage-limit", "usage-limit", True),
            ("-", "skipped", False),
        ]
        assert (lost, hangs) == (0, 0)
    finally:
        sys.modules.pop("faults", None)


def test_the_overhead_ratio_takes_nine_rounds(bench: dict[str, ModuleType]) -> None:
    overhead = importlib.import_module("overhead")
    try:
        assert overhead.ROUNDS == 9
    finally:
        sys.modules.pop("overhead", None)
