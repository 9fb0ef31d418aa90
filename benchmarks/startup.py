"""Start-up: pytest launch to the first model request, and one reused codex server vs one per scenario."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from common import median, project, pytest_run, scenario_list, update_summary, write_result

from pytest_interllm.codex.locate import locate
from pytest_interllm.settings import Settings
from pytest_interllm.wiring import make_executor

CALLS = 8


def first_request(root: Path, *args: str) -> float:
    run = pytest_run(root, "--interllm", "input/list.md", *args)
    assert run["returncode"] == 0, run["tail"]
    [log] = sorted((root / "logs").glob("run-*.jsonl"))[-1:]
    first = min(r["requests"][0]["time"] for r in map(json.loads, log.read_text().splitlines()))
    shutil.rmtree(root / "logs")
    return first - run["launched"]


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
    serial = median([first_request(root) for _ in range(3)])
    xdist = median([first_request(root, "-n", "4") for _ in range(2)])
    reused, fresh = reuse_vs_fresh(root)
    shutil.rmtree(root, ignore_errors=True)
    print(f"{'measure':52} {'seconds':>8}")
    print(f"{'pytest launch → first model request (serial)':52} {serial:8.2f}")
    print(f"{'pytest launch → first model request (-n 4)':52} {xdist:8.2f}")
    print(f"{'per scenario, one reused codex server':52} {reused:8.3f}")
    print(f"{'per scenario, a new codex server each time':52} {fresh:8.3f}")
    write_result(
        "startup",
        {
            "first_request_serial_s": round(serial, 3),
            "first_request_n4_s": round(xdist, 3),
            "per_scenario_reused_s": round(reused, 3),
            "per_scenario_fresh_s": round(fresh, 3),
        },
    )
    update_summary(startup_first_request_s=round(serial, 3), server_reuse_speedup=round(fresh / reused, 2))
    print(
        f"start-up to first request: {serial:.2f} s; server reuse saves {fresh - reused:.3f} s per scenario "
        f"({fresh / reused:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
