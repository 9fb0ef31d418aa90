"""Start-up and teardown: pytest launch to the first model request, the last scenario's end to process exit, `make
run`'s wall clock beside its scenarios' durations, and one reused codex server vs one per scenario.

Each round runs them all once (serial, then `-n 4`, then the example list as `make run` runs it, then the server
reuse, then the floor below); each figure is the median [min–max] over the rounds. The last scenario's end is the
timing plugin's last teardown report; the exit is when the child process has ended (report written, codex stopped).

The floor beside the start-up figure, measured in the same rounds: what any pytest run and any MCP client of codex
pay before a first request, with no pytest-interllm — `pytest --collect-only` of an empty project with the same
installed plugins (launch to exit), plus a bare script that imports mcp, spawns `codex mcp-server` through mcp's
own stdio client, completes the handshake and calls the `codex` tool (launch to codex's first request, caught by a
plain socket). The start-up figure less that floor is what the plugin itself adds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import HERE, project, pytest_run, scenario_list, update_summary, write_result
from figures import per_round, rounds, spread, text

from pytest_interllm.codex.config import config_toml
from pytest_interllm.codex.locate import locate
from pytest_interllm.settings import Settings
from pytest_interllm.wiring import make_executor

CALLS = 8

# The bare MCP client: launch → codex's first model request, seen by a plain socket (argv: codex, its home, cwd).
BARE_CLIENT = r"""
import asyncio, os, socket, sys, threading, time
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

codex, home, cwd = sys.argv[1:4]
listener = socket.create_server(("127.0.0.1", 0))
seen = threading.Event()
first = []

def accept():
    conn, _ = listener.accept()
    first.append(time.time())
    seen.set()
    conn.close()

threading.Thread(target=accept, daemon=True).start()
url = "http://127.0.0.1:%d/v1" % listener.getsockname()[1]
with open(os.path.join(home, "config.toml"), "w") as fh:
    fh.write(sys.stdin.read().replace("URL", url))

async def main():
    env = {"HOME": home, "CODEX_HOME": home, "INTERLLM_PROVIDER_KEY": "bare", "PATH": os.environ["PATH"]}
    params = StdioServerParameters(command=codex, args=["mcp-server"], env=env, cwd=cwd)
    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            arguments = {"prompt": "hi", "cwd": cwd, "model": "gpt-5-codex"}
            call = asyncio.ensure_future(session.call_tool("codex", arguments))
            while not seen.is_set() and not call.done():
                await asyncio.sleep(0.001)
            call.cancel()

asyncio.run(main())
print(first[0])
"""


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


def bare_client(root: Path, codex: str) -> float:
    """The bare MCP client's seconds from launch to codex's first model request (`codex` located beforehand: its
    checks are not the client's)."""
    home = Path(tempfile.mkdtemp(prefix="interllm-bare-"))
    try:
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-c", BARE_CLIENT, codex, str(home), str(root)],
            input=config_toml("URL", "gpt-5-codex"),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return float(done.stdout.strip().splitlines()[-1]) - start
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bare_pytest(empty: Path) -> float:
    """Seconds from launch to exit of `pytest --collect-only` in an empty project (the installed plugins, not ours)."""
    start = time.time()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:interllm", "-p", "no:cacheprovider"],
        cwd=empty,
        capture_output=True,
        timeout=60,
        check=False,  # exit 5: no tests, as expected
    )
    return time.time() - start


def main() -> int:
    root = project(scenario_list(4))
    example = project(EXAMPLE.read_text(), stem="DataTransferScenarioList", cache=True)
    empty = Path(tempfile.mkdtemp(prefix="interllm-bench-empty-"))
    codex = locate(None).path
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
        pytest_alone, client = bare_pytest(empty), bare_client(root, codex)
        values.setdefault("floor_pytest_s", []).append(pytest_alone)
        values.setdefault("floor_mcp_client_s", []).append(client)
        values.setdefault("startup_floor_s", []).append(pytest_alone + client)
        over = values["startup_first_request_s"][-1] - pytest_alone - client
        values.setdefault("startup_over_floor_s", []).append(over)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(empty, ignore_errors=True)
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
        "floor_pytest_s": "floor: pytest --collect-only, empty project",
        "floor_mcp_client_s": "floor: bare mcp client → codex's first request",
        "startup_floor_s": "floor: the two together",
        "startup_over_floor_s": "start-up (serial) less the floor, same round",
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
                "startup_floor_s",
                "startup_over_floor_s",
            )
        }
    )
    print(
        f"start-up to first request: {text(figures['startup_first_request_s'])} s (target <= 1.0); teardown "
        f"{text(figures['teardown_s'])} s (target <= 0.5); make run: wall − scenarios "
        f"{text(figures['make_run_overhead_s'])} s (target <= 2.0); the floor (pytest alone + a bare mcp client to "
        f"codex's first request) {text(figures['startup_floor_s'])} s, start-up over it "
        f"{text(figures['startup_over_floor_s'])} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
