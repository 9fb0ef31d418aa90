"""Parallel speed-up: 16 scenarios with a fixed model latency, serial and with -n 4 / -n 8.

Each request to the scripted model waits LATENCY seconds, standing in for a real model. Times are the
scenario phase of each run (first scenario start to last scenario end, worker start-up excluded: see
startup.py). Each round runs serial, -n 4 and -n 8 one after the other. Figure: parallel efficiency = serial /
(n x parallel) of the same round, median [min–max] over the rounds; 1.0 is ideal, the original script's strictly
serial loop would score 1/n.
"""

from __future__ import annotations

import shutil
import sys

from common import project, pytest_run, scenario_list, update_summary, write_result
from figures import per_round, rounds, scaled, spread, text

LATENCY = "1.0"
SCENARIOS = scaled(16)
MODES = {"serial": 1, "-n 4": 4, "-n 8": 8}


def main() -> int:
    root = project(scenario_list(SCENARIOS))
    env = {"INTERLLM_SCRIPTED_LATENCY": LATENCY}
    phases: dict[str, list[float]] = {name: [] for name in MODES}
    walls: dict[str, list[float]] = {name: [] for name in MODES}
    for _ in range(rounds()):
        for name, n in MODES.items():
            workers = ("-n", str(n)) if n > 1 else ()
            run = pytest_run(root, "--interllm", "input/list.md", *workers, env=env)
            assert run["returncode"] == 0, run["tail"]
            phases[name].append(run["phase"])
            walls[name].append(run["wall"])
    print(f"{'run':8} {'phase s':>26} {'wall s':>26} {'speed-up':>26} {'efficiency':>26}")
    figures = {}
    for name, n in MODES.items():
        speedup = per_round(phases["serial"], phases[name])
        figures[name] = {
            "phase_s": spread(phases[name]),
            "wall_s": spread(walls[name]),
            "speedup": spread(speedup),
            "efficiency": spread([s / n for s in speedup]),
        }
        print(f"{name:8} " + " ".join(f"{text(figures[name][k], '.2f'):>26}" for k in figures[name]))
    write_result("parallel", {"latency_s": float(LATENCY), "scenarios": SCENARIOS, "runs": figures, "phases_s": phases})
    eff4 = figures["-n 4"]["efficiency"]
    update_summary(parallel_efficiency_n4=eff4, parallel_efficiency_n8=figures["-n 8"]["efficiency"])
    shutil.rmtree(root, ignore_errors=True)
    print(f"parallel efficiency at -n 4: {text(eff4)} (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
