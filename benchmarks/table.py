"""The README's Performance table from a run's `results/summary.json`: `python table.py [summary.json]` prints it.

Each figure is the median [min–max] over its rounds, checked against its target on the median; the machine and
the date of the run are named above the table. Nothing in the README's table is written by hand.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from figures import TARGETS, met, text

HERE = Path(__file__).resolve().parent

# (benchmark, summary key, what the figure is), in the README's order
ROWS = (
    ("overhead.py", "overhead_ratio", "overhead vs a bare MCP loop (17 examples, start-up excluded)"),
    ("parallel.py", "parallel_efficiency_n4", "`-n 4` efficiency (16 scenarios, 1 s latency)"),
    ("parallel.py", "parallel_efficiency_n8", "`-n 8` efficiency"),
    ("concurrency.py", "inflight_vs_bare_16", "16 in flight vs a bare 16-call script"),
    ("concurrency.py", "speedup_wall_16", "16 in flight vs serial, wall clock with start-up (x)"),
    ("concurrency.py", "efficiency_inflight_16", "16 in flight: serial / (16 × in-flight phase)"),
    ("concurrency.py", "mb_per_inflight_16", "MB per scenario in flight, 16"),
    ("concurrency.py", "inflight_vs_bare_64", "64 in flight vs a bare 64-call script"),
    ("concurrency.py", "mb_per_inflight_64", "MB per scenario in flight, 64"),
    ("concurrency.py", "codex_cpu_per_turn_64", "codex's own CPU per turn, 64 in flight (s)"),
    ("concurrency.py", "bare_codex_cpu_per_turn_64", "codex's own CPU per turn, bare 64-call script (s)"),
    ("collect.py", "collect_ratio_10k", "collect 10k vs parametrise, warm"),
    ("collect.py", "collect_ratio_10k_cold", "collect 10k vs parametrise, cold"),
    ("memory.py", "mb_per_scenario", "MB per concurrent scenario, `-n 4` (worker + codex)"),
    ("startup.py", "startup_first_request_s", "pytest launch → first model request, serial (s)"),
    ("startup.py", "startup_floor_s", "floor: pytest alone + a bare mcp client to codex's first request (s)"),
    ("startup.py", "startup_over_floor_s", "start-up less that floor, same round (s)"),
    ("startup.py", "startup_first_request_s_n4", "pytest launch → first model request, `-n 4` (s)"),
    ("startup.py", "teardown_s", "last scenario's end → process exit, serial (s)"),
    ("startup.py", "teardown_s_n4", "last scenario's end → process exit, `-n 4` (s)"),
    ("startup.py", "make_run_overhead_s", "`make run`: wall − sum of its scenarios (s)"),
    ("startup.py", "server_reuse_speedup", "one reused codex server vs one per scenario (x)"),
)


def table(summary: Mapping[str, Any]) -> str:
    """The markdown table, with the machine and the rounds named above it."""
    fmt_of = {"mb_": ".1f"}
    lines = []
    run = "`make bench`"
    if summary.get("smoke"):
        run = f"a SMOKE run (fewer rounds, scenario counts × {summary.get('scale', 1)}; not `make bench`)"
    lines.append(f"From {run} on {summary.get('machine', 'an unnamed machine')}; median [min–max] over the rounds.")
    lines.append("")
    lines.append("| benchmark | figure | median [min–max] (rounds) | target |")
    lines.append("|---|---|---|---|")
    for script, key, label in ROWS:
        figure = summary.get(key)
        if not isinstance(figure, dict):
            continue
        fmt = next((f for prefix, f in fmt_of.items() if key.startswith(prefix)), ".3f")
        goal = TARGETS.get(key)
        verdict = met(key, figure)
        target = "—" if goal is None else f"{'≤' if goal[0] == '<=' else '≥'} {goal[1]} {'✔' if verdict else '✘'}"
        lines.append(f"| `{script}` | {label} | **{text(figure, fmt)}** | {target} |")
    return "\n".join(lines)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "summary.json"
    print(table(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
