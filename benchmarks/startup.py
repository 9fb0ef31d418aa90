"""Start-up and teardown: pytest launch to the first model request, the last scenario's end to process exit, `make
run`'s wall clock beside its scenarios' durations, and one reused codex server vs one per scenario.

Each round runs them all once (serial, then `-n 4`, then the example list as `make run` runs it, then the server
reuse); each figure is the median [min–max] over the rounds. The last scenario's end is the timing plugin's last
teardown report; the exit is when the child process has ended (report written, codex stopped).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import HERE, project, pytest_run, scenario_list, update_summary, write_result
from figures import per_round, rounds, spread, text

from pytest_interllm.codex.locate import locate
from pytest_interllm.settings import Settings
from pytest_interllm.wiring import make_executor

CALLS = 8


EXAMPLE = HERE.parent / "input" / "DataTransferScenarioList.md"


def records(root: Path) -> list[dict[str, Any]]:
    """The JSONL run log's scenario records of the last run (not its summary record; the log directory is removed
    after)."""
    [log] = sorted((root / "logs").glob("run-*.jsonl"))[-1:]
    found = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("record", "scenario") == "scenario"]
    shutil.rmtree(root / "logs")
    return found


def launch_and_exit(root: Path, *args: str) -> tuple[float, float]:
    """Seconds from pytest's launch to the first model request, and from the last scenario's end to the exit."""
    run = pytest_run(root, "--interllm", "input/list.md", *args)
    assert run["returncode"] == 0, run["tail"]
    first = min(r["requests"][0]["time"] for r in records(root) if r["requests"])
    return first - run["launched"], run["ended"] - run["timing"]["last_end"]


def make_run(root: Path) -> tuple[float, float]:
    """`make run`'s pytest (the example list, offline, with the self-contained HTML report): wall clock, and the sum
    of its scenarios' durations from the JSONL run log."""
    run = pytest_run(
        root,
        "--interllm",
        "input/DataTransferScenarioList.md",
        "--interllm-provider",
        "offline",
        "--html=reports/interllm.html",
        "--self-contained-html",
    )
    assert run["returncode"] == 0, run["tail"]
    assert (root / "reports" / "interllm.html").exists(), run["tail"]
    return run["wall"], sum(r["duration"] for r in records(root))


def reuse_vs_fresh(root: Path) -> tuple[float, float]:
    settings = Settings(
        rootdir=root,
        lists=(),
        model="gpt-5-codex",
        model_explicit=False,
        provider="offline",
        executor="codex",
        timeout=60,
        timeout_explicit=False,
        max_scenarios=None,
        codex=None,
        codex_home=None,
        sandbox="workspace-write",
        template=None,
        output_dir=root / "outputs",
    )
    executor = make_executor(settings, locate(None), "bench")
    executor.start()
    prompt = "Scenario {i}: Copy logs\n\n- gzip them\n\nWrite the complete document to the file `outputs/s{i}.md`."
    try:
        start = time.perf_counter()
        for i in range(CALLS):
            executor.run(prompt.format(i=i), output_file=f"outputs/s{i}.md", model="gpt-5-codex")
        reused = (time.perf_counter() - start) / CALLS
        start = time.perf_counter()
        for i in range(CALLS):
            executor.restart()  # what a server per scenario costs: stop, spawn, MCP handshake
            executor.run(prompt.format(i=i), output_file=f"outputs/s{i}.md", model="gpt-5-codex")
        fresh = (time.perf_counter() - start) / CALLS
    finally:
        executor.close()
    return reused, fresh


def main() -> int:
    root = project(scenario_list(4))
    example = project(EXAMPLE.read_text(), stem="DataTransferScenarioList", cache=True)
    shutil.copy(EXAMPLE.parent / "prompt_template.txt", example / "input")
    shutil.copytree(HERE.parent / "scenarios", example / "scenarios", dirs_exist_ok=True)
    values: dict[str, list[float]] = {}
    for _ in range(rounds()):
        for key, args in (("", ()), ("_n4", ("-n", "4"))):
            first, teardown = launch_and_exit(root, *args)
            values.setdefault(f"startup_first_request_s{key}", []).append(first)
            values.setdefault(f"teardown_s{key}", []).append(teardown)
        wall, scenarios = make_run(example)
        values.setdefault("make_run_wall_s", []).append(wall)
        values.setdefault("make_run_scenarios_s", []).append(scenarios)
        values.setdefault("make_run_overhead_s", []).append(wall - scenarios)
        reused, fresh = reuse_vs_fresh(root)
        values.setdefault("per_scenario_reused_s", []).append(reused)
        values.setdefault("per_scenario_fresh_s", []).append(fresh)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(example, ignore_errors=True)
    figures = {key: spread(v) for key, v in values.items()}
    figures["server_reuse_speedup"] = spread(
        per_round(values["per_scenario_fresh_s"], values["per_scenario_reused_s"]), 2
    )
    labels = {
        "startup_first_request_s": "pytest launch → first model request (serial)",
        "startup_first_request_s_n4": "pytest launch → first model request (-n 4)",
        "teardown_s": "last scenario's end → process exit (serial)",
        "teardown_s_n4": "last scenario's end → process exit (-n 4)",
        "make_run_wall_s": "make run: wall clock of its pytest",
        "make_run_scenarios_s": "make run: sum of its scenarios' durations",
        "make_run_overhead_s": "make run: wall − sum of scenarios",
        "per_scenario_reused_s": "per scenario, one reused codex server",
        "per_scenario_fresh_s": "per scenario, a new codex server each time",
        "server_reuse_speedup": "server reuse speed-up (fresh / reused)",
    }
    print(f"{'measure':52} {'seconds: median [min–max] (rounds)':>40}")
    for key, label in labels.items():
        print(f"{label:52} {text(figures[key]):>40}")
    write_result("startup", {**figures, "rounds_s": values})
    update_summary(
        **{
            key: figures[key]
            for key in (
                "startup_first_request_s",
                "startup_first_request_s_n4",
                "teardown_s",
                "teardown_s_n4",
                "make_run_overhead_s",
                "server_reuse_speedup",
            )
        }
    )
    print(
        f"start-up to first request: {text(figures['startup_first_request_s'])} s (target <= 1.0); teardown "
        f"{text(figures['teardown_s'])} s (target <= 0.5); make run: wall − scenarios "
        f"{text(figures['make_run_overhead_s'])} s (target <= 2.0)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
