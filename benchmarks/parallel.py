"""Parallel speed-up: 16 scenarios with a fixed model latency, serial and with -n 4 / -n 8.

Each request to the scripted model waits LATENCY seconds, standing in for a real model. Times are the
scenario phase of each run (first scenario start to last scenario end, worker start-up excluded: see
startup.py). Figure: parallel efficiency = serial / (n x parallel); 1.0 is ideal, the original script's
strictly serial loop would score 1/n.
"""

from __future__ import annotations

import shutil
import sys

from common import project, pytest_run, scenario_list, update_summary, write_result

LATENCY = "1.0"
SCENARIOS = 16


def main() -> int:
    root = project(scenario_list(SCENARIOS))
    env = {"INTERLLM_SCRIPTED_LATENCY": LATENCY}
    rows = []
    serial = pytest_run(root, "--interllm", "input/list.md", env=env)
    assert serial["returncode"] == 0, serial["tail"]
    rows.append(("serial", 1, serial))
    for n in (4, 8):
        run = pytest_run(root, "--interllm", "input/list.md", "-n", str(n), env=env)
        assert run["returncode"] == 0, run["tail"]
        rows.append((f"-n {n}", n, run))
    base = serial["phase"]
    print(f"{'run':8} {'phase s':>8} {'wall s':>7} {'speed-up':>9} {'efficiency':>11}")
    figures = {}
    for name, n, run in rows:
        efficiency = base / (n * run["phase"])
        figures[name] = {
            "phase_s": round(run["phase"], 3),
            "wall_s": round(run["wall"], 3),
            "speedup": round(base / run["phase"], 3),
            "efficiency": round(efficiency, 3),
        }
        print(f"{name:8} {run['phase']:8.2f} {run['wall']:7.2f} {base / run['phase']:9.2f} {efficiency:11.3f}")
    write_result("parallel", {"latency_s": float(LATENCY), "scenarios": SCENARIOS, "runs": figures})
    eff4 = figures["-n 4"]["efficiency"]
    update_summary(parallel_efficiency_n4=eff4, parallel_efficiency_n8=figures["-n 8"]["efficiency"])
    shutil.rmtree(root, ignore_errors=True)
    print(f"parallel efficiency at -n 4: {eff4:.3f} (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
