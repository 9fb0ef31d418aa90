"""Overhead of pytest-interllm over a bare script making the same codex MCP calls to the same scripted model.

Both sides run the 17 example scenarios offline, alternately, 9 rounds (BENCH_ROUNDS, when a smoke run asks for
fewer); each side is timed from its first scenario to its last (start-up excluded: see startup.py). Figure: overhead
ratio = plugin / baseline of the same round, median [min–max] over the rounds. A round (about 3 s a side) varies by
±8% on a quiet 2-core machine where the two sides' per-scenario medians differ by 1–3%: 9 rounds keep that noise
out of the median better than 5.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

from common import HERE, project, pytest_run, update_summary, write_result
from figures import per_round, rounds, smoke, spread, text
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from pytest_interllm.codex.config import config_toml, provider_config
from pytest_interllm.codex.locate import locate
from pytest_interllm.prompt import PromptTemplate
from pytest_interllm.providers.scripted import ScriptedModel
from pytest_interllm.scenarios import parse_scenarios

EXAMPLE = HERE.parent / "input" / "DataTransferScenarioList.md"
TEMPLATE = HERE.parent / "input" / "prompt_template.txt"


async def baseline(root: Path) -> float:
    """The same calls with nothing else: scripted model, one codex server, one call per scenario."""
    codex = locate(None).path
    model = ScriptedModel()
    await model.start()
    home = root / "baseline-home"
    (home / "codex").mkdir(parents=True, exist_ok=True)
    (home / "codex" / "config.toml").write_text(config_toml(model.url))
    env = {
        "HOME": str(home),
        "CODEX_HOME": str(home / "codex"),
        "INTERLLM_PROVIDER_KEY": model.token,
        "PATH": os.environ["PATH"],
    }
    template = PromptTemplate.load(TEMPLATE)
    scenarios = parse_scenarios(root / "input" / "list.md").scenarios
    shutil.rmtree(root / "outputs", ignore_errors=True)
    params = StdioServerParameters(command=codex, args=["mcp-server"], env=env, cwd=root)
    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            start = time.perf_counter()
            for s in scenarios:
                out = f"outputs/{s.label}.md"
                prompt = template.render(
                    index=s.index, title=s.title, body=s.body, section=s.section, output_path=out, model="gpt-5-codex"
                )
                await session.call_tool(
                    "codex",
                    {
                        "prompt": prompt,
                        "model": "gpt-5-codex",
                        "cwd": str(root),
                        "sandbox": "workspace-write",
                        "approval-policy": "never",
                        "config": {
                            "model_provider": "interllm",
                            "model_providers": {"interllm": provider_config(model.url)},
                        },
                    },
                )
            elapsed = time.perf_counter() - start
    await model.stop()
    written = len(list((root / "outputs").glob("scenario_*.md")))
    assert written == len(scenarios), f"baseline wrote {written} of {len(scenarios)} files"
    return elapsed


ROUNDS = min(rounds(), 5) if smoke() else max(rounds(), 9)


def main() -> int:
    root = project(EXAMPLE.read_text(), stem="list")
    shutil.copy(TEMPLATE, root / "input" / "prompt_template.txt")
    plugin_times: list[float] = []
    base_times: list[float] = []
    for n in range(ROUNDS):
        if n % 2 == 0:  # which side goes first alternates, so a drift in the machine's load hits both alike
            base_times.append(asyncio.run(baseline(root)))
        run = pytest_run(root, "--interllm", "input/list.md", "--interllm-log-dir", "logs")
        assert run["returncode"] == 0, run["tail"]
        plugin_times.append(run["phase"])
        if n % 2 == 1:
            base_times.append(asyncio.run(baseline(root)))
    n = len(parse_scenarios(EXAMPLE).scenarios)
    ratio = spread(per_round(plugin_times, base_times))
    print(f"{'round':>5} {'baseline s':>11} {'pytest-interllm s':>18} {'ratio':>6}")
    for i, (b, p) in enumerate(zip(base_times, plugin_times, strict=True), 1):
        print(f"{i:>5} {b:>11.3f} {p:>18.3f} {p / b:>6.3f}")
    print(
        f"per scenario: baseline {text(spread([b / n * 1000 for b in base_times], 1), '.1f')} ms, pytest-interllm "
        f"{text(spread([p / n * 1000 for p in plugin_times], 1), '.1f')} ms"
    )
    write_result(
        "overhead",
        {"baseline_s": base_times, "plugin_s": plugin_times, "scenarios": n, "overhead_ratio": ratio},
    )
    update_summary(overhead_ratio=ratio)
    shutil.rmtree(root, ignore_errors=True)
    print(f"overhead ratio: {text(ratio)} (target <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
